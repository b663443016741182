"""The clock: monotonic nanoseconds read in C, and its measured floor."""
import pickle
import time

import pytest

from caxton_meter import clock_info, now_ns, wall_time


def test_now_ns_is_monotonic_nanoseconds():
    a = now_ns()
    time.sleep(0.01)
    b = now_ns()
    assert isinstance(a, int)
    assert 10_000_000 <= b - a < 5_000_000_000
    # the same clock as time.monotonic_ns on this platform
    assert abs(now_ns() - time.monotonic_ns()) < 50_000_000


def test_wall_time_is_the_epoch_clock():
    assert abs(wall_time() - time.time()) < 0.05


def test_clock_info_reports_a_plausible_floor():
    info = clock_info()
    assert info.implementation
    assert info.reported_resolution_ns >= 1
    assert 1 <= info.resolution_ns < 1_000_000
    assert 0 < info.overhead_ns < 100_000
    assert info.python_overhead_ns > 0
    d = info.as_dict()
    assert d["resolution_ns"] == info.resolution_ns
    again = pickle.loads(pickle.dumps(info))
    assert again.as_dict() == d
    assert "resolution_ns=" in repr(info)
    with pytest.raises(AttributeError):
        info.resolution_ns = 5


def test_clock_info_rejects_too_few_reads():
    with pytest.raises(ValueError, match="reads must be >= 1000, got 10"):
        clock_info(10)
