"""Open-loop load from several processes on one machine: each worker
process runs the core's open_loop_call at 1/N of the rate, and the parent
merges what they measured exactly.

One Python process makes one call at a time (the GIL and open_loop_call's
design); N processes make N.  The workers are started with the "spawn"
method (no state inherited from a threaded parent, as fork would); they
send their histograms back in the HdrHistogram V2 encoding
(Histogram.encode), the exchange format other tools read too.

A worker that fails (its target cannot be loaded, it crashes or exits
without a result) makes run_processes raise WorkerError naming the process
and the error: a merge never silently leaves a process out.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from ._aioload import AsyncInterval
from ._core import Histogram, Schedule, latency_histogram, now_ns, open_loop_call

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["MultiLoadResult", "ProcessResult", "WorkerError", "WorkerFailure", "run_processes"]

_READY_TIMEOUT = 120.0                # seconds for a worker to start and load its target


class WorkerFailure(NamedTuple):
    """One worker process that did not deliver its result."""
    process: int                      # its index, 0 to processes - 1
    pid: int | None
    phase: str                        # "loading" (the target) or "running"
    error_type: str
    message: str
    traceback: str                    # the worker's, when it could send one


class WorkerError(RuntimeError):
    """Raised by run_processes when any worker failed; ``failures`` says which
    and how (the others' results are not merged)."""

    def __init__(self, spec: str, processes: int, failures: tuple[WorkerFailure, ...]) -> None:
        self.failures = failures
        lines = [f"process {f.process} of {processes}"
                 + (f" (pid {f.pid})" if f.pid is not None else "")
                 + f" failed while {f.phase} {spec}: {f.error_type}: {f.message}"
                 for f in failures]
        super().__init__("run_processes: " + "; ".join(lines))


class ProcessResult(NamedTuple):
    """What one worker process measured (as the core's OpenLoopResult)."""
    process: int                      # its index, 0 to processes - 1
    pid: int
    planned: int
    requests: int
    completed: int
    failed: int
    dropped: int
    errors: dict[str, int]
    latency: Histogram
    latency_uncorrected: Histogram
    send_jitter: Histogram
    intervals: tuple[AsyncInterval, ...]
    elapsed_ns: int
    duration_ns: int
    interrupted: bool


class MultiLoadResult(NamedTuple):
    """The workers' results merged: counts summed, histograms added (with
    their overflow counts)."""
    planned: int
    requests: int
    completed: int
    failed: int
    dropped: int
    errors: dict[str, int]
    latency: Histogram
    latency_uncorrected: Histogram
    send_jitter: Histogram
    elapsed_ns: int                   # from the start signal to the last result
    duration_ns: int                  # the schedule's length
    interrupted: bool                 # any worker stopped early
    processes: tuple[ProcessResult, ...]

    @property
    def achieved_rate(self) -> float:
        """Calls made per second of the schedule, all processes together."""
        return self.requests * 1e9 / self.duration_ns if self.duration_ns else 0.0

    @property
    def intended_rate(self) -> float:
        return self.planned * 1e9 / self.duration_ns if self.duration_ns else 0.0


# --- the worker side ------------------------------------------------------------------------

def _resolve(target: str | Callable[..., object]) -> Callable[..., object]:
    if not isinstance(target, str):
        return target
    import importlib

    module_name, _, name = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target!r} is a {type(obj).__name__}, not callable")
    return obj


def _encode(h: Histogram) -> tuple[str, int]:
    # the V2 encoding does not carry the overflow count: sent beside it
    return h.encode(), h.overflow_count


def _decode(data: tuple[str, int]) -> Histogram:
    h = Histogram.decode(data[0])
    if data[1]:
        h.record_overflow(data[1])
    return h


def _error_message(e: BaseException) -> tuple[str, str, str, str]:
    import traceback

    return ("error", type(e).__name__, str(e), traceback.format_exc())


def _worker(conn: Connection, target: str | Callable[..., object],
            stages: list[tuple[float, float]], start_rate: float | None,
            args: tuple[object, ...], interval: float) -> None:
    """A worker process: load the target, report ready, wait for the start
    signal (so that all processes start their schedules together), run,
    send the result.  Every failure is sent, not just printed."""
    try:
        fn = _resolve(target)
    except BaseException as e:
        conn.send(_error_message(e))
        return
    conn.send(("ready",))
    if conn.recv() != "go":
        return
    try:
        res = open_loop_call(fn, stages, args=args, start_rate=start_rate, interval=interval)
        intervals = [(iv.start_ns, iv.end_ns, iv.sent, iv.completed, iv.failed, iv.dropped,
                      _encode(iv.latency)) for iv in res.intervals]
        conn.send(("done", {
            "planned": res.planned, "requests": res.requests, "completed": res.completed,
            "failed": res.failed, "dropped": res.dropped, "errors": dict(res.errors),
            "latency": _encode(res.latency),
            "latency_uncorrected": _encode(res.latency_uncorrected),
            "send_jitter": _encode(res.send_jitter), "intervals": intervals,
            "elapsed_ns": res.elapsed_ns, "duration_ns": res.duration_ns,
            "interrupted": bool(res.interrupted)}))
    except BaseException as e:
        conn.send(_error_message(e))


# --- the parent side ------------------------------------------------------------------------

def _process_result(index: int, pid: int, d: dict[str, Any]) -> ProcessResult:
    intervals = tuple(AsyncInterval(s, e, sent, c, f, dr, _decode(h))
                      for s, e, sent, c, f, dr, h in d["intervals"])
    return ProcessResult(
        process=index, pid=pid, planned=d["planned"], requests=d["requests"],
        completed=d["completed"], failed=d["failed"], dropped=d["dropped"], errors=d["errors"],
        latency=_decode(d["latency"]), latency_uncorrected=_decode(d["latency_uncorrected"]),
        send_jitter=_decode(d["send_jitter"]), intervals=intervals, elapsed_ns=d["elapsed_ns"],
        duration_ns=d["duration_ns"], interrupted=d["interrupted"])


