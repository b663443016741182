"""Load beyond one process: one arrival schedule shared exactly among
workers (stripes), run on a Dask cluster (a LocalCluster of 2 worker
processes here) or merged afterwards from interval logs.

Targets are functions the workers can import (the stdlib's, caxton_meter's)
and nginx on the loopback (tests/nginx_server.py)."""
import json
import os
import signal
import threading
import time

import pytest

import caxton_meter as cm
from caxton_meter import Histogram
from caxton_meter._checks import ArgumentError, ArgumentTypeError
from caxton_meter._core import Schedule, open_loop_call
from caxton_meter._distributed import ClusterError, run_distributed
from caxton_meter._logmerge import merge_logs, write_load_log
from caxton_meter._segments import stripes

from nginx_server import free_port

HIGHEST = 3_600_000_000_000


# --- stripes -------------------------------------------------------------------------------

@pytest.mark.parametrize("shares", [[1, 1], [1, 2], [1, 2, 4], [0.25, 0.75], [3, 5, 7, 11],
                                    [1] * 7])
def test_stripes_are_complementary_and_give_each_its_share_evenly(shares):
    out = stripes(shares)
    period = len(out[0])
    assert all(len(s) == period for s in out) and len(out) == len(shares)
    for j in range(period):                         # every arrival: exactly one worker
        assert sum(s[j] for s in out) == 1, j
    total = sum(shares)
    for s, share in zip(out, shares):
        assert s.count(1) == pytest.approx(period * share / total)
        # spread evenly: every gap between two of its arrivals within two
        # of the even gap (period / count)
        ones = [j for j in range(period) if s[j]]
        gaps = [b - a for a, b in zip(ones, ones[1:] + [ones[0] + period])]
        even = period / s.count(1)
        assert even - 2 <= min(gaps) and max(gaps) <= even + 2, gaps


def test_stripes_refuse_what_cannot_be_shared():
    with pytest.raises(ArgumentError, match="shares is empty"):
        stripes([])
    with pytest.raises(ArgumentError, match="share 1 must be > 0, got 0"):
        stripes([1, 0])
    with pytest.raises(ArgumentError, match="share 0 must be > 0"):
        stripes([float("nan"), 1])
    with pytest.raises(ArgumentTypeError, match="share 0 must be a number, not str"):
        stripes(["1", 1])
    with pytest.raises(ArgumentTypeError, match="a sequence of numbers"):
        stripes(3)
    with pytest.raises(ArgumentError, match="need a period of .* beyond"):
        stripes([1, 9999 / 10000, 9998 / 10000, 9997 / 10000, 1 / 9973])


@pytest.mark.parametrize("shares", [[1, 2], [1, 1, 1], [2, 3, 5]])
def test_striped_schedules_send_exactly_the_schedules_arrivals_at_their_times(shares):
    # a ramp, a jump and a constant stage: the union of the stripes' due
    # times is the whole schedule's, arrival for arrival
    stages = [(3000, 0.4), (3000, 0.0), (1000, 0.3), (2000, 0.3)]
    whole = Schedule(stages, start_rate=0)
    every = []
    n = 0
    while (t := whole.due_ns(n)) is not None:
        every.append(t)
        n += 1
    union = []
    for stripe in stripes(shares):
        part = Schedule(stages, start_rate=0, stripe=stripe)
        k = 0
        while (t := part.due_ns(k)) is not None:
            union.append(t)
            k += 1
    assert sorted(union) == every and len(every) > 1000
    # and a backlog counted at once (due_by) adds up the same way
    half = Schedule(stages, start_rate=0).due_by(0, 500_000_000)
    assert sum(Schedule(stages, start_rate=0, stripe=s).due_by(0, 500_000_000)
               for s in stripes(shares)) == pytest.approx(half, abs=len(shares))


