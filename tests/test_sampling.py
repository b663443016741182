"""The resource sampler: samples at the interval, CPU % and memory that follow
what the process does, per-agent figures, its own overhead, the JSON round
trip, another process sampled by pid (and exiting), and bad inputs.

Bounds are wide on purpose: the tests run on a busy 2-core machine, where a
sample may come late and a busy loop may get less than a whole core."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

import caxton_meter
from caxton_meter._sampling import (
    FORMAT_VERSION,
    ResourceProfile,
    ResourceSample,
    ResourceSampler,
    cpu_per_agent,
    memory_per_agent,
    profile,
)

MiB = 1 << 20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux USS")


def busy(seconds: float) -> int:
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n += 1
    return n


def no_sampler_threads() -> bool:
    return not any(t.name.startswith("caxton_meter-sampler") for t in threading.enumerate())


def test_samples_arrive_at_the_interval() -> None:
    with ResourceSampler(0.05) as sampler:          # 20 Hz over ~0.5 s: ~10 ticks + the end
        time.sleep(0.5)
    p = sampler.profile
    assert p is not None
    assert 5 <= len(p.samples) <= 13
    assert 0.45 <= p.duration <= 2.0
    times = [p.start_time] + [s.time for s in p.samples]
    assert all(b > a for a, b in zip(times, times[1:]))
    # Ticks taken + ticks skipped account for the window (the end sample is not a tick).
    assert abs(len(p.samples) - 1 + p.missed_ticks - p.duration / 0.05) <= 2
    assert 0.04 <= p.samples[0].time - p.start_time <= 0.5
    assert p.samples[-1].time == pytest.approx(p.start_time + p.duration)
    now = caxton_meter.now_ns() / 1e9
    assert p.start_time < now < p.start_time + 60       # the core's monotonic clock
    assert abs(p.start_wall_time - time.time()) < 60
    assert all(s.rss_bytes > 0 and s.num_threads >= 2 for s in p.samples)   # + the sampler
    assert p.max_threads >= 2
    assert not p.process_exited
    assert no_sampler_threads()


def test_the_thread_is_a_daemon_and_stops() -> None:
    sampler = ResourceSampler(0.01, uss=False)
    sampler.start()
    threads = [t for t in threading.enumerate() if t.name.startswith("caxton_meter-sampler")]
    assert len(threads) == 1 and threads[0].daemon
    assert sampler.running and "running" in repr(sampler)
    first = sampler.stop()
    assert not sampler.running and no_sampler_threads()
    with pytest.raises(RuntimeError, match="not running"):
        sampler.stop()
    sampler.start()                                  # a new window
    with pytest.raises(RuntimeError, match="already running"):
        sampler.start()
    second = sampler.stop()
    assert second.start_time > first.start_time
    assert sampler.profile is second


def test_cpu_percent_busy_versus_idle() -> None:
    _, hot = profile(busy, 0.6, interval=0.05)
    _, idle = profile(time.sleep, 0.6, interval=0.05)
    assert hot.mean_cpu_percent is not None and idle.mean_cpu_percent is not None
    # a busy loop gets what the machine gives it (under other CPU-bound
    # processes a quarter of a core, measured): far more than a sleep, which
    # uses next to nothing
    assert hot.mean_cpu_percent > max(10.0, 5 * idle.mean_cpu_percent)
    assert idle.mean_cpu_percent < 10
    assert hot.max_cpu_percent is not None and hot.max_cpu_percent > 10
    assert hot.cpu_user_seconds + hot.cpu_system_seconds > 0.06
    # The mean comes from the cumulative CPU times at the window's two ends.
    used = hot.cpu_user_seconds + hot.cpu_system_seconds
    assert hot.mean_cpu_percent == pytest.approx(100 * used / hot.duration)
    assert cpu_per_agent(hot, 4) == pytest.approx(hot.mean_cpu_percent / 4)


def test_a_busy_thread_shows_in_cpu_percent() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spin)
    with ResourceSampler(0.05, uss=False) as sampler:
        thread.start()
        time.sleep(0.6)
        stop.set()
    thread.join()
    assert sampler.profile is not None and sampler.profile.mean_cpu_percent is not None
    assert sampler.profile.mean_cpu_percent > 10      # the thread's share of a crowded machine


def test_rss_grows_with_a_touched_array() -> None:
    with ResourceSampler(0.05) as before_sampler:
        time.sleep(0.1)
    with ResourceSampler(0.05) as sampler:
        array = np.ones(100 * MiB // 8)             # 100 MiB, every page written
        time.sleep(0.2)
    before, after = before_sampler.profile, sampler.profile
    assert before is not None and after is not None
    assert after.peak_rss - after.rss_start > 80 * MiB
    assert after.samples[-1].rss_bytes - before.samples[-1].rss_bytes > 80 * MiB
    assert memory_per_agent(before, after, 1, basis="rss") > 80 * MiB
    assert after.peak_rss >= after.mean_rss >= after.rss_start
    del array


# A child that allocates N bytearrays of 1 MiB (zero-filled, so every page is
# touched) when told: its heap holds no freed memory the agents could reuse
# unseen, as the test process's might after other tests.
AGENTS = """
import sys
sys.stdout.write("ready\\n"); sys.stdout.flush()
n = int(sys.stdin.readline())
agents = [bytearray(1 << 20) for _ in range(n)]
sys.stdout.write("done\\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def test_memory_per_agent_of_one_mib_agents() -> None:
    n = 64
    child = subprocess.Popen([sys.executable, "-c", AGENTS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        with ResourceSampler(0.05, pid=child.pid) as sampler:
            time.sleep(0.05)
        before = sampler.profile
        child.stdin.write(f"{n}\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        with ResourceSampler(0.05, pid=child.pid) as sampler:
            time.sleep(0.05)
        after = sampler.profile
    finally:
        child.stdin.close()
        child.wait(10)
        child.stdout.close()
    assert before is not None and after is not None
    for basis in ("auto", "rss"):
        assert memory_per_agent(before, after, n, basis=basis) == pytest.approx(MiB, rel=0.25)
    if sys.platform.startswith("linux"):
        assert memory_per_agent(before, after, n, basis="uss") == pytest.approx(MiB, rel=0.25)
    # ints: figures already read, in bytes
    assert memory_per_agent(1000, 5000, 4) == 1000.0
    assert memory_per_agent(5000, 1000, 4) == -1000.0     # shrinking is reported, not clamped


@linux_only
def test_uss_is_read_at_both_ends_on_linux() -> None:
    with ResourceSampler(0.05) as sampler:
        time.sleep(0.1)
    p = sampler.profile
    assert p is not None
    assert p.uss_start is not None and p.uss_end is not None
    assert 0 < p.uss_start <= p.peak_rss and 0 < p.uss_end <= p.peak_rss
    assert p.uss_note is None
    assert p.uss_cost_us is not None and p.uss_cost_us > 0


def test_uss_not_requested_is_said() -> None:
    with ResourceSampler(0.05, uss=False) as sampler:
        time.sleep(0.06)
    p = sampler.profile
    assert p is not None
    assert p.uss_start is None and p.uss_end is None and p.uss_cost_us is None
    assert p.uss_note == "not requested (uss=False)"
    with pytest.raises(ValueError, match="basis='uss' but before and after has no USS"):
        memory_per_agent(p, p, 1, basis="uss")
    assert memory_per_agent(p, p, 1) == 0.0         # auto falls back to RSS


def test_overhead_is_reported() -> None:
    _, p = profile(time.sleep, 0.3, interval=0.02)
    assert p.overhead_cpu_seconds >= 0
    assert 0 <= p.overhead_percent < 50
    assert p.sample_cost_us is not None and 0 < p.sample_cost_us < 100_000
    assert p.late_samples >= 0 and p.missed_ticks >= 0 and p.max_lag >= 0


def test_falling_behind_is_counted_not_hidden() -> None:
    # A tick every 10 us: no machine samples that fast, so ticks are missed.
    with ResourceSampler(1e-5, uss=False) as sampler:
        time.sleep(0.2)
    p = sampler.profile
    assert p is not None
    assert p.missed_ticks > 0
    assert p.late_samples + p.missed_ticks > 0
    ticks = len(p.samples) - 1 + p.missed_ticks
    assert abs(ticks - p.duration / 1e-5) <= 0.05 * p.duration / 1e-5 + 2


def test_profile_returns_the_result_and_propagates_errors() -> None:
    result, p = profile(lambda a, b=0: a + b, 2, b=3, interval=0.05)
    assert result == 5 and isinstance(p, ResourceProfile)

    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        profile(fail, interval=0.05)
    assert no_sampler_threads()


def test_as_dict_from_dict_round_trip() -> None:
    _, p = profile(time.sleep, 0.15, interval=0.05)
    data = json.loads(json.dumps(p.as_dict()))
    assert data["format"] == FORMAT_VERSION == 1
    assert set(data["samples"]) == set(ResourceSample._fields)
    assert ResourceProfile.from_dict(data) == p
    # a JSON writer that drops ".0" from floats
    data["duration"] = 1
    assert ResourceProfile.from_dict(data).duration == 1.0


def test_from_dict_errors() -> None:
    _, p = profile(time.sleep, 0.06, interval=0.05, uss=False)
    good = json.loads(json.dumps(p.as_dict()))

    def load(**changes: Any) -> ResourceProfile:
        data = dict(good, **changes)
        return ResourceProfile.from_dict({k: v for k, v in data.items() if v is not DELETE})

    DELETE = object()
    with pytest.raises(ValueError, match="format 2 is not supported.*reads format 1"):
        load(format=2)
    with pytest.raises(ValueError, match="no 'format' key"):
        load(format=DELETE)
    with pytest.raises(ValueError, match="missing key 'peak_rss'"):
        load(peak_rss=DELETE)
    with pytest.raises(ValueError, match="missing key 'samples'"):
        load(samples=DELETE)
    with pytest.raises(ValueError, match="'peak_rss' must be int, got float 1.5"):
        load(peak_rss=1.5)
    with pytest.raises(ValueError, match="'process_exited' must be bool"):
        load(process_exited=0)
    with pytest.raises(ValueError, match="'pid' must be int, got bool"):
        load(pid=True)
    with pytest.raises(ValueError, match="missing column 'rss_bytes'"):
        load(samples={k: v for k, v in good["samples"].items() if k != "rss_bytes"})
    with pytest.raises(ValueError, match="differ in length"):
        load(samples=dict(good["samples"], rss_bytes=good["samples"]["rss_bytes"] + [1]))
    with pytest.raises(ValueError, match=r"'samples.rss_bytes\[0\]' must be int"):
        load(samples=dict(good["samples"],
                          rss_bytes=["x"] + good["samples"]["rss_bytes"][1:]))
    with pytest.raises(ValueError, match="a mapping, not list"):
        ResourceProfile.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [0, 0.0, -1, -0.1, 3600.5, 1e9, float("nan"),
                                      float("inf")])
def test_bad_interval(interval: float) -> None:
    with pytest.raises(ValueError, match=r"interval must be in \(0, 3600\] seconds"):
        ResourceSampler(interval)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="interval must be a number"):
        ResourceSampler("0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="interval must be a number"):
        ResourceSampler(True)
    ResourceSampler(3600)                           # the longest allowed
    with pytest.raises(ValueError, match="pid must be >= 0, got -5"):
        ResourceSampler(pid=-5)
    with pytest.raises(TypeError, match="pid must be an int"):
        ResourceSampler(pid="1")  # type: ignore[arg-type]
    _, p = profile(time.sleep, 0.01, interval=0.05, uss=False)
    for n in (0, -3):
        with pytest.raises(ValueError, match=f"n_agents must be at least 1, got {n}"):
            memory_per_agent(p, p, n)
        with pytest.raises(ValueError, match=f"n_agents must be at least 1, got {n}"):
            cpu_per_agent(p, n)
    with pytest.raises(TypeError, match="n_agents must be an int"):
        cpu_per_agent(p, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="basis must be"):
        memory_per_agent(p, p, 1, basis="pss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before must be a number of bytes >= 0"):
        memory_per_agent(-1, p, 1)


def nonexistent_pid() -> int:
    # A child that has exited and been reaped: its pid is free (and reuse
    # within a few microseconds is not to be feared).
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_nonexistent_pid() -> None:
    pid = nonexistent_pid()
    with pytest.raises(ValueError, match=f"no process with pid {pid}"):
        ResourceSampler(pid=pid)


def sleeper(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_sampling_another_process() -> None:
    child = sleeper(5)
    try:
        time.sleep(0.2)                                 # past the interpreter's start-up
        with ResourceSampler(0.05, pid=child.pid) as sampler:
            time.sleep(0.3)
        p = sampler.profile
        assert p is not None
        assert p.pid == child.pid and not p.process_exited
        assert len(p.samples) >= 3
        assert all(s.rss_bytes > 0 and s.num_threads >= 1 for s in p.samples)
        assert p.mean_cpu_percent is not None and p.mean_cpu_percent < 30   # it sleeps
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_the_process_exiting_mid_window_is_recorded(reaped: bool) -> None:
    child = sleeper(0.3)
    try:
        sampler = ResourceSampler(0.02, pid=child.pid)
        sampler.start()
        if reaped:
            child.wait()
        else:
            # Unreaped, the exited child stays a zombie (its memory reads 0).
            deadline = time.monotonic() + 10
            while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() < deadline, "the child did not exit"
                time.sleep(0.02)
        time.sleep(0.2)                                 # the sampler sees it gone
        p = sampler.stop()
    finally:
        child.kill()
        child.wait()
    assert p.process_exited
    assert p.samples and all(s.rss_bytes > 0 for s in p.samples)    # no zombie's zeros
    assert p.samples[-1].time < p.start_time + p.duration + 1e-9
    assert p.uss_start is not None or p.uss_note is not None
    assert p.uss_end is None and p.uss_note == "process exited before the end USS read"
    assert no_sampler_threads()
    assert ResourceProfile.from_dict(json.loads(json.dumps(p.as_dict()))) == p


def test_a_pid_exiting_before_start() -> None:
    child = sleeper(0)
    sampler = ResourceSampler(0.05, pid=child.pid)
    child.wait()
    with pytest.raises(ValueError, match=f"process {child.pid} has exited"):
        sampler.start()
    assert not sampler.running
