"""The asyncio open loop: pacing from the core's schedule, the concurrency
limit (dropped arrivals), errors by type, coordinated-omission correction,
its deadline and interruption, and its arguments read as every driver's
are.  Tolerances are generous: the test machine is shared."""
import asyncio
import time

import pytest

from caxton_meter._aioload import open_loop_async
from caxton_meter._checks import ArgumentError, ArgumentTypeError
from caxton_meter._core import LoadInterval, OpenLoopResult


async def noop():
    pass


def test_paces_a_noop_coroutine_at_the_planned_rate():
    res = asyncio.run(open_loop_async(noop, [(500, 0.5)], interval=0.1))
    assert isinstance(res, OpenLoopResult) and res.parts == ()
    assert all(isinstance(iv, LoadInterval) for iv in res.intervals)
    assert res.planned == res.requests == res.completed == 250      # 500/s for 0.5 s
    assert res.failed == res.dropped == 0 and res.errors == {} and not res.interrupted
    assert res.latency.total_count == res.latency_uncorrected.total_count == 250
    assert res.send_jitter.total_count == 250
    # sent per second of the schedule, or up to a late last send (a host stall)
    assert res.achieved_rate == pytest.approx(250e9 / max(res.duration_ns, res.last_send_ns))
    assert res.achieved_rate == pytest.approx(500, rel=0.05)
    assert res.intended_rate == pytest.approx(500)
    assert res.duration_ns == 500_000_000 and res.elapsed_ns >= 490_000_000
    # the intervals partition the run
    assert sum(iv.sent for iv in res.intervals) == 250
    assert sum(iv.completed for iv in res.intervals) == 250
    assert sum(iv.latency.total_count for iv in res.intervals) == 250
    assert 4 <= len(res.intervals) <= 8
    assert all(a.end_ns == b.start_ns for a, b in zip(res.intervals, res.intervals[1:]))
    with pytest.raises(AttributeError):
        res.requests = 0                         # immutable


def test_arrivals_with_no_free_slot_are_dropped_and_counted():
    async def slow():
        await asyncio.sleep(0.05)

    res = asyncio.run(open_loop_async(slow, [(200, 0.5)], concurrency=2))
    assert res.planned == 100
    assert res.dropped > 0 and res.requests >= 2
    assert res.requests + res.dropped == res.planned
    assert res.completed == res.requests and res.failed == 0
    # two slots of 50 ms calls start at most ~2 per 50 ms: about 20 in 0.5 s
    assert res.requests <= 40
    assert sum(iv.dropped for iv in res.intervals) == res.dropped


def test_exceptions_are_counted_by_type_and_any_awaitable_callable_is_accepted():
    n = 0

    def target(tag):                 # not async: returns an awaitable, or raises
        nonlocal n
        n += 1
        assert tag == "t"
        if n % 10 == 0:
            raise KeyError(n)

        async def body():
            if n % 10 == 5:
                raise ValueError(n)
        return body()

    res = asyncio.run(open_loop_async(target, [(400, 0.25)], args=("t",)))
    assert res.planned == res.requests == n == 100
    assert res.errors == {"KeyError": 10, "ValueError": 10}
    assert res.failed == 20 and res.completed == 80
    assert res.latency.total_count == 80
    assert sum(iv.failed for iv in res.intervals) == 20


def test_a_stall_shows_in_corrected_latency_and_hides_in_uncorrected():
    """One call blocks the event loop for 100 ms at 200/s: the ~20 calls due
    meanwhile start late, their corrected latencies spread over 0-100 ms
    (~10% of the 200 calls); from their real starts they are fast."""
    n = 0

    async def target():
        nonlocal n
        n += 1
        if n == 50:
            time.sleep(0.1)          # blocks the loop: the pacer cannot start calls

    res = asyncio.run(open_loop_async(target, [(200, 1.0)]))
    assert res.planned == res.requests == res.completed == 200 and res.dropped == 0
    ms = 1_000_000
    assert res.latency.value_at_percentile(96) > 20 * ms
    assert res.latency.max >= 90 * ms
    assert res.latency_uncorrected.value_at_percentile(96) < 10 * ms
    assert res.send_jitter.max >= 80 * ms


def test_cancelling_the_run_returns_the_partial_result():
    async def long_call():
        await asyncio.sleep(10)

    async def main():
        task = asyncio.create_task(open_loop_async(long_call, [(100, 10)]))
        await asyncio.sleep(0.3)
        task.cancel()
        return await task

    t = time.monotonic()
    res = asyncio.run(main())
    assert time.monotonic() - t < 5
    assert res.interrupted
    assert 5 <= res.planned <= 80 and res.requests == res.planned
    # every call was in flight: cancelled and counted
    assert res.completed == 0 and res.failed == res.requests
    assert res.errors == {"Cancelled": res.requests}
    assert sum(iv.failed for iv in res.intervals) == res.failed
    assert res.elapsed_ns < 5_000_000_000


def test_a_timeout_around_the_run_returns_the_partial_result():
    async def main():
        async with asyncio.timeout(0.3):
            return await open_loop_async(noop, [(100, 10)])

    res = asyncio.run(main())
    assert res.interrupted and res.completed == res.requests > 0 and res.failed == 0