def test_the_core_loops_check_a_stripe():
    with pytest.raises(ValueError, match="stripe holds a byte other than 0 or 1"):
        Schedule([(100, 1)], stripe=b"\x01\x02")
    with pytest.raises(ValueError, match="stripe takes no arrival"):
        open_loop_call(int, [(100, 0.1)], stripe=b"\x00\x00")
    with pytest.raises(TypeError, match="stripe must be bytes-like .* got str"):
        open_loop_call(int, [(100, 0.1)], stripe="10")
    with pytest.raises(ValueError, match="period must be 1 to"):
        Schedule([(100, 1)], stripe=b"")
    with pytest.raises(ArgumentError, match="drive: stripe takes no arrival"):
        cm.drive(type("T", (), {"request": lambda self, p: None})(), rate=10, duration=0.1,
                 stripe=b"\x00")


def test_open_loop_call_on_stripes_plans_exactly_the_whole_schedules_arrivals():
    stages = [(4000, 0.25), (1000, 0.25)]
    whole = open_loop_call(int, stages, start_rate=1000)
    parts = [open_loop_call(int, stages, start_rate=1000, stripe=s) for s in stripes([1, 3])]
    assert sum(p.planned for p in parts) == whole.planned
    assert abs(3 * parts[0].planned - parts[1].planned) <= 3
    assert all(p.dropped == 0 and p.completed == p.planned for p in parts)


def test_run_processes_plans_exactly_the_schedule_whatever_the_count():
    # 3 processes, 1001 arrivals: each takes every third, none rounds alone
    whole = open_loop_call(int, [(2002, 0.5)]).planned
    res = cm.run_processes("builtins:int", [(2002, 0.5)], processes=3)
    assert res.planned == whole
    assert sorted(p.planned for p in res.parts) == [whole // 3, whole // 3 + (whole % 3 > 1),
                                                    whole // 3 + (whole % 3 > 0)]


# --- interval logs, merged --------------------------------------------------------------------

def test_load_logs_merge_exactly_and_say_what_each_sent(tmp_path):
    stages = [(3000, 0.6)]
    logs = []
    parts = []
    for i, stripe in enumerate(stripes([1, 2])):
        start = time.time()
        res = open_loop_call(int, stages, interval=0.2, stripe=stripe)
        path = tmp_path / f"w{i}.hlog"
        write_load_log(res, path, start_time=start)
        logs.append(path)
        parts.append(res)
    merged = merge_logs(logs)
    by_hand = Histogram(1, HIGHEST, 3)
    for p in parts:
        by_hand.add(p.latency)
    assert merged.latency == by_hand
    assert merged.counts["planned"] == sum(p.planned for p in parts) \
        == open_loop_call(int, stages).planned
    for name in ("requests", "completed", "failed", "dropped"):
        assert merged.counts[name] == sum(getattr(p, name) for p in parts)
    assert [p.counts["planned"] for p in merged.parts] == [p.planned for p in parts]
    assert sum(h.total_count for _, _, h in merged.series) == merged.latency.total_count
    assert merged.step == pytest.approx(0.2, abs=0.05)
    assert merged.start_skew > 0          # run one after the other here
    # a log read by the plain reader too: the counts line is a comment
    assert sum(h.total_count for h in cm.read_log(logs[0])) == parts[0].completed


def test_merge_command_reports_and_refuses_bad_input(tmp_path, capsys):
    from caxton_meter._cli import main
    res = open_loop_call(int, [(1000, 0.3)], interval=0.1)
    a = tmp_path / "a.hlog"
    write_load_log(res, a, start_time=time.time())
    other = tmp_path / "plain.hlog"
    with cm.HistogramLogWriter(other) as log:       # a log of another tool: no counts
        log.write_header(time.time())
        h = Histogram(1, HIGHEST, 3)
        h.record(5_000_000)
        log.output_interval_histogram(h, start_time=time.time(), end_time=time.time() + 1)
    out_log = tmp_path / "merged.hlog"
    assert main(["merge", str(a), str(other), "--output", str(out_log)]) == 0
    text = capsys.readouterr().out
    assert "merged 2 interval logs" in text
    assert f"planned {res.planned:,}" in text
    assert "plain.hlog carries no caxton_meter counts line" in text
    assert sum(h.total_count for h in cm.read_log(out_log)) == res.completed + 1
    assert main(["merge", str(a), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["planned"] == res.planned and data["latency"]["count"] == res.completed
    # bad input: exit 2, one clear line
    assert main(["merge", str(a), str(a)]) == 2
    assert "is given twice" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "missing.hlog")]) == 2
    assert "missing.hlog" in capsys.readouterr().err
    garbage = tmp_path / "garbage.hlog"
    garbage.write_text("0.1,1.0,2.0,HISTnotbase64\n")
    assert main(["merge", str(garbage)]) == 2
    assert "garbage.hlog" in capsys.readouterr().err
    assert main(["merge", str(a), "--output", str(a)]) == 2
    assert "exists" in capsys.readouterr().err


