"""Load from several machines: the workers of a Dask cluster share one
arrival schedule, start together, and their measurements merge exactly.

Dask is only the control plane (``pip install 'caxton_meter[dask]'``;
``dask scheduler`` on one machine, ``dask worker tcp://HOST:8786`` on each
of the others, or any Dask deployment; in tests a LocalCluster).  Each
worker runs the core's compiled loop against the target with its stripe
of the schedule (_segments: of every P arrivals it takes its share, each at
the time the whole schedule has it due), so the workers send together
exactly the arrivals one loop would, whatever the shares.

The run, step by step:

1. Clocks: the coordinator (this process) asks each worker for its
   wall-clock time ``SAMPLES`` times (a round trip through the scheduler
   each) and keeps the sample of the shortest round trip: the worker's
   offset is its time less the midpoint of the round trip, give or take
   half the round trip (NTP's rule).
2. Start: a time far enough ahead for every task to arrive (``lead``,
   seconds) is chosen on the coordinator's clock; each worker waits until
   its own clock, less its offset, reaches it, then starts its loop.  Each
   reports when it did start; the start skew is that less the start asked
   (on the coordinator's clock, to within the offset's uncertainty).
3. Run: each worker streams every closed interval (counts and its latency
   histogram, V2-encoded) to the coordinator as a Dask event, and returns
   its whole result at the end.
4. Merge: the results merge exactly (OpenLoopResult.merge: counts add,
   histograms add bucket for bucket); the intervals are aligned on the
   common start.  A worker that dies or leaves mid-run is reported by
   name, with the intervals it streamed kept as its partial result, and
   the run is marked partial: it never reads as a smaller run that went
   well.

    client = distributed.Client("tcp://10.0.0.1:8786")
    run = run_distributed(HttpTarget("http://10.0.0.2:8080/"), rate="200K/s",
                          duration="60s", cluster=client)
    run.result.latency.value_at_percentile(99); print(run.summary())
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _checks
from ._checks import ArgumentError, ArgumentTypeError, Stages
from ._core import (
    CaxtonMeterError,
    Histogram,
    LoadInterval,
    NetworkResult,
    OpenLoopResult,
    latency_histogram,
    now_ns,
)

__all__ = ["ClusterError", "DistributedResult", "WorkerReport", "run_distributed"]

SAMPLES = 16                  # clock round trips per worker; the shortest is kept
_CONNECT_TIMEOUT = 10.0       # seconds for a cluster address to answer
_TOPIC = "caxton-meter-interval"
_POLL = 0.2                   # seconds between looks at the tasks and the workers
_GRACE = 30.0                 # seconds past a worker's last possible end before it is lost


class ClusterError(CaxtonMeterError, RuntimeError):
    """The cluster could not run the load: it does not answer, has too few
    workers, or Dask is not installed."""


@dataclass(frozen=True)
class WorkerReport:
    """One worker's part of a distributed run.  Immutable.

    ``offset_ns``: its wall clock less the coordinator's, give or take
    ``uncertainty_ns`` (half the shortest round trip); ``start_skew_ns``:
    when its loop started less the common start, on the coordinator's clock
    (None if it never reported a start).  ``state`` is "done", "lost" (the
    worker died or left; ``result`` then holds what it streamed before) or
    "failed" (its task raised: ``error``)."""
    name: str
    host: str
    pid: int
    share: float
    offset_ns: int
    uncertainty_ns: int
    start_skew_ns: int | None
    state: str
    result: OpenLoopResult | None
    intervals_streamed: int
    error: str | None = None

    @property
    def note(self) -> str | None:
        """What went wrong for this worker, in one sentence, or None."""
        if self.state == "lost":
            return (f"{self.name} was lost mid-run; the {self.intervals_streamed} interval(s) "
                    f"it streamed before are kept")
        if self.state == "failed":
            return f"{self.name} failed: {self.error}"
        if self.result is not None:
            note = self.result.schedule_note()
            return None if note is None else f"{self.name}: {note}"
        return None


@dataclass(frozen=True)
class DistributedResult:
    """A run on a cluster: ``result`` is the merged run (an
    OpenLoopResult, or a NetworkResult's counts for a network target, its
    ``parts`` each worker's), ``workers`` the per-worker breakdown,
    ``start_time`` the common start (seconds since the epoch, coordinator's
    clock), ``setup_seconds`` how long the control plane took from the call
    to that start, and ``partial`` whether any worker was lost or failed."""
    result: OpenLoopResult
    workers: tuple[WorkerReport, ...]
    start_time: float
    setup_seconds: float
    asked_rate: float

    @property
    def partial(self) -> bool:
        return any(w.state != "done" for w in self.workers)

    @property
    def lost(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.workers if w.state != "done")

    @property
    def max_start_skew_ns(self) -> int | None:
        skews = [abs(w.start_skew_ns) for w in self.workers if w.start_skew_ns is not None]
        return max(skews) if skews else None

    def summary(self) -> str:
        """A few lines: the merged rate against the rate asked, then per
        worker its share, clock offset, start skew and what befell it."""
        r = self.result
        lines = [f"{len(self.workers)} workers: {r.achieved_rate:,.0f}/s sent of "
                 f"{self.asked_rate:,.0f}/s asked, {r.completed:,} completed, {r.failed:,} "
                 f"failed, {r.dropped:,} dropped; control plane {self.setup_seconds:.2f} s"
                 + ("; PARTIAL: " + ", ".join(self.lost) + " lost or failed" if self.partial
                    else "")]
        for w in self.workers:
            skew = ("never started" if w.start_skew_ns is None
                    else f"start skew {w.start_skew_ns / 1e3:+,.0f} us")
            lines.append(f"  {w.name} ({w.host}, pid {w.pid}): share {w.share:.1%}, clock offset "
                         f"{w.offset_ns / 1e3:+,.0f} us ± {w.uncertainty_ns / 1e3:,.0f} us, "
                         f"{skew}, {w.state}"
                         + (f" — {w.note}" if w.note else ""))
        return "\n".join(lines)


# --- the worker side ------------------------------------------------------------------------

def _encode_interval(run: str, index: int, k: int, t0_ns: int, iv: LoadInterval) -> dict[str, Any]:
    return {"run": run, "index": index, "k": k, "start": iv.start_ns - t0_ns,
            "end": iv.end_ns - t0_ns, "sent": iv.sent, "completed": iv.completed,
            "failed": iv.failed, "dropped": iv.dropped, "latency": iv.latency.encode()}


def _run_share(run: str, index: int, kind: str, target: Any, stages: list[tuple[float, float]],
               start_rate: float | None, stripe: bytes | None, start_ns: int, offset_ns: int,
               interval: float, deadline: float | None, payload: bytes,
               args: tuple[object, ...], concurrency: int) -> dict[str, Any]:
    """A worker's task: wait for the common start on this machine's clock,
    run the loop on this worker's stripe, stream each interval, return the
    result and when the loop started (on the coordinator's clock)."""
    from distributed import get_worker

    worker = get_worker()
    local_start = start_ns + offset_ns
    while True:
        left = local_start - time.time_ns()
        if left <= 0:
            break
        if left > 2_000_000:
            time.sleep((left - 1_000_000) / 1e9)
    started = time.time_ns()
    t0 = now_ns()
    k = 0

    def stream(iv: LoadInterval) -> None:
        nonlocal k
        worker.log_event(_TOPIC, _encode_interval(run, index, k, t0, iv))
        k += 1

    if kind == "network":
        from ._core import network_loop
        res: OpenLoopResult = network_loop(stages=stages, start_rate=start_rate, stripe=stripe,
                                           interval=interval, on_interval=stream,
                                           deadline=deadline, **target)
    else:
        from ._multiload import _load, _resolve
        res = _load(_resolve(target), stages, start_rate, args, interval, deadline, payload,
                    concurrency, stripe, on_interval=stream)
    return {"started_ns": started - offset_ns, "result": res,
            "host": socket.gethostname(), "pid": os.getpid()}


def _clock() -> int:
    return time.time_ns()


# --- the coordinator ------------------------------------------------------------------------

def _client(cluster: object, what: str, timeout: float) -> tuple[Any, bool]:
    """A distributed.Client for ``cluster`` (one, or an address), and
    whether this module made it (and closes it)."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"{what}: Dask is not installed; pip install 'caxton_meter[dask]'") \
            from None
    if isinstance(cluster, distributed.Client):
        return cluster, False
    if not isinstance(cluster, str):
        raise ArgumentTypeError(f"{what}: cluster must be a scheduler address "
                                f"('tcp://HOST:8786') or a distributed.Client, not "
                                f"{type(cluster).__name__}")
    try:
        client = distributed.Client(cluster, timeout=timeout,  # type: ignore[no-untyped-call]
                                    set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"{what}: no Dask scheduler answers at {cluster!r} within "
                           f"{timeout:g} s ({type(e).__name__}: {e}); nothing was run") \
            from None
    except ValueError as e:
        raise ArgumentError(f"{what}: cluster {cluster!r} is not a scheduler address: {e}") \
            from None
    return client, True


def check_cluster(cluster: object, workers: int | None, what: str,
                  timeout: float = _CONNECT_TIMEOUT) -> int:
    """Ask ``cluster`` whether it answers and has ``workers`` workers (at
    least one); the number it has.  ClusterError otherwise."""
    client, owned = _client(cluster, what, timeout)
    try:
        have = len(_workers(client))
    finally:
        if owned:
            client.close()
    if have == 0 or (workers is not None and workers > have):
        raise ClusterError(f"{what}: {workers or 1} worker(s) asked, the cluster at "
                           f"{cluster!r} has {have}")
    return have


def _offset(client: Any, address: str, samples: int) -> tuple[int, int]:
    """(offset, uncertainty) of a worker's clock against this process's,
    from the round trip of ``samples`` that was shortest."""
    best: tuple[int, int] | None = None
    for _ in range(samples):
        t0 = time.time_ns()
        theirs = client.run(_clock, workers=[address])[address]
        t1 = time.time_ns()
        half = (t1 - t0) // 2
        if best is None or half < best[1]:
            best = (theirs - (t0 + half), half)
    assert best is not None
    return best


def _partial_result(name: str, intervals: list[dict[str, Any]], duration_ns: int,
                    protocol: str | None) -> OpenLoopResult | None:
    """What a lost worker streamed, as a result: its intervals' counts and
    latencies (nothing of what it measured after its last interval).  For a
    network target, the requests sent whose end was never heard of are
    ``in_flight``."""
    if not intervals:
        return None
    latency = latency_histogram()
    for iv in intervals:
        latency.add(Histogram.decode(iv["latency"]))
    sent = sum(iv["sent"] for iv in intervals)
    dropped = sum(iv["dropped"] for iv in intervals)
    completed = sum(iv["completed"] for iv in intervals)
    failed = min(sum(iv["failed"] for iv in intervals), sent - completed)
    end = max(iv["end"] for iv in intervals)
    fields: dict[str, Any] = dict(
        requests=sent, completed=completed, failed=failed, dropped=dropped,
        planned=sent + dropped, elapsed_ns=end, duration_ns=min(end, duration_ns),
        latency=latency, latency_uncorrected=latency_histogram(),
        send_jitter=latency_histogram(), intervals=tuple(_interval(iv, 0) for iv in intervals),
        interrupted=True, source=f"{name} (lost: {len(intervals)} interval(s) streamed before)")
    if protocol is None:
        return OpenLoopResult(**fields)
    return NetworkResult(connect_time=latency_histogram(), in_flight=sent - completed - failed,
                         protocol=protocol, **fields)


def _interval(iv: dict[str, Any], shift_ns: int) -> LoadInterval:
    return LoadInterval(start_ns=iv["start"] + shift_ns, end_ns=iv["end"] + shift_ns,
                        sent=iv["sent"], completed=iv["completed"], failed=iv["failed"],
                        dropped=iv["dropped"], latency=Histogram.decode(iv["latency"]))


def _kind(target: object, what: str) -> tuple[str, Any]:
    from ._network import NETWORK_TARGETS
    if isinstance(target, NETWORK_TARGETS):
        return "network", target._loop_arguments()
    if isinstance(target, str):
        module_name, sep, name = target.partition(":")
        if not (sep and module_name and name):
            raise ArgumentError(f"{what}: a target given as a str must be 'module:function', "
                                f"got {target!r}")
        return "call", target
    from ._targets import target_kind
    target_kind(target, what)         # ArgumentTypeError for what cannot be driven
    import pickle
    try:
        pickle.dumps(target)
    except Exception as e:
        raise ArgumentTypeError(f"{what}: the target cannot be pickled for the workers "
                                f"({type(e).__name__}: {e}); give it as 'module:function'") \
            from None
    return "call", target


def run_distributed(target: object, stages: Stages | None = None, *,
                    cluster: object, rate: float | str | None = None,
                    duration: float | str | None = None, start_rate: float | str | None = None,
                    workers: int | None = None, shares: Sequence[float] | None = None,
                    payload: bytes = b"", args: Sequence[object] = (), concurrency: int = 100,
                    interval: float | str = 1.0, deadline: float | str | None = None,
                    lead: float | str = 1.0,
                    connect_timeout: float | str = _CONNECT_TIMEOUT) -> DistributedResult:
    """Run the arrival schedule ``stages`` (or ``rate`` for ``duration``)
    against ``target`` from ``workers`` workers of the Dask cluster
    ``cluster`` (a distributed.Client or a scheduler address; default: every
    worker it has), each taking its share of the arrivals (``shares``, one
    number per worker, default equal), all starting at one time.

    ``target``: an HttpTarget, TcpTarget or WebSocketTarget (each worker
    runs the core's network loop over its share of the target's
    connections, as wrk shares them among its threads), a
    "module:function" importable on the workers, or a picklable callable,
    coroutine function or Target (as run_processes).  ``deadline``
    (seconds from the start) ends each worker's schedule early; ``lead``
    (seconds, default 1) is how far ahead of the clock exchange the common
    start is set; ``connect_timeout`` (seconds, default 10) how long a
    scheduler address has to answer.  Everything is checked, and the
    cluster asked, before any load is sent: an address that does not
    answer raises ClusterError.  Returns a DistributedResult (merged result, per-worker
    breakdown, clocks)."""
    what = "run_distributed"
    kind, spec = _kind(target, what)
    plan, start, schedule = _checks.stages(what, stages, rate, duration, start_rate)
    every = _checks.seconds(interval, f"{what}: interval")
    stop = _checks.optional(_checks.seconds)(deadline, f"{what}: deadline")
    ahead = _checks.seconds(lead, f"{what}: lead")
    wait = _checks.seconds(connect_timeout, f"{what}: connect_timeout")
    limit = _checks.integer(concurrency, f"{what}: concurrency", low=1)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ArgumentTypeError(f"{what}: payload must be bytes, not {type(payload).__name__}")
    call_args = tuple(args)
    if stop is None and kind == "network":
        stop = schedule.duration_ns / 1e9 + float(spec["timeout"])
    called = time.monotonic()
    client, owned = _client(cluster, what, wait)
    try:
        info = _workers(client)
        available = sorted(info)
        n = len(available) if workers is None else _checks.integer(workers, f"{what}: workers",
                                                                   low=1)
        if n > len(available):
            raise ClusterError(f"{what}: {n} workers asked, the cluster has "
                               f"{len(available)}: {', '.join(available) or 'none'}")
        chosen = available[:n]
        if shares is None:
            weights: Sequence[float] = [1] * n
        else:
            weights = list(shares)
            if len(weights) != n:
                raise ArgumentError(f"{what}: {len(weights)} shares for {n} workers; give one "
                                    f"share per worker")
        from ._segments import share_of, stripes
        parts = stripes(weights) if n > 1 else [None]
        fractions = [share_of(s) for s in parts]
        specs = [spec] * n
        if kind == "network":
            # the target's connections in all, shared out as the arrivals are
            total = int(getattr(target, "connections"))
            if total < n:
                raise ArgumentError(f"{what}: the target has {total} connection(s) for {n} "
                                    f"workers; each worker needs one at least")
            specs = [target.with_connections(  # type: ignore[attr-defined]
                         total // n + (1 if i < total % n else 0))._loop_arguments()
                     for i in range(n)]
        clocks = [_offset(client, address, SAMPLES) for address in chosen]
        run = uuid.uuid4().hex
        start_ns = time.time_ns() + int(ahead * 1e9)
        setup = time.monotonic() - called + ahead
        futures = [client.submit(_run_share, run, i, kind, specs[i], plan, start, parts[i],
                                 start_ns, clocks[i][0], every, stop, bytes(payload),
                                 call_args, limit, workers=[address], allow_other_workers=False,
                                 retries=0, pure=False, key=f"caxton-meter-{run}-{i}")
                   for i, address in enumerate(chosen)]
        # a task still running on a worker still there is waited for: a
        # worker behind its schedule sends late but sends all (no deadline
        # given); with a deadline, past it and the grace it is lost
        latest = (None if stop is None else start_ns / 1e9 + stop + _GRACE
                  + (float(spec["timeout"]) if kind == "network" else 0.0))
        outcome = _await(client, futures, chosen, latest)
        streamed: dict[int, list[dict[str, Any]]] = {}
        for _, msg in client.get_events(_TOPIC):
            if isinstance(msg, dict) and msg.get("run") == run:
                streamed.setdefault(msg["index"], []).append(msg)
        for f in futures:
            if not f.done():
                f.cancel()
    finally:
        if owned:
            client.close()
    reports = []
    results = []
    for i, address in enumerate(chosen):
        state, value = outcome[i]
        got = sorted(streamed.get(i, []), key=lambda m: m["k"])
        if state == "done":
            res = value["result"]
            skew = value["started_ns"] - start_ns
            shifted = _on_common_time(res, address, skew)
            results.append(shifted)
            reports.append(WorkerReport(address, value["host"], value["pid"], fractions[i],
                                        clocks[i][0], clocks[i][1], skew, "done", shifted,
                                        len(got)))
        else:
            partial = _partial_result(address, got, schedule.duration_ns,
                                      spec["protocol"] if kind == "network" else None)
            if partial is not None:
                results.append(partial)
            reports.append(WorkerReport(address, str(info[address].get("host", "?")),
                                        int(info[address].get("pid", -1)), fractions[i],
                                        clocks[i][0],
                                        clocks[i][1], None, state, partial, len(got),
                                        None if state == "lost" else value))
    if not results:
        raise ClusterError(f"{what}: no worker returned anything: "
                           + "; ".join(r.note or r.name for r in reports))
    from ._multiload import _merged
    merged = _merged(results, f"{n} Dask workers")
    asked = (sum(fractions) * schedule_rate(plan, start))
    return DistributedResult(merged, tuple(reports), start_ns / 1e9, setup, asked)


def schedule_rate(plan: list[tuple[float, float]], start: float | None) -> float:
    """The mean arrival rate of stages (k6's linear ramps)."""
    previous = plan[0][0] if start is None else start
    total = length = 0.0
    for rate, seconds in plan:
        total += (previous + rate) / 2 * seconds
        length += seconds
        previous = rate
    return total / length if length else 0.0


def _on_common_time(res: OpenLoopResult, source: str, skew_ns: int) -> OpenLoopResult:
    """A worker's result with its source named and its intervals on the
    common time (ns from the common start)."""
    from ._multiload import _labelled
    t0 = res.intervals[0].start_ns if res.intervals else 0
    intervals = tuple(LoadInterval(start_ns=iv.start_ns - t0 + skew_ns,
                                   end_ns=iv.end_ns - t0 + skew_ns, sent=iv.sent,
                                   completed=iv.completed, failed=iv.failed,
                                   dropped=iv.dropped, latency=iv.latency)
                      for iv in res.intervals)
    return _labelled(res, source, intervals)


def _workers(client: Any) -> dict[str, dict[str, Any]]:
    """The cluster's workers now, by address (every one of them: newer
    Dask versions list five unless asked for all)."""
    try:
        return dict(client.scheduler_info(n_workers=-1)["workers"])
    except TypeError:
        return dict(client.scheduler_info()["workers"])


def _await(client: Any, futures: list[Any], chosen: list[str], latest: float | None
           ) -> dict[int, tuple[str, Any]]:
    """Each task's outcome: ("done", its value), ("failed", the error) or
    ("lost", None) when its worker left the cluster or nothing came back
    by ``latest`` (seconds since the epoch; None: no limit while the
    worker is there)."""
    outcome: dict[int, tuple[str, Any]] = {}
    while len(outcome) < len(futures):
        present = set(_workers(client))
        for i, f in enumerate(futures):
            if i in outcome:
                continue
            if f.status == "finished":
                outcome[i] = ("done", f.result())
            elif f.status == "lost":
                outcome[i] = ("lost", None)
            elif f.status in ("error", "cancelled"):
                try:
                    f.result()
                    outcome[i] = ("failed", "cancelled")
                except BaseException as e:     # the task's own error, named
                    if type(e).__name__ == "KilledWorker":    # its worker died under it
                        outcome[i] = ("lost", None)
                    else:
                        outcome[i] = ("failed", f"{type(e).__name__}: {e}")
            elif chosen[i] not in present or (latest is not None and time.time() > latest):
                outcome[i] = ("lost", None)
        if len(outcome) < len(futures):
            time.sleep(_POLL)
    return outcome
