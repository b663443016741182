"""Load from several processes: each runs the core's open_loop_call at 1/N
of the rate; the parent merges their histograms (sent in the V2 encoding)
exactly (OpenLoopResult.merge), keeping each process's result as a part.
Targets are stdlib functions, importable in spawned children."""
import os
import re

import pytest

from caxton_meter import Histogram
from caxton_meter._checks import ArgumentTypeError
from caxton_meter._core import OpenLoopResult, open_loop_call
from caxton_meter._multiload import WorkerError, run_processes


def test_two_processes_share_the_rate_and_merge_exactly():
    res = run_processes("os:getpid", [(1000, 0.5)], processes=2, interval=0.1)
    assert isinstance(res, OpenLoopResult) and res.source == "2 processes"
    parts = res.parts
    assert len(parts) == 2 and all(isinstance(p, OpenLoopResult) for p in parts)
    labels = [re.fullmatch(r"process (\d) \(pid (\d+)\)", p.source) for p in parts]
    assert [int(m[1]) for m in labels] == [0, 1]
    assert len({int(m[2]) for m in labels} | {os.getpid()}) == 3   # two other processes
    for p in parts:                           # 500/s each for 0.5 s
        assert p.parts == ()
        assert p.planned == p.requests == p.completed == 250 and p.dropped == 0
        assert sum(iv.sent for iv in p.intervals) == 250
    # totals are the sums
    for field in ("planned", "requests", "completed", "failed", "dropped"):
        assert getattr(res, field) == sum(getattr(p, field) for p in parts), field
    assert res.planned == 500 and res.errors == {} and not res.interrupted
    # over the schedule, or up to the last send when a stall made it late
    assert res.achieved_rate == pytest.approx(500e9 / max(res.duration_ns, res.last_send_ns))
    assert res.last_send_ns == max(p.last_send_ns for p in parts) > 0
    assert res.achieved_rate == pytest.approx(1000, rel=0.05)
    # the merged histograms are the workers' added: counts and every bucket
    for field in ("latency", "latency_uncorrected", "send_jitter"):
        merged = getattr(res, field)
        assert merged.total_count == sum(getattr(p, field).total_count for p in parts) == 500
        by_hand = Histogram(1, 3_600_000_000_000, 3)
        for p in parts:
            by_hand.add(Histogram.decode(getattr(p, field).encode()))
        assert merged == by_hand, field
        assert merged.max == max(getattr(p, field).max for p in parts)
    # the k-th intervals of the processes are added into the k-th merged one
    assert len(res.intervals) == max(len(p.intervals) for p in parts)
    for k, iv in enumerate(res.intervals):
        same = [p.intervals[k] for p in parts if k < len(p.intervals)]
        for field in ("sent", "completed", "failed", "dropped"):
            assert getattr(iv, field) == sum(getattr(s, field) for s in same), (k, field)
        by_hand = Histogram(1, 3_600_000_000_000, 3)
        for s in same:
            by_hand.add(s.latency)
        assert iv.latency == by_hand, k
    assert sum(iv.sent for iv in res.intervals) == 500


def test_worker_errors_from_calls_are_counted_and_merged():
    # int("x") raises ValueError in every call of every worker
    res = run_processes("builtins:int", [(200, 0.25)], processes=2, args=("x",))
    assert res.planned == res.requests == res.failed == 50
    assert res.errors == {"ValueError": 50}
    assert sum(p.errors["ValueError"] for p in res.parts) == 50
    assert res.completed == 0 and res.latency.total_count == 0


def test_one_process_counts_as_one_open_loop_call_run():
    stages = [(400, 0.25), (800, 0.25)]
    res = run_processes(os.getpid, stages, processes=1)        # a picklable callable
    single = open_loop_call(os.getpid, stages)
    assert len(res.parts) == 1
    for field in ("planned", "requests", "completed", "failed", "dropped"):
        assert getattr(res, field) == getattr(single, field), field
    assert res.latency.total_count == single.latency.total_count == single.completed
    assert res.duration_ns == single.duration_ns


@pytest.mark.parametrize("spec, error", [
    ("nomodule:fn", "ModuleNotFoundError: No module named 'nomodule'"),
    ("os:nosuchfn", "AttributeError: module 'os' has no attribute 'nosuchfn'"),
    ("os:sep", "TypeError: 'os:sep' is a str, not callable"),
])
def test_a_target_that_cannot_be_loaded_raises_naming_the_spec(spec, error):
    with pytest.raises(WorkerError) as info:
        run_processes(spec, [(100, 0.1)], processes=2)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert f"while loading {spec!r}" in message and error in message
    assert "process 0 of 2" in message and "process 1 of 2" in message
    assert [f.process for f in info.value.failures] == [0, 1]
    assert all(f.phase == "loading" and f.traceback for f in info.value.failures)


def test_a_worker_that_dies_is_reported_not_merged_without_it():
    with pytest.raises(WorkerError, match=r"process 0 of 1 \(pid \d+\) failed while running "
                                          r"'os:_exit': ProcessExit: .*exit code 3"):
        run_processes("os:_exit", [(100, 0.1)], processes=1, args=(3,))


