"""Timer: timing blocks and functions into a Histogram or a Recorder."""
import asyncio
import time

import pytest

from caxton_meter import Histogram, Recorder, Timer, now_ns


def test_context_manager_records_the_elapsed_time():
    h = Histogram(1, 10**10, 3)
    t0 = now_ns()
    with Timer(h) as t:
        time.sleep(0.002)
    outer = now_ns() - t0
    assert h.total_count == 1
    assert 2_000_000 <= t.elapsed_ns <= outer
    assert h.min <= t.elapsed_ns <= h.max


def test_context_manager_records_when_the_block_raises_and_does_not_swallow():
    h = Histogram(1, 10**10, 3)
    with pytest.raises(KeyError):
        with Timer(h):
            raise KeyError("x")
    assert h.total_count == 1


def test_timer_is_reusable():
    h = Histogram(1, 10**10, 3)
    t = Timer(h)
    assert t.elapsed_ns == -1
    for _ in range(5):
        with t:
            pass
    assert h.total_count == 5


def test_a_duration_outside_the_range_is_counted_not_raised():
    h = Histogram(1, 100, 2)          # 100 ns: any sleep overflows
    with Timer(h):
        time.sleep(0.001)
    assert h.total_count == 0 and h.overflow_count == 1


def test_decorator_times_every_call_and_keeps_the_function():
    h = Histogram(1, 10**10, 3)

    @Timer(h)
    def add(a, b=1):
        """Adds."""
        return a + b

    assert add(1, b=2) == 3
    assert add(5) == 6
    assert h.total_count == 2
    assert add.__name__ == "add" and add.__doc__ == "Adds."
    assert add.__wrapped__(1) == 2 and h.total_count == 2

    @Timer(h)
    def boom():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        boom()
    assert h.total_count == 3


def test_decorator_on_methods_binds_self():
    h = Histogram(1, 10**10, 3)

    class Agent:
        def __init__(self):
            self.n = 0

        @Timer(h)
        def handle(self, msg):
            self.n += msg
            return self.n

    a = Agent()
    assert a.handle(2) == 2 and a.handle(3) == 5
    assert h.total_count == 2


def test_decorator_awaits_coroutine_functions():
    h = Histogram(1, 10**10, 3)

    @Timer(h)
    async def slow(x):
        await asyncio.sleep(0.002)
        return x * 2

    assert asyncio.run(slow(21)) == 42
    assert h.total_count == 1
    assert h.min >= 2_000_000       # the await was timed, not just the call


def test_timer_into_a_recorder():
    rec = Recorder(1, 10**10, 3)
    with Timer(rec):
        pass

    @Timer(rec)
    def f():
        return 1

    f()
    assert rec.interval_histogram().total_count == 2


def test_bad_targets():
    with pytest.raises(TypeError, match="target must be a Histogram or a Recorder, got int"):
        Timer(5)
    with pytest.raises(TypeError, match="can only decorate a callable"):
        Timer(Histogram(1, 1000, 2))(42)