# --- on a Dask cluster --------------------------------------------------------------------------

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address="127.0.0.1:0", host="127.0.0.1",
                                  scheduler_port=0) as lc:
        with distributed.Client(lc) as client:
            yield client


def _same(merged, parts):
    by_hand = Histogram(1, HIGHEST, 3)
    for p in parts:
        by_hand.add(p.latency)
    return merged.latency == by_hand


def test_two_workers_share_one_schedule_and_merge_bucket_for_bucket(cluster, nginx):
    run = run_distributed(cm.HttpTarget(nginx.url, connections=16), rate=2000, duration=2,
                          cluster=cluster, interval=0.5)
    r = run.result
    assert len(run.workers) == 2 and not run.partial
    assert r.planned == open_loop_call(int, [(2000, 2)]).planned == 4000
    assert [w.result.planned for w in run.workers] == [2000, 2000]
    assert r.dropped == 0 and r.failed == 0 and r.completed == 4000
    assert _same(r, [w.result for w in run.workers])
    assert r.achieved_rate == pytest.approx(2000, rel=0.01)
    for w in run.workers:
        assert w.state == "done" and w.share == 0.5 and w.pid != os.getpid()
        assert w.intervals_streamed == len(w.result.intervals) >= 4
        assert w.result.connections == 8          # the target's 16, shared out
        # one machine: the offset is within its uncertainty (plus a little)
        assert abs(w.offset_ns) <= w.uncertainty_ns + 1_000_000
        assert abs(w.start_skew_ns) < 100_000_000
    assert r.connections == 16 and r.status_classes["2xx"] == 4000 == sum(r.status_classes.values())
    text = run.summary()
    assert "2 workers" in text and "clock offset" in text and "start skew" in text
    # intervals on the common time: the merged k-th interval adds the workers'
    assert sum(iv.sent for iv in r.intervals) == 4000
    assert 0 < run.setup_seconds < 30


def test_uneven_shares_and_a_ramp_add_up_exactly(cluster):
    stages = [(3000, 0.5), (1000, 0.5)]
    run = run_distributed("builtins:int", stages, start_rate=500, cluster=cluster,
                          shares=[1, 2], interval=0.25)
    whole = open_loop_call(int, stages, start_rate=500).planned
    assert run.result.planned == whole
    first, second = (w.result.planned for w in run.workers)
    assert abs(2 * first - second) <= 2 and first + second == whole
    assert [round(w.share, 3) for w in run.workers] == [0.333, 0.667]
    assert _same(run.result, [w.result for w in run.workers])


def test_a_worker_too_slow_for_its_share_says_so(cluster):
    # time.sleep(0.004) one call at a time: at most 250/s a worker, asked 500
    run = run_distributed("time:sleep", rate=1000, duration=1, args=(0.004,), cluster=cluster)
    notes = [w.note for w in run.workers]
    assert all(n is not None and "fell behind" in n for n in notes), notes
    assert run.result.achieved_rate < 700