def test_a_keyboard_interrupt_in_a_call_ends_the_run_cleanly():
    n = 0

    async def target():
        nonlocal n
        n += 1
        if n == 20:
            raise KeyboardInterrupt
        await asyncio.sleep(0.5)

    res = asyncio.run(open_loop_async(target, [(100, 10)]))
    assert res.interrupted and res.requests == 20
    assert res.errors["KeyboardInterrupt"] == 1
    assert res.completed + res.failed == res.requests


def test_bad_input():
    with pytest.raises(TypeError, match="coro_fn must be callable"):
        asyncio.run(open_loop_async(42, [(1, 1)]))
    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        asyncio.run(open_loop_async(noop, [(1, 1)], concurrency=0))
    with pytest.raises(TypeError, match="concurrency must be an int"):
        asyncio.run(open_loop_async(noop, [(1, 1)], concurrency=2.5))
    with pytest.raises(ValueError, match="interval must be a finite number > 0"):
        asyncio.run(open_loop_async(noop, [(1, 1)], interval=0))
    with pytest.raises(ValueError, match="open_loop_async: stage 0's rate must be a finite number "
                                         ">= 0, got -1"):
        asyncio.run(open_loop_async(noop, [(-1, 1)]))
    with pytest.raises(ValueError, match="open_loop_async: stages is empty"):
        asyncio.run(open_loop_async(noop, []))
    with pytest.raises(ValueError, match="open_loop_async: the stages last no time"):
        asyncio.run(open_loop_async(noop, [(10, 0)]))
    with pytest.raises(TypeError, match="returned int, not an awaitable"):
        asyncio.run(open_loop_async(lambda: 3, [(100, 1)]))


def test_a_deadline_stops_the_schedule_and_lets_the_calls_in_flight_finish():
    finished = 0

    async def call():
        nonlocal finished
        await asyncio.sleep(0.1)
        finished += 1

    # 10 s planned; the deadline cuts it at 0.3 s
    res = asyncio.run(open_loop_async(call, [(100, 10)], deadline=0.3))
    assert res.deadline_reached and not res.interrupted
    assert 5 <= res.planned < 1000 and res.requests == res.planned
    # every call started ran to its end: none cancelled, none lost
    assert res.completed == res.requests == finished and res.failed == 0
    assert res.errors == {} and res.latency.total_count == res.completed
    # the rates are per second of the schedule run, as the core loops'
    assert res.duration_ns < 10_000_000_000
    assert res.achieved_rate == pytest.approx(
        res.requests * 1e9 / max(res.duration_ns, res.last_send_ns))
    assert sum(iv.completed for iv in res.intervals) == res.completed


def test_a_deadline_past_the_schedule_changes_nothing():
    res = asyncio.run(open_loop_async(noop, [(400, 0.1)], deadline="10s"))
    assert not res.deadline_reached and res.planned == res.completed == 40
    assert res.duration_ns == 100_000_000


def test_rates_and_durations_are_taken_with_their_units():
    res = asyncio.run(open_loop_async(noop, rate="2K/s", duration="200ms", interval="50ms"))
    assert res.planned == res.requests == res.completed == 400       # 2000/s for 0.2 s
    assert res.intended_rate == pytest.approx(2000)
    # 1000/s for 0.1 s, then a ramp from 1000/s to 2000/s over 0.05 s
    staged = asyncio.run(open_loop_async(noop, [("1K/s", "100ms"), (2000, "0.05")],
                                         start_rate="1K/s"))
    assert staged.planned == 100 + 75


@pytest.mark.parametrize("kwargs, error, message", [
    ({"interval": True}, ArgumentTypeError, "open_loop_async: interval must be a number or a "
                                            "string with a unit"),
    ({"deadline": True}, ArgumentTypeError, "open_loop_async: deadline must be a number"),
    ({"concurrency": True}, ArgumentTypeError, "open_loop_async: concurrency must be an int, "
                                               "not bool"),
    ({"stages": [(True, 1)]}, ArgumentTypeError, "open_loop_async: stage 0's rate must be a "
                                                 "number, not bool"),
    ({"stages": [(10, True)]}, ArgumentTypeError, "open_loop_async: stage 0's duration must be"),
    ({"rate": True, "duration": 1}, ArgumentTypeError, "open_loop_async: rate must be a number"),
    ({"rate": 10, "duration": "2 parsecs"}, ArgumentError, "open_loop_async: duration: "),
    ({"rate": "fast", "duration": 1}, ArgumentError, "open_loop_async: rate: "),
    ({"deadline": 0}, ArgumentError, "open_loop_async: deadline must be a finite number > 0, got 0"),
    ({}, ArgumentError, "open_loop_async: give stages, or rate= .* and duration="),
    ({"stages": [(1, 1)], "rate": 1}, ArgumentError, "give stages, or rate= and duration=, "
                                                     "not both"),
    ({"stages": [(1, 2, 3)]}, ArgumentError, r"stage 0 must be \(rate per second, duration in "
                                             r"seconds\), got \(1, 2, 3\)"),
])
def test_a_wrong_argument_is_refused_naming_it_and_its_value(kwargs, error, message):
    kwargs.setdefault("stages", None)
    with pytest.raises(error, match=message):
        asyncio.run(open_loop_async(noop, **kwargs))