def _collect(conns: list[Connection], procs: list[Any], phase: str,
             timeout: float | None) -> tuple[dict[int, tuple[Any, ...]], list[WorkerFailure]]:
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
                failures.append(WorkerFailure(i, procs[i].pid, phase, "ProcessExit",
                                              f"the process ended ({how}) without a result", ""))
            elif message[0] == "error":
                failures.append(WorkerFailure(i, procs[i].pid, phase, message[1], message[2],
                                              message[3]))
            else:
                messages[i] = message
            waiting.discard(i)
    return messages, sorted(failures)


def run_processes(
    fn_spec: str | Callable[..., object],
    stages: Iterable[tuple[float, float]],
    *,
    processes: int = 2,
    args: Iterable[object] = (),
    interval: float = 1.0,
    start_rate: float | None = None,
) -> MultiLoadResult:
    """Call a function from ``processes`` worker processes at the arrival
    rate ``stages`` describe (as open_loop_call's), all together: each
    process runs open_loop_call with every rate divided by ``processes``,
    so each process's schedule is the whole schedule thinned (its planned
    count rounds on its own: the total may differ from one process's plan
    by up to ``processes``).

    ``fn_spec`` is "module:function" (imported in each worker; the
    function may be a dotted attribute path) or a picklable top-level
    callable.  Workers start together once every one has loaded the target.

    Returns the merged MultiLoadResult (each process's result in
    ``processes``).  Raises WorkerError (a RuntimeError) when any worker
    fails to load the target, crashes or exits without a result, naming the
    process and the error.  On KeyboardInterrupt in the parent the workers
    are terminated and the interrupt propagates.
    """
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"run_processes: processes must be an int, got {type(processes).__name__}")
    if processes < 1:
        raise ValueError(f"run_processes: processes must be >= 1, got {processes}")
    if isinstance(fn_spec, str):
        module_name, sep, name = fn_spec.partition(":")
        if not (sep and module_name and name):
            raise ValueError(f"run_processes: fn_spec must be 'module:function', got {fn_spec!r}")
        spec_text = repr(fn_spec)
    elif callable(fn_spec):
        spec_text = getattr(fn_spec, "__qualname__", type(fn_spec).__name__)
    else:
        raise TypeError("run_processes: fn_spec must be a 'module:function' string or a "
                        f"callable, got {type(fn_spec).__name__}")
    try:
        every = float(interval)
    except (TypeError, ValueError):
        raise TypeError(f"run_processes: interval must be a number of seconds, "
                        f"got {interval!r}") from None
    if not (every > 0 and math.isfinite(every)):
        raise ValueError(f"run_processes: interval must be > 0 seconds, got {interval!r}")
    stage_list = list(stages)
    try:            # checked here, before any process starts, with the core's messages
        duration_ns = Schedule(stage_list, start_rate=start_rate).duration_ns
    except ValueError as e:
        raise ValueError(str(e).replace("Schedule:", "run_processes:", 1)) from None
    scaled = [(float(rate) / processes, float(seconds)) for rate, seconds in stage_list]
    scaled_start = None if start_rate is None else float(start_rate) / processes
    call_args = tuple(args)
    import pickle

    try:        # fail here, not in a worker, when the target or args cannot travel
        pickle.dumps((fn_spec, call_args))
    except Exception as e:
        raise TypeError(f"run_processes: {spec_text} or its args cannot be pickled for the "
                        f"worker processes: {type(e).__name__}: {e}") from None

    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    conns: list[Connection] = []
    procs: list[Any] = []
    try:
        for i in range(processes):
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(target=_worker, name=f"caxton_meter-load-{i}", daemon=True,
                            args=(child_end, fn_spec, scaled, scaled_start, call_args, every))
            p.start()
            child_end.close()         # so a dead worker reads as EOF here
            conns.append(parent_end)
            procs.append(p)
        _, failures = _collect(conns, procs, "loading", _READY_TIMEOUT)
        if failures:
            raise WorkerError(spec_text, processes, tuple(failures))
        t0 = now_ns()
        for conn in conns:
            conn.send("go")
        messages, failures = _collect(conns, procs, "running", None)
        elapsed_ns = now_ns() - t0
        if failures:
            raise WorkerError(spec_text, processes, tuple(failures))
    finally:
        for conn in conns:
            conn.close()           # a worker still waiting for "go" sees EOF and ends
        for p in procs:
            p.join(5.0)
            if p.is_alive():
                p.terminate()
                p.join()

    results = tuple(_process_result(i, procs[i].pid, messages[i][1]) for i in range(processes))
    latency, uncorrected, jitter = (latency_histogram() for _ in range(3))
    errors: dict[str, int] = {}
    for r in results:
        latency.add(r.latency)
        uncorrected.add(r.latency_uncorrected)
        jitter.add(r.send_jitter)
        for name, count in r.errors.items():
            errors[name] = errors.get(name, 0) + count
    return MultiLoadResult(
        planned=sum(r.planned for r in results), requests=sum(r.requests for r in results),
        completed=sum(r.completed for r in results), failed=sum(r.failed for r in results),
        dropped=sum(r.dropped for r in results), errors=errors, latency=latency,
        latency_uncorrected=uncorrected, send_jitter=jitter, elapsed_ns=elapsed_ns,
        duration_ns=duration_ns, interrupted=any(r.interrupted for r in results),
        processes=results)