def test_bad_input():
    with pytest.raises(ValueError, match="processes must be >= 1, got 0"):
        run_processes("os:getpid", [(1, 1)], processes=0)
    with pytest.raises(TypeError, match="processes must be an int"):
        run_processes("os:getpid", [(1, 1)], processes=1.5)
    with pytest.raises(ValueError, match="fn_spec must be 'module:function', got 'os.getpid'"):
        run_processes("os.getpid", [(1, 1)])
    with pytest.raises(TypeError, match="fn_spec must be a 'module:function' string, a "
                                        "callable or a target with request\\(payload\\)"):
        run_processes(42, [(1, 1)])
    with pytest.raises(ValueError, match="run_processes: stage 0's rate must be a finite number "
                                         ">= 0, got -1"):
        run_processes("os:getpid", [(-1, 1)])
    with pytest.raises(ValueError, match="interval must be a finite number > 0"):
        run_processes("os:getpid", [(1, 1)], interval=0)
    with pytest.raises(TypeError, match="cannot be pickled"):
        run_processes(lambda: None, [(1, 1)])
    with pytest.raises(ArgumentTypeError, match="run_processes: interval must be a number or a "
                                                "string with a unit"):
        run_processes("os:getpid", [(1, 1)], interval=True)
    with pytest.raises(ArgumentTypeError, match="run_processes: processes must be an int, "
                                                "not bool"):
        run_processes("os:getpid", [(1, 1)], processes=True)


def test_a_deadline_ends_every_process_and_rates_and_durations_take_units():
    res = run_processes("os:getpid", rate="1K/s", duration="10s", processes=2, deadline="200ms")
    assert res.deadline_reached and all(p.deadline_reached for p in res.parts)
    assert 0 < res.planned < 10_000 and res.planned == res.requests + res.dropped
    assert res.completed == res.requests
    assert res.duration_ns == max(p.duration_ns for p in res.parts) < 10_000_000_000


class FileTarget:
    """A Target whose setup and teardown leave a file each, per worker."""

    def __init__(self, folder):
        self.folder = folder

    def setup(self):
        open(os.path.join(self.folder, f"setup-{os.getpid()}"), "w").close()

    def request(self, payload):
        assert payload == b"ping"

    def teardown(self):
        open(os.path.join(self.folder, f"teardown-{os.getpid()}"), "w").close()


class AsyncEcho:
    async def request(self, payload):
        import asyncio
        await asyncio.sleep(0)
        return payload


async def nap():
    import asyncio
    await asyncio.sleep(0.001)


def test_targets_and_async_callables_run_in_every_worker(tmp_path):
    res = run_processes(FileTarget(str(tmp_path)), [(400, 0.3)], processes=2, payload=b"ping")
    assert res.completed == res.requests > 0 and res.failed == 0
    pids = {p.source.split("pid ")[1].rstrip(")") for p in res.parts}
    assert {f.name for f in tmp_path.iterdir()} == (
        {f"setup-{p}" for p in pids} | {f"teardown-{p}" for p in pids})
    res = run_processes(AsyncEcho(), [(400, 0.3)], processes=2, payload=b"x", concurrency=4)
    assert res.completed == res.requests > 0 and res.failed == 0
    res = run_processes(nap, [(200, 0.3)], processes=2)
    assert res.completed == res.requests > 0
    assert res.latency.min >= 1_000_000               # each call slept a millisecond


def test_a_script_without_the_main_guard_is_told_what_to_write(tmp_path):
    import subprocess
    import sys
    script = tmp_path / "unguarded.py"
    script.write_text("import caxton_meter as cm\n"
                      "cm.run_processes('os:getpid', [(100, 0.2)], processes=1)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert "WorkerError" in done.stderr
    assert 'start the load under `if __name__ == "__main__":`' in done.stderr


def test_what_a_worker_writes_to_stderr_reaches_the_parents(capfd):
    run_processes("os:write", [(20, 0.1)], processes=1, args=(2, b"from the worker\n"))
    assert "from the worker" in capfd.readouterr().err


# --- network targets -------------------------------------------------------------------------

@pytest.mark.skipif(not os.uname().sysname == "Linux", reason="the network loop is Linux's")
def test_a_network_target_shares_its_connections_and_its_results_merge_as_network_results(
        nginx):
    from caxton_meter import HttpTarget, NetworkResult
    from caxton_meter._checks import ArgumentError
    target = HttpTarget(nginx.url, connections=5, timeout=2)
    res = run_processes(target, rate=400, duration=0.25, processes=2)
    assert isinstance(res, NetworkResult) and res.source == "2 processes"
    assert all(isinstance(p, NetworkResult) for p in res.parts)
    # 5 connections shared out: 3 and 2
    assert sorted(p.connections for p in res.parts) == [2, 3] and res.connections == 5
    assert res.planned == res.completed == 100 and res.failed == 0
    assert res.status_classes["2xx"] == 100 == sum(p.status_classes["2xx"] for p in res.parts)
    assert res.connect_time.total_count == res.connects == 5
    assert res.bytes_received == sum(p.bytes_received for p in res.parts) > 0
    assert res.protocol == "http" and not res.closed_loop
    with pytest.raises(ArgumentError, match="1 connection"):
        run_processes(HttpTarget(nginx.url, connections=1), rate=10, duration=0.1, processes=2)
    with pytest.raises(ArgumentError, match="not for a network target"):
        run_processes(target, rate=10, duration=0.1, payload=b"x")