def test_a_worker_killed_mid_run_is_named_and_its_streamed_intervals_kept(cluster):
    pids = cluster.run(os.getpid)
    victim = sorted(pids)[1]

    def kill():
        time.sleep(3.0)
        os.kill(pids[victim], signal.SIGKILL)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        run = run_distributed("builtins:int", rate=1000, duration=4, cluster=cluster,
                              interval=0.5)
    finally:
        killer.join()
    assert run.partial and run.lost == (victim,)
    lost = next(w for w in run.workers if w.name == victim)
    assert lost.state == "lost" and "lost mid-run" in lost.note
    assert lost.intervals_streamed >= 2 and lost.result is not None
    assert 0 < lost.result.planned < 2000 and lost.result.interrupted
    assert "PARTIAL" in run.summary() and victim in run.summary()
    kept = next(w for w in run.workers if w.name != victim)
    assert kept.result.planned == 2000
    assert run.result.planned == 2000 + lost.result.planned
    cluster.wait_for_workers(2, timeout=60)        # the nanny starts another


def test_a_cluster_that_does_not_answer_is_an_error_before_anything_runs():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"no Dask scheduler answers at 'tcp://127.0.0.1:{port}'"):
        run_distributed("builtins:int", rate=100, duration=1,
                        cluster=f"tcp://127.0.0.1:{port}", connect_timeout=1)
    assert time.monotonic() - started < 20


def test_bad_arguments_are_refused_before_the_cluster_is_asked(cluster):
    with pytest.raises(ClusterError, match="3 workers asked, the cluster has 2"):
        run_distributed("builtins:int", rate=100, duration=1, cluster=cluster, workers=3)
    with pytest.raises(ArgumentError, match="3 shares for 2 workers"):
        run_distributed("builtins:int", rate=100, duration=1, cluster=cluster, shares=[1, 1, 1])
    with pytest.raises(ArgumentError, match="'module:function'"):
        run_distributed("int", rate=100, duration=1, cluster=cluster)
    with pytest.raises(ArgumentTypeError, match="cluster must be a scheduler address"):
        run_distributed("builtins:int", rate=100, duration=1, cluster=8786)
    with pytest.raises(ArgumentTypeError, match="cannot be pickled"):
        run_distributed(lambda: None, rate=100, duration=1, cluster=cluster)


# --- from the command line ---------------------------------------------------------------------

