"""An asyncio open loop: calls of a coroutine function paced by an arrival
schedule (k6's ramping-arrival-rate), with a concurrency limit and latency
measured from each arrival's intended time (wrk2's correction for
coordinated omission).

The compiled loops (open_loop, open_loop_call) make one call at a time on
the calling thread; a coroutine needs the event loop to run, so the pacer
here is Python, driven by the core's Schedule and clock.  It returns the
core's OpenLoopResult, as every driver does.  asyncio is imported when a
run starts, so importing this module stays cheap.

The schedule's arguments of every driver outside the core (this loop, the
Target drivers, the worker processes) are read by ``checked_stages``.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from . import _checks
from ._checks import Stages
from ._core import (
    LoadInterval,
    OpenLoopResult,
    Schedule,
    latency_histogram,
    now_ns,
    record_clamped,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["open_loop_async"]

# The result types of this loop before it returned the core's: kept as
# aliases for one release, for code that names them (0.1 -> 0.2).
AsyncLoadResult = OpenLoopResult
AsyncInterval = LoadInterval

def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Run:
    """The state the pacer and the call tasks share (one event loop, one
    thread: no locks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.requests = self.completed = self.failed = 0
        self.i_completed = self.i_failed = 0          # in the current interval
        self.errors: dict[str, int] = {}
        self.latency = latency_histogram()
        self.uncorrected = latency_histogram()
        self.jitter = latency_histogram()
        self.window = latency_histogram()
        self.running: set[asyncio.Task[None]] = set()
        self.interrupted = False
        self.fatal: BaseException | None = None       # a misuse that ends the run
        self.waiter: asyncio.Future[None] | None = None

    def fail(self, name: str) -> None:
        self.failed += 1
        self.i_failed += 1
        self.errors[name] = self.errors.get(name, 0) + 1

    def stop(self) -> None:
        if self.waiter is not None:
            _wake(self.waiter)

    async def sleep(self, seconds: float) -> None:
        # asyncio.sleep, but one that stop() can end early
        fut: asyncio.Future[None] = self.loop.create_future()
        handle = self.loop.call_later(seconds, _wake, fut)
        self.waiter = fut
        try:
            await fut
        finally:
            handle.cancel()
            self.waiter = None

    async def call(self, fn: Callable[..., Awaitable[object]], args: tuple[object, ...],
                   due: int) -> None:
        start = now_ns()
        record_clamped(self.jitter, start - due)
        try:
            awaitable = fn(*args)
            if not _isawaitable(awaitable):
                self.fatal = _checks.ArgumentTypeError(
                    f"open_loop_async: coro_fn returned {type(awaitable).__name__}, not an "
                    "awaitable; pass an async function (or a callable returning an awaitable)")
                self.stop()
                return
            await awaitable
        except KeyboardInterrupt:
            # raised out of a task it would escape the event loop and lose
            # the run: count it and end the run with the partial result
            self.fail("KeyboardInterrupt")
            self.interrupted = True
            self.stop()
        except Exception as e:        # CancelledError is not: done() counts it
            self.fail(type(e).__name__)
        else:
            end = now_ns()
            self.completed += 1
            self.i_completed += 1
            record_clamped(self.latency, end - due)
            record_clamped(self.uncorrected, end - start)
            record_clamped(self.window, end - due)

    def done(self, task: asyncio.Task[None]) -> None:
        # runs before anyone awaiting the task resumes (callbacks run in the
        # order added), so counts are complete once asyncio.wait returns; a
        # task cancelled before it started never ran call(): counted here
        self.running.discard(task)
        if task.cancelled():
            self.fail("Cancelled")


def _isawaitable(obj: object) -> bool:
    import inspect             # asyncio has imported it already

    return inspect.isawaitable(obj)


_SPIN_NS = 1_100_000     # the last stretch before an arrival: spun, not slept


async def open_loop_async(
    coro_fn: Callable[..., Awaitable[object]],
    stages: Stages | None = None,
    *,
    rate: float | str | None = None,
    duration: float | str | None = None,
    args: Iterable[object] = (),
    concurrency: int = 100,
    start_rate: float | str | None = None,
    interval: float | str = 1.0,
    deadline: float | str | None = None,
    stripe: bytes | None = None,
) -> OpenLoopResult:
    """Start ``coro_fn(*args)`` as a task at the arrival rate ``stages``
    describe (as the core's open_loop: [(target rate per second, duration
    in seconds), ...], the rate moving linearly from ``start_rate``, default
    the first target), or at a constant ``rate`` for ``duration``, at most
    ``concurrency`` at a time.  Rates and durations may carry their units
    ("2K/s", "200ms").

    An arrival due while ``concurrency`` calls are running is dropped and
    counted (k6's dropped_iterations).  Each completed call's latency is
    measured from its intended start (``latency``) and from its real start
    (``latency_uncorrected``): a call that blocks the event loop makes the
    next ones late, and the corrected figures show it.  An exception counts
    as a failure by its type name (``errors``), never a crash.  Every
    ``interval`` seconds the counts and latencies are kept (``intervals``).
    Returns the core's OpenLoopResult.

    ``deadline`` (seconds from the start) ends the schedule early, as the
    core loops' does: no call starts after it, the calls in flight finish,
    and the partial result comes back with ``deadline_reached``.
    Cancelling the run (Ctrl-C under asyncio.run, asyncio.timeout, or
    task.cancel()) or a KeyboardInterrupt from a call ends it at once: calls
    in flight are cancelled (counted as failed, "Cancelled") and the partial
    result is returned with ``interrupted`` set.  A callable that returns a
    non-awaitable raises TypeError.  ``stripe``: this loop's share of the
    schedule, as the core's open_loop's.
    """
    import asyncio

    what = "open_loop_async"
    if not callable(coro_fn):
        raise _checks.ArgumentTypeError(f"{what}: coro_fn must be callable (an async function), "
                                        f"got {type(coro_fn).__name__}")
    limit = _checks.integer(concurrency, f"{what}: concurrency", low=1)
    interval_ns = int(_checks.seconds(interval, f"{what}: interval") * 1e9)
    deadline_s = _checks.optional(_checks.seconds)(deadline, f"{what}: deadline")
    deadline_ns = None if deadline_s is None else int(deadline_s * 1e9)
    _, _, schedule = _checks.stages(what, stages, rate, duration, start_rate, stripe)
    call_args = tuple(args)

    run = _Run(asyncio.get_running_loop())
    intervals: list[LoadInterval] = []
    planned = dropped = 0
    i_sent = i_dropped = 0
    t0 = now_ns()
    i_start = t0
    next_boundary = t0 + interval_ns
    stop_at = None if deadline_ns is None else t0 + deadline_ns
    stopped_ns: int | None = None       # when the schedule was cut short, from t0

    def close_interval(now: int) -> None:
        nonlocal i_start, i_sent, i_dropped, next_boundary
        intervals.append(LoadInterval(start_ns=i_start, end_ns=now, sent=i_sent,
                                      completed=run.i_completed, failed=run.i_failed,
                                      dropped=i_dropped, latency=run.window))
        run.window.reset()
        i_start, i_sent, i_dropped = now, 0, 0
        run.i_completed = run.i_failed = 0
        while next_boundary <= now:
            next_boundary += interval_ns

    n = 0
    last_send: int | None = None
    rel = schedule.due_ns(0)
    interrupted = reached = False
    try:
        while rel is not None and not run.interrupted and run.fatal is None:
            now = now_ns()
            if stop_at is not None and now >= stop_at:
                reached = True
                stopped_ns = now - t0
                break
            while rel is not None and t0 + rel <= now:
                due = t0 + rel
                if len(run.running) >= limit:
                    # every arrival due by now is dropped at once
                    drop = 1 + schedule.due_by(n + 1, now - t0)
                    planned += drop
                    dropped += drop
                    i_dropped += drop
                    n += drop
                else:
                    planned += 1
                    task = run.loop.create_task(run.call(coro_fn, call_args, due))
                    run.running.add(task)          # a strong reference while it runs
                    task.add_done_callback(run.done)
                    run.requests += 1
                    i_sent += 1
                    last_send = now
                    n += 1
                rel = schedule.due_ns(n)
            if now >= next_boundary:
                close_interval(now)
            if rel is None:
                break
            wake = min(t0 + rel, next_boundary)
            if stop_at is not None:
                wake = min(wake, stop_at)
            gap = wake - now_ns()
            # the event loop's timers wake on whole milliseconds (epoll's
            # timeout, rounded up): sleep what lies beyond the next
            # millisecond and 0.1 more, and spin the rest in yields, which
            # let the other tasks run, rather than oversleep it
            await run.sleep((gap - _SPIN_NS) / 1e9 if gap > _SPIN_NS else 0.0)
        # the schedule has ended (or its deadline came): wait for the calls
        # still running
        while run.running and not run.interrupted and run.fatal is None:
            timeout = max(next_boundary - now_ns(), 0) / 1e9
            await asyncio.wait(set(run.running), timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            now = now_ns()
            if now >= next_boundary:
                close_interval(now)
    except (asyncio.CancelledError, KeyboardInterrupt):
        # the run was cancelled: return what it measured (a second
        # cancellation while cleaning up below does propagate)
        interrupted = True
    interrupted = interrupted or run.interrupted
    if interrupted and stopped_ns is None:
        stopped_ns = now_ns() - t0
    if run.running:
        for task in run.running:
            task.cancel()
        await asyncio.wait(set(run.running))
    if run.fatal is not None:
        raise run.fatal
    end = now_ns()
    close_interval(end)
    duration_ns = schedule.duration_ns
    if stopped_ns is not None:
        duration_ns = min(duration_ns, stopped_ns)
        if rel is not None:             # due before the stop, never sent: behind
            unsent = schedule.due_by(n, stopped_ns)
            planned += unsent
            dropped += unsent
    return OpenLoopResult(
        planned=planned, requests=run.requests, completed=run.completed, failed=run.failed,
        dropped=dropped, errors=run.errors, latency=run.latency,
        latency_uncorrected=run.uncorrected, send_jitter=run.jitter, intervals=intervals,
        elapsed_ns=end - t0, duration_ns=duration_ns, interrupted=interrupted,
        deadline_reached=reached, last_send_ns=0 if last_send is None else last_send - t0)
