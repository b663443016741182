"""Open-loop load from several processes on one machine: each worker
process runs the core's open_loop_call on its stripe of the schedule
(every N-th arrival, at its time: _segments), and the parent merges
what they measured exactly (OpenLoopResult.merge, keeping each process's
result in ``parts``).

One Python process makes one call at a time (the GIL and open_loop_call's
design); N processes make N.  The workers are started with the "spawn"
method (no state inherited from a threaded parent, as fork would); they
send their results back pickled, each histogram in the HdrHistogram V2
encoding (Histogram.encode, the exchange format other tools read too) with
its overflow count.

A worker that fails (its target cannot be loaded, it crashes or exits
without a result) makes run_processes raise WorkerError naming the process
and the error: a merge never silently leaves a process out.  Each worker's
standard error goes to a file of its own, replayed on the parent's once the
run ends; a worker that dies before it can report (the main module started
processes at import: no ``if __name__ == "__main__":`` guard) is reported
with the last lines of what it wrote there.

The workers import the caller's main module (the "spawn" method): a script
must start the load under ``if __name__ == "__main__":``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _checks
from ._checks import Stages
from ._core import CaxtonMeterError, NetworkResult, OpenLoopResult, now_ns, open_loop_call

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["WorkerError", "WorkerFailure", "run_processes"]

# The result types of run_processes before it returned the core's merged
# OpenLoopResult (the processes' own results are its ``parts``): kept as
# aliases for one release, for code that names them (0.1 -> 0.2).
MultiLoadResult = OpenLoopResult
ProcessResult = OpenLoopResult

_READY_TIMEOUT = 120.0                # seconds for a worker to start and load its target


class WorkerFailure(NamedTuple):
    """One worker process that did not deliver its result."""
    process: int                      # its index, 0 to processes - 1
    pid: int | None
    phase: str                        # "loading" (the target) or "running"
    error_type: str
    message: str
    traceback: str                    # the worker's, when it could send one


class WorkerError(CaxtonMeterError, RuntimeError):
    """Raised by run_processes when any worker failed; ``failures`` says which
    and how (the others' results are not merged)."""

    def __init__(self, spec: str, processes: int, failures: tuple[WorkerFailure, ...]) -> None:
        self.failures = failures
        lines = [f"process {f.process} of {processes}"
                 + (f" (pid {f.pid})" if f.pid is not None else "")
                 + f" failed while {f.phase} {spec}: {f.error_type}: {f.message}"
                 for f in failures]
        super().__init__("run_processes: " + "; ".join(lines))


# --- the worker side ------------------------------------------------------------------------

def _resolve(target: object) -> object:
    if not isinstance(target, str):
        return target
    import importlib

    module_name, _, name = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj) and not callable(getattr(obj, "request", None)):
        raise TypeError(f"{target!r} is a {type(obj).__name__}, not callable and without "
                        "a request(payload) method")
    return obj


def _error_message(e: BaseException) -> tuple[str, str, str, str]:
    import traceback

    return ("error", type(e).__name__, str(e), traceback.format_exc())


def _fields(res: OpenLoopResult, source: str) -> dict[str, Any]:
    """An OpenLoopResult's constructor arguments, with ``source``."""
    return dict(
        requests=res.requests, completed=res.completed, failed=res.failed,
        dropped=res.dropped, planned=res.planned, elapsed_ns=res.elapsed_ns,
        duration_ns=res.duration_ns, latency=res.latency,
        latency_uncorrected=res.latency_uncorrected, send_jitter=res.send_jitter,
        intervals=res.intervals, errors=res.errors, interrupted=res.interrupted,
        deadline_reached=res.deadline_reached, parts=res.parts, source=source,
        last_send_ns=res.last_send_ns)


def _network_fields(res: NetworkResult) -> dict[str, Any]:
    return dict(connect_time=res.connect_time, status_classes=res.status_classes,
                connection_errors=res.connection_errors, in_flight=res.in_flight,
                connections=res.connections, connects=res.connects, bytes_sent=res.bytes_sent,
                bytes_received=res.bytes_received, protocol=res.protocol,
                closed_loop=res.closed_loop)


def _labelled(res: OpenLoopResult, source: str,
              intervals: tuple[Any, ...] | None = None) -> OpenLoopResult:
    """``res`` (an OpenLoopResult or a NetworkResult) with its source
    named, and its intervals replaced when ``intervals`` is given."""
    fields = _fields(res, source)
    if intervals is not None:
        fields["intervals"] = intervals
    if isinstance(res, NetworkResult):
        return NetworkResult(**_network_fields(res), **fields)
    return OpenLoopResult(**fields)


