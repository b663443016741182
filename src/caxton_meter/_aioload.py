"""An asyncio open loop: calls of a coroutine function paced by an arrival
schedule (k6's ramping-arrival-rate), with a concurrency limit and latency
measured from each arrival's intended time (wrk2's correction for
coordinated omission).

The compiled loops (open_loop, open_loop_call) make one call at a time on
the calling thread; a coroutine needs the event loop to run, so the pacer
here is Python, driven by the core's Schedule and clock.  asyncio is
imported when a run starts, so importing this module stays cheap.
"""
from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from ._core import Histogram, Schedule, latency_histogram, now_ns

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncInterval", "AsyncLoadResult", "open_loop_async"]

def _record(h: Histogram, value_ns: int) -> None:
    # a call longer than an hour is counted, not lost and not a crash
    if value_ns > h.highest_recordable_value:
        h.record_overflow(1)
    else:
        h.record(max(value_ns, 0))


class AsyncInterval(NamedTuple):
    """One interval of a run (as the core's LoadInterval): arrivals sent and
    dropped in it, calls that ended in it and their corrected latency."""
    start_ns: int
    end_ns: int
    sent: int
    completed: int
    failed: int
    dropped: int
    latency: Histogram


class AsyncLoadResult(NamedTuple):
    """What open_loop_async measured (as the core's OpenLoopResult)."""
    planned: int                      # arrivals the schedule held (up to an interruption)
    requests: int                     # calls started
    completed: int
    failed: int                       # raised, or cancelled by an interruption
    dropped: int                      # due while `concurrency` calls were running
    errors: dict[str, int]            # exception type name -> count
    latency: Histogram                # from intended start times
    latency_uncorrected: Histogram    # from real start times
    send_jitter: Histogram            # real start - intended start
    intervals: tuple[AsyncInterval, ...]
    elapsed_ns: int
    duration_ns: int                  # the schedule's length
    interrupted: bool                 # stopped early: the result is partial

    @property
    def achieved_rate(self) -> float:
        """Calls started per second of the schedule."""
        return self.requests * 1e9 / self.duration_ns if self.duration_ns else 0.0

    @property
    def intended_rate(self) -> float:
        return self.planned * 1e9 / self.duration_ns if self.duration_ns else 0.0


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
        _record(self.jitter, start - due)
        try:
            awaitable = fn(*args)
            if not _isawaitable(awaitable):
                self.fatal = TypeError(
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
            _record(self.latency, end - due)
            _record(self.uncorrected, end - start)
            _record(self.window, end - due)

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


def _seconds(value: object, what: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"open_loop_async: {what} must be a number of seconds, "
                        f"got {value!r}") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"open_loop_async: {what} must be > 0 seconds, got {value!r}")
    return seconds


async def open_loop_async(
    coro_fn: Callable[..., Awaitable[object]],
    stages: Iterable[tuple[float, float]],
    *,
    args: Iterable[object] = (),
    concurrency: int = 100,
    start_rate: float | None = None,
    interval: float = 1.0,
) -> AsyncLoadResult:
    """Start ``coro_fn(*args)`` as a task at the arrival rate ``stages``
    describe (as the core's open_loop: [(target rate per second, duration
    in seconds), ...], the rate moving linearly from ``start_rate``, default
    the first target), at most ``concurrency`` at a time.

    An arrival due while ``concurrency`` calls are running is dropped and
    counted (k6's dropped_iterations).  Each completed call's latency is
    measured from its intended start (``latency``) and from its real start
    (``latency_uncorrected``): a call that blocks the event loop makes the
    next ones late, and the corrected figures show it.  An exception counts
    as a failure by its type name (``errors``), never a crash.  Every
    ``interval`` seconds the counts and latencies are kept (``intervals``).

    Cancelling the run (Ctrl-C under asyncio.run, asyncio.timeout, or
    task.cancel()) or a KeyboardInterrupt from a call ends it early: calls
    in flight are cancelled (counted as failed, "Cancelled") and the partial
    result is returned with ``interrupted`` set.  A callable that returns a
    non-awaitable raises TypeError.
    """
    import asyncio

    if not callable(coro_fn):
        raise TypeError(f"open_loop_async: coro_fn must be callable (an async function), "
                        f"got {type(coro_fn).__name__}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"open_loop_async: concurrency must be an int, "
                        f"got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"open_loop_async: concurrency must be >= 1, got {concurrency}")
    interval_ns = int(_seconds(interval, "interval") * 1e9)
    try:
        schedule = Schedule(stages, start_rate=start_rate)
    except ValueError as e:     # the core's message, named for this function
        raise ValueError(str(e).replace("Schedule:", "open_loop_async:", 1)) from None
    call_args = tuple(args)

    run = _Run(asyncio.get_running_loop())
    intervals: list[AsyncInterval] = []
    planned = dropped = 0
    i_sent = i_dropped = 0
    t0 = now_ns()
    i_start = t0
    next_boundary = t0 + interval_ns

    def close_interval(now: int) -> None:
        nonlocal i_start, i_sent, i_dropped, next_boundary
        intervals.append(AsyncInterval(i_start, now, i_sent, run.i_completed, run.i_failed,
                                       i_dropped, run.window))
        run.window = latency_histogram()
        i_start, i_sent, i_dropped = now, 0, 0
        run.i_completed = run.i_failed = 0
        while next_boundary <= now:
            next_boundary += interval_ns

    n = 0
    rel = schedule.due_ns(0)
    interrupted = False
    try:
        while rel is not None and not run.interrupted and run.fatal is None:
            now = now_ns()
            while rel is not None and t0 + rel <= now:
                due = t0 + rel
                planned += 1
                if len(run.running) >= concurrency:
                    dropped += 1
                    i_dropped += 1
                else:
                    task = run.loop.create_task(run.call(coro_fn, call_args, due))
                    run.running.add(task)          # a strong reference while it runs
                    task.add_done_callback(run.done)
                    run.requests += 1
                    i_sent += 1
                n += 1
                rel = schedule.due_ns(n)
            if now >= next_boundary:
                close_interval(now)
            if rel is None:
                break
            gap = min(t0 + rel, next_boundary) - now_ns()
            # a sleep wakes on a whole millisecond at best (epoll): a short
            # gap is spun in yields rather than overslept
            await run.sleep(gap / 1e9 if gap > 50_000 else 0.0)
        # the schedule has ended: wait for the calls still running
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
    if run.running:
        for task in run.running:
            task.cancel()
        await asyncio.wait(set(run.running))
    if run.fatal is not None:
        raise run.fatal
    end = now_ns()
    close_interval(end)
    return AsyncLoadResult(
        planned=planned, requests=run.requests, completed=run.completed, failed=run.failed,
        dropped=dropped, errors=dict(run.errors), latency=run.latency,
        latency_uncorrected=run.uncorrected, send_jitter=run.jitter, intervals=tuple(intervals),
        elapsed_ns=end - t0, duration_ns=schedule.duration_ns, interrupted=interrupted)