def test_caxton_meter_http_on_a_cluster_prints_the_workers(cluster, nginx, capsys):
    from caxton_meter._cli import main
    address = cluster.scheduler.address
    code = main(["http", nginx.url, "--rate", "1000", "--duration", "1", "-c", "4",
                 "--cluster", address, "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 workers: " in out and "clock offset" in out and "start skew" in out
    assert out.count("share 50.0%") == 2


def test_caxton_meter_http_shares_and_merge_add_up_to_the_whole_rate(nginx, tmp_path, capsys):
    from caxton_meter._cli import main
    start = time.time() + 1.0
    logs = []
    for i in (1, 2, 3):
        log = tmp_path / f"m{i}.hlog"
        assert main(["http", nginx.url, "--rate", "900", "--duration", "1", "-c", "4",
                     "--share", f"{i}/3", "--hlog", str(log)]
                    + (["--start-at", str(start)] if i == 1 else [])) == 0
        logs.append(str(log))
    capsys.readouterr()
    merged = merge_logs(logs)
    assert merged.counts["planned"] == merged.counts["completed"] == 900
    assert [p.counts["planned"] for p in merged.parts] == [300, 300, 300]
    assert main(["merge", *logs]) == 0
    assert "planned 900, sent 900, completed 900" in capsys.readouterr().out


def test_the_commands_distributed_options_are_checked_before_anything_is_sent(nginx, capsys):
    from caxton_meter._cli import main
    port = free_port()
    for argv, message in [
        (["--rate", "100", "--cluster", f"tcp://127.0.0.1:{port}"],
         f"no Dask scheduler answers at 'tcp://127.0.0.1:{port}'"),
        (["--closed", "--cluster", "tcp://127.0.0.1:1"], "give --rate, not --closed"),
        (["--rate", "100", "--workers", "2"], "--workers is for --cluster"),
        (["--rate", "100", "--share", "4/3"], "must be I/N with 1 <= I <= N"),
        (["--rate", "100", "--start-at", "1000"], "--start-at 1000.000 is in the past"),
    ]:
        started = time.monotonic()
        try:
            code = main(["http", nginx.url, "--duration", "1", *argv])
        except SystemExit as e:        # argparse's own checks exit at once
            code = e.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) <= 2, err
        assert time.monotonic() - started < 30


def test_meter_load_on_a_cluster_records_the_merged_run_and_the_workers_notes(cluster):
    from caxton_meter import Meter
    m = Meter("test_x")
    res = m.load("time:sleep", rate=1000, duration=1, args=(0.004,), cluster=cluster,
                 name="remote")
    assert res.planned == 1000 and res.requests == 1000
    measured = m.measurement("remote")
    assert measured.count == res.completed
    notes = m._series["remote"].notes          # the merged run's, and each worker's
    assert len(notes) == 3 and all("fell behind" in n for n in notes)
    assert sum(n.startswith("tcp://127.0.0.1:") for n in notes) == 2
    with pytest.raises(ArgumentError, match="'module:function'"):
        m.load("sleep", rate=10, duration=1, cluster=cluster)


# --- the guide's open-loop scenarios against a server, here and on a cluster --------------------

def test_the_latency_scenario_loads_a_target_url_and_grades_it(nginx):
    from caxton_meter._scenarios import run_scenario, scenario_config
    config = scenario_config("latency", quick=True, target=nginx.url, connections=8)
    res = run_scenario(config)
    assert not res.partial and res.config["target"] == nginx.url
    assert res.metric("requests").value == res.metric("completed").value == 1000
    assert res.metric("failed").value == 0
    assert res.metric("latency_p99").grade is not None
    assert res.histograms["latency"] and "connections" in res.config


def test_the_scenarios_on_a_cluster_share_the_schedule(nginx, cluster):
    from caxton_meter._scenarios import run_scenario, scenario_config
    config = scenario_config("load_test", quick=True, target=nginx.url, connections=8,
                             cluster=cluster.scheduler.address)
    res = run_scenario(config)
    assert not res.partial
    asked = res.metric("requests").value
    assert asked > 0 and res.metric("completed").value == asked
    assert any("run on 2 Dask workers" in n for n in res.notes)


def test_the_command_line_runs_the_open_loop_scenarios_against_a_target(nginx, tmp_path,
                                                                       capsys):
    from caxton_meter._cli import main
    code = main(["--quick", "--trials", "1", "--target", nginx.url, "--connections", "4",
                 "--runs-dir", str(tmp_path / "runs"), "--report", "json", "--output",
                 str(tmp_path / "rep")])
    text = capsys.readouterr().out
    assert code == 0, text
    for name in ("latency", "load_test", "burst_traffic", "sustained_load", "peak_load"):
        assert name in text
    assert "message_throughput" not in text
    # refused before anything runs
    for argv, message in [
        (["message_throughput", "--target", nginx.url], "run on the router's agents only"),
        (["--connections", "4"], "--connections is for a server of your own"),
        (["--target", nginx.url, "--workers", "2"], "give --cluster too"),
        (["--target", "http://example.com/"], "only a server on this machine's loopback"),
        (["--target", nginx.url, "--cluster", f"tcp://127.0.0.1:{free_port()}"],
         "no Dask scheduler answers"),
    ]:
        try:
            code = main(["--quick", "--trials", "1", *argv])
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and message in err, (argv, err)