def _merged(parts: list[OpenLoopResult], source: str,
            elapsed_ns: int | None = None) -> OpenLoopResult:
    """OpenLoopResult.merge; for network runs a NetworkResult, whose own
    counts (connections, connects, bytes, status classes, connection
    errors, in flight) are summed and connect times added."""
    merged = OpenLoopResult.merge(parts, source=source, elapsed_ns=elapsed_ns)
    nets = [p for p in parts if isinstance(p, NetworkResult)]
    if not nets or len(nets) != len(parts):
        return merged
    connect_time = nets[0].connect_time.copy()
    for p in nets[1:]:
        connect_time.add(p.connect_time)

    def summed(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in nets:
            for k, v in getattr(p, name).items():
                out[k] = out.get(k, 0) + v
        return out
    return NetworkResult(
        connect_time=connect_time, status_classes=summed("status_classes"),
        connection_errors=summed("connection_errors"),
        in_flight=sum(p.in_flight for p in nets), connections=sum(p.connections for p in nets),
        connects=sum(p.connects for p in nets), bytes_sent=sum(p.bytes_sent for p in nets),
        bytes_received=sum(p.bytes_received for p in nets), protocol=nets[0].protocol,
        closed_loop=False, **_fields(merged, source))


def _with_connections(target: Any, connections: int) -> Any:
    """The same network target with ``connections`` connections (each
    process opens its share)."""
    return target.with_connections(connections)


def _load(obj: object, stages: list[tuple[float, float]], start_rate: float | None,
          args: tuple[object, ...], interval: float, deadline: float | None,
          payload: bytes, concurrency: int, stripe: bytes | None,
          on_interval: Callable[[Any], object] | None = None) -> OpenLoopResult:
    """One worker's share of the load, by the kind of target: a Target
    (between its setup and teardown), an AsyncTarget or a coroutine function
    (the asyncio open loop, ``concurrency`` at a time), or a callable (whose
    loop calls ``on_interval`` with each interval as it closes)."""
    import asyncio

    from ._aioload import open_loop_async
    from ._targets import drive, drive_async, target_kind
    kind = target_kind(obj, "run_processes")
    if kind == "network target":
        from ._network import load_network
        return load_network(obj, stages, start_rate=start_rate,  # type: ignore[arg-type]
                            interval=interval, deadline=deadline, stripe=stripe)
    if kind == "async target":
        return asyncio.run(drive_async(obj, stages, payload=payload,  # type: ignore[arg-type]
                                       concurrency=concurrency, start_rate=start_rate,
                                       interval=interval, deadline=deadline, stripe=stripe))
    if kind == "target":
        return drive(obj, stages, payload=payload, start_rate=start_rate,  # type: ignore[arg-type]
                     interval=interval, deadline=deadline, stripe=stripe)
    if kind == "coroutine function":
        return asyncio.run(open_loop_async(obj, stages, args=args,  # type: ignore[arg-type]
                                           concurrency=concurrency,
                                           start_rate=start_rate, interval=interval,
                                           deadline=deadline, stripe=stripe))
    assert callable(obj)
    return open_loop_call(obj, stages, args=args, start_rate=start_rate, interval=interval,
                          deadline=deadline, stripe=stripe, on_interval=on_interval)


def _worker(conn: Connection, index: int, target: object,
            stages: list[tuple[float, float]], start_rate: float | None,
            args: tuple[object, ...], interval: float, deadline: float | None,
            payload: bytes, concurrency: int, stripe: bytes | None) -> None:
    """A worker process: load the target, report ready, wait for the start
    signal (so that all processes start their schedules together), run,
    send the result, labelled with the process.  Every failure is sent,
    not just printed."""
    import os

    try:
        fn = _resolve(target)
    except BaseException as e:
        conn.send(_error_message(e))
        return
    conn.send(("ready",))
    if conn.recv() != "go":
        return
    try:
        res = _load(fn, stages, start_rate, args, interval, deadline, payload, concurrency,
                    stripe)
        conn.send(("done", _labelled(res, f"process {index} (pid {os.getpid()})")))
    except BaseException as e:
        conn.send(_error_message(e))


# --- the parent side ------------------------------------------------------------------------

_BOOTSTRAP = "has finished its bootstrapping phase"


def _stderr_tail(log: Any, lines: int = 12) -> str:
    """The last ``lines`` lines a worker wrote to its standard error."""
    log.flush()
    log.seek(0)
    text = log.read().decode("utf-8", errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _death(log: Any, how: str) -> tuple[str, str, str]:
    """(error type, message, traceback) of a worker that ended without a
    result, from what it wrote to its standard error."""
    tail = _stderr_tail(log, lines=40)
    if _BOOTSTRAP in tail:
        return ("RuntimeError", f"the process ended ({how}) importing the main module, which "
                "started processes itself: start the load under `if __name__ == "
                "\"__main__\":` (the workers import the main module)", tail)
    tail = "\n".join(tail.splitlines()[-12:])
    last = tail.splitlines()[-1] if tail else ""
    error, sep, message = last.partition(": ")
    if sep and error.replace(".", "").replace("_", "").isalnum() and " " not in error:
        return (error.rsplit(".", 1)[-1], f"{message} (the process ended, {how})", tail)
    return ("ProcessExit", f"the process ended ({how}) without a result"
            + (f"; its last words: {last}" if last else ""), tail)


def _collect(conns: list[Connection], procs: list[Any], phase: str,
             timeout: float | None, logs: list[Any]
             ) -> tuple[dict[int, tuple[Any, ...]], list[WorkerFailure]]:
    """One message from every worker, or why there is none (it exited, or
    timed out)."""
    from multiprocessing.connection import wait

    messages: dict[int, tuple[Any, ...]] = {}
    failures: list[WorkerFailure] = []
    waiting = set(range(len(conns)))
    deadline = None if timeout is None else now_ns() + int(timeout * 1e9)
    while waiting:
        left = None if deadline is None else max(deadline - now_ns(), 0) / 1e9
        handles: list[Any] = [conns[i] for i in waiting] + [procs[i].sentinel for i in waiting]
        ready = wait(handles, timeout=left)
        if not ready:
            for i in sorted(waiting):
                failures.append(WorkerFailure(i, procs[i].pid, phase, "TimeoutError",
                                              f"no answer in {timeout} s", ""))
            break
        for i in sorted(waiting):
            if conns[i] not in ready and procs[i].sentinel not in ready:
                continue
            # a worker that sent its result and exited is ready both ways:
            # the message comes first
            try:
                message = conns[i].recv() if conns[i].poll() else None
            except (EOFError, OSError):
                message = None
            if message is None:
                procs[i].join(1.0)
                code = procs[i].exitcode
                how = f"exit code {code}"
                if code is not None and code < 0:
                    import signal

                    try:
                        how = f"killed by {signal.Signals(-code).name}"
                    except ValueError:
                        how = f"killed by signal {-code}"
                failures.append(WorkerFailure(i, procs[i].pid, phase, *_death(logs[i], how)))
            elif message[0] == "error":
                failures.append(WorkerFailure(i, procs[i].pid, phase, message[1], message[2],
                                              message[3]))
            else:
                messages[i] = message
            waiting.discard(i)
    return messages, sorted(failures)


def run_processes(
    fn_spec: str | object,
    stages: Stages | None = None,
    *,
    rate: float | str | None = None,
    duration: float | str | None = None,
    processes: int = 2,
    args: Iterable[object] = (),
    interval: float | str = 1.0,
    start_rate: float | str | None = None,
    deadline: float | str | None = None,
    payload: bytes = b"",
    concurrency: int = 100,
) -> OpenLoopResult:
    """Call a function from ``processes`` worker processes at the arrival
    rate ``stages`` describe (as open_loop_call's; or a constant ``rate``
    for ``duration``; units allowed, "2K/s", "200ms"), all together: each
    process takes every ``processes``-th arrival of the one schedule, at
    its time (a stripe, caxton_meter.stripes), so the processes send
    together exactly the schedule's arrivals, as one loop would plan them.
    ``deadline`` (seconds) ends every process's schedule early, as
    open_loop_call's.

    ``fn_spec`` is "module:function" (imported in each worker; the
    function may be a dotted attribute path) or a picklable object: a
    callable (called with ``args``), a coroutine function (the asyncio
    open loop, ``concurrency`` at a time), or a Target / AsyncTarget (its
    ``request(payload)`` driven between its ``setup()`` and ``teardown()``
    in each worker), or an HttpTarget / TcpTarget (load_network in each
    worker, the target's ``connections`` shared out among the processes,
    as wrk shares its connections among its threads; the merged result is
    a NetworkResult, its status classes, connection errors, connects and
    bytes summed).  Workers start together once every one has loaded the
    target.  The workers import the main module: a script calls
    run_processes under ``if __name__ == "__main__":``.

    Returns the merged OpenLoopResult (OpenLoopResult.merge): each
    process's own result is in ``parts``, its ``source`` "process i (pid
    p)"; ``elapsed_ns`` runs from the start signal to the last result.
    Raises WorkerError (a RuntimeError) when any worker fails to load the
    target, crashes or exits without a result, naming the process and the
    error.  On KeyboardInterrupt in the parent the workers are terminated
    and the interrupt propagates.
    """
    what = "run_processes"
    n_processes = _checks.integer(processes, f"{what}: processes", low=1)
    if isinstance(fn_spec, str):
        module_name, sep, name = fn_spec.partition(":")
        if not (sep and module_name and name):
            raise _checks.ArgumentError(f"{what}: fn_spec must be 'module:function', "
                                        f"got {fn_spec!r}")
        spec_text = repr(fn_spec)
    elif _is_network(fn_spec):
        spec_text = repr(fn_spec)
    elif callable(fn_spec) or callable(getattr(fn_spec, "request", None)):
        spec_text = getattr(fn_spec, "__qualname__", type(fn_spec).__name__)
    else:
        raise _checks.ArgumentTypeError(f"{what}: fn_spec must be a 'module:function' string, "
                                        f"a callable or a target with request(payload), got "
                                        f"{type(fn_spec).__name__}")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _checks.ArgumentTypeError(f"{what}: payload must be bytes, not "
                                        f"{type(payload).__name__}")
    data = bytes(payload)
    limit = _checks.integer(concurrency, f"{what}: concurrency", low=1)
    every = _checks.seconds(interval, f"{what}: interval")
    stop = _checks.optional(_checks.seconds)(deadline, f"{what}: deadline")
    # checked here, before any process starts
    plan, start, _ = _checks.stages(what, stages, rate, duration, start_rate)
    from ._segments import stripes
    shares = stripes([1] * n_processes) if n_processes > 1 else [None]
    call_args = tuple(args)
    targets = [fn_spec] * n_processes
    if _is_network(fn_spec):
        if data or call_args:
            raise _checks.ArgumentError(f"{what}: payload= and args= are not for a network "
                                        f"target (its request is set when it is made)")
        total = int(getattr(fn_spec, "connections"))
        if total < n_processes:
            raise _checks.ArgumentError(f"{what}: {spec_text} has {total} connection(s) for "
                                        f"{n_processes} processes; each process needs one at "
                                        f"least")
        # the target's connections in all, shared out: wrk's -c over its threads
        targets = [_with_connections(fn_spec, total // n_processes
                                     + (1 if i < total % n_processes else 0))
                   for i in range(n_processes)]
    import pickle

    try:        # fail here, not in a worker, when the target or args cannot travel
        pickle.dumps((fn_spec, call_args))
    except Exception as e:
        raise _checks.ArgumentTypeError(
            f"{what}: {spec_text} or its args cannot be pickled for the worker processes: "
            f"{type(e).__name__}: {e}") from None

    import multiprocessing

    import os
    import sys
    import tempfile

    ctx = multiprocessing.get_context("spawn")
    conns: list[Connection] = []
    procs: list[Any] = []
    logs: list[Any] = []
    try:
        for i in range(n_processes):
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(target=_worker, name=f"caxton_meter-load-{i}", daemon=True,
                            args=(child_end, i, targets[i], plan, start, call_args, every,
                                  stop, data, limit, shares[i]))
            log = tempfile.TemporaryFile()
            logs.append(log)
            # the worker's standard error is its own file, from its first
            # instruction: what it says before it can report is kept
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                os.dup2(log.fileno(), 2)
                p.start()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            child_end.close()         # so a dead worker reads as EOF here
            conns.append(parent_end)
            procs.append(p)
        _, failures = _collect(conns, procs, "loading", _READY_TIMEOUT, logs)
        if failures:
            raise WorkerError(spec_text, n_processes, tuple(failures))
        t0 = now_ns()
        for conn in conns:
            conn.send("go")
        messages, failures = _collect(conns, procs, "running", None, logs)
        elapsed_ns = now_ns() - t0
        if failures:
            raise WorkerError(spec_text, n_processes, tuple(failures))
    finally:
        for conn in conns:
            conn.close()           # a worker still waiting for "go" sees EOF and ends
        for p in procs:
            p.join(5.0)
            if p.is_alive():
                p.terminate()
                p.join()
        for log in logs:              # what the workers wrote, on the parent's stderr
            tail = _stderr_tail(log, lines=10_000)
            if tail:
                print(tail, file=sys.stderr)
            log.close()

    return _merged([messages[i][1] for i in range(n_processes)],
                   source=f"{n_processes} processes", elapsed_ns=elapsed_ns)


def _is_network(target: object) -> bool:
    from ._network import NETWORK_TARGETS
    return isinstance(target, NETWORK_TARGETS)
