"""Results: trials, the versioned JSON format, atomic writes, metadata and
baselines by name."""
import json
import math
import os

import pytest

from caxton_meter import Histogram
from caxton_meter._results import (
    FORMAT_VERSION,
    ResultFormatError,
    RunResult,
    Trials,
    collect_metadata,
    read_result,
    run_suite,
    same_machine,
    write_atomic,
)
from caxton_meter._model import Direction, Grade, Kind, Metric, MetricSpec, ScenarioResult


@pytest.fixture(scope="module")
def run():
    return run_suite(["latency", "message_throughput"], trials=2, quick=True)


def test_a_suite_runs_each_scenario_its_trials(run):
    assert run.names == ("latency", "message_throughput")
    lat = run.scenario("latency")
    assert len(lat.results) == 2
    assert len(lat.values("latency_p99")) == 2
    assert lat.config["rate"] == 2000.0                      # the quick profile's
    assert run.metadata["trials"] == 2 and run.metadata["profile"] == "quick"
    merged = lat.histogram("latency")
    assert merged.total_count == sum(r.histogram("latency").total_count for r in lat.results)
    assert lat.grade("latency_p99") in set(Grade)
    assert lat.unit("latency_p99") == "ns"
    with pytest.raises(KeyError, match="no metric 'nope' in 'latency'; metrics: latency_p50"):
        lat.unit("nope")
    with pytest.raises(KeyError, match="no scenario 'x' in the result; scenarios: latency"):
        run.scenario("x")


def test_the_json_format_round_trips_exactly(run, tmp_path):
    path = run.save(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["kind"] == "caxton_meter.result" and data["format"] == FORMAT_VERSION
    back = read_result(path)
    assert back.to_dict() == run.to_dict()
    a, b = run.scenario("latency").results[0], back.scenario("latency").results[0]
    assert a.metrics == b.metrics and a.intervals == b.intervals and a.notes == b.notes
    assert a.resources == b.resources
    assert Histogram.decode(b.histograms["latency"]) == Histogram.decode(a.histograms["latency"])
    assert b.config == run.scenario("latency").config


def test_nan_is_written_as_null_and_read_back_as_nan(tmp_path):
    p99 = MetricSpec("latency_p99", "ns", Kind.LATENCY)
    r = ScenarioResult("latency", {}, (p99(math.nan, Grade.FAILED),), {}, ())
    run = RunResult({"host": "h"}, (Trials("latency", {"rate": 1.0}, (r,)),))
    text = run.to_json()
    assert "NaN" not in text and json.loads(text)["scenarios"][0]["trials"][0]["metrics"][0]["value"] is None
    back = RunResult.from_json(text)
    assert math.isnan(back.scenario("latency").results[0].metrics[0].value)
    assert back.scenario("latency").values("latency_p99") == ()   # NaN is not a value


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a caxton_meter result (a JSON list, not an object)"),
    ('{"kind": "other"}', "not a caxton_meter result"),
    ('{"kind": "caxton_meter.result", "format": 99}', "format version 99 is newer"),
    ('{"kind": "caxton_meter.result", "format": 0}', "format version 0 is not supported"),
    ('{"kind": "caxton_meter.result", "format": "1"}', "format version must be an integer"),
    ('{"kind": "caxton_meter.result", "format": 1, "metadata": {}}', "missing field 'scenarios'"),
    ('{"kind": "caxton_meter.result", "format": 1, "metadata": {}, "scenarios": '
     '[{"scenario": "x", "config": {}, "trials": [{"scenario": "x", "partial": false, '
     '"metrics": [{"name": "a", "value": "fast", "unit": "ns", "grade": null}], '
     '"histograms": {}, "intervals": [], "resources": null, "notes": []}]}]}',
     "scenarios[0].trials[0].metrics[0].value must be a number"),
    ('{"kind": "caxton_meter.result", "format": 1, "metadata": {}, "scenarios": '
     '[{"scenario": "x", "config": {}, "trials": [{"scenario": "x", "partial": false, '
     '"metrics": [{"name": "a", "value": 1, "unit": "ns", "grade": "great"}], '
     '"histograms": {}, "intervals": [], "resources": null, "notes": []}]}]}',
     "grade must be one of target, acceptable, critical, failed"),
])
def test_a_damaged_or_foreign_file_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultFormatError) as e:
        read_result(path)
    assert str(path) in str(e.value) and problem in str(e.value)


def test_binary_and_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResultFormatError, match="not UTF-8"):
        read_result(tmp_path / "bin.json")
    with pytest.raises(ResultFormatError, match="cannot be read"):
        read_result(tmp_path / "none.json")


def test_writes_are_atomic_and_leave_nothing_behind_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "f.json"
    write_atomic(target, "old")
    assert target.read_text() == "old"
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask     # as open() would make it
    target.chmod(0o640)
    write_atomic(target, "newer")
    assert target.stat().st_mode & 0o777 == 0o640             # the replaced file's mode
    write_atomic(target, "old")

    def boom(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new")
    assert target.read_text() == "old"                       # the old file is whole
    assert os.listdir(target.parent) == ["f.json"]           # no temporary file left


def test_metadata_describes_the_machine_and_the_commit():
    meta = collect_metadata()
    for key in ("date", "host", "cpu", "os", "python", "packages", "clock", "aslr", "git"):
        assert key in meta
    assert meta["cpu"]["logical"] == os.cpu_count()
    assert meta["packages"]["caxton_meter"]
    assert meta["clock"]["resolution_ns"] > 0
    json.dumps(meta)                                         # plain JSON types
    same, diffs = same_machine(meta, meta)
    assert same and diffs == []
    other = {**meta, "host": "elsewhere", "cpu": {**meta["cpu"], "logical": 64}}
    same, diffs = same_machine(meta, other)
    assert not same and any("host" in d for d in diffs) and any("CPU count" in d for d in diffs)


def test_metadata_outside_a_git_tree_has_no_commit(tmp_path):
    assert collect_metadata(cwd=str(tmp_path))["git"] is None


def test_a_suite_refuses_bad_input_before_running():
    with pytest.raises(ValueError, match="trials must be an int >= 1"):
        run_suite(["latency"], trials=0)
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        run_suite(["nope"])
    with pytest.raises(ValueError, match="LatencyConfig has no field 'speed'"):
        run_suite(["latency"], changes={"latency": {"speed": 3}})


def test_a_suite_keeps_the_trials_finished_before_a_stop():
    calls = []
    run = run_suite(["message_throughput", "latency"], trials=3, quick=True,
                    on_trial=lambda n, i, r: calls.append((n, i)),
                    should_stop=lambda: len(calls) >= 2)
    assert calls == [("message_throughput", 0), ("message_throughput", 1)]
    assert run.names == ("message_throughput",)
    assert len(run.scenario("message_throughput").results) == 2
    assert run.metadata["stopped_early"] is True


def test_a_deadline_does_not_stop_the_suite_but_the_partial_trials_are_kept():
    run = run_suite(["latency", "message_throughput"], trials=2, quick=True,
                    changes={"latency": {"duration": 30.0, "deadline": 0.1,
                                         "sample_resources": False}})
    lat = run.scenario("latency")
    assert len(lat.results) == 2 and all(r.partial and not r.interrupted for r in lat.results)
    assert len(run.scenario("message_throughput").results) == 2      # the suite went on
    assert "stopped_early" not in run.metadata
    back = RunResult.from_json(run.to_json())
    assert back.scenario("latency").results[0].partial
    assert not back.scenario("latency").results[0].interrupted


DATA = os.path.join(os.path.dirname(__file__), "data")


def test_each_metric_is_written_with_its_declaration_and_read_back_the_same(run):
    doc = run.to_dict()
    m = next(m for m in doc["scenarios"][0]["trials"][0]["metrics"] if m["name"] == "latency_p99")
    assert (m["kind"], m["direction"], m["histogram"], m["percentile"]) == (
        "latency", "lower", "latency", 99)
    back = RunResult.from_dict(doc)
    for t, u in zip(run.scenarios, back.scenarios):
        for a, b in zip(t.results, u.results):
            assert a.metrics == b.metrics             # kind, direction, histogram included


def test_a_result_of_format_1_reads_with_the_declarations_it_implied():
    # written by caxton_meter 0.1 (format 1: metrics carry no declaration)
    old = read_result(os.path.join(DATA, "result-format-1.json"))
    assert FORMAT_VERSION == 3
    mt = old.scenario("message_throughput")
    assert mt.spec("throughput").direction is Direction.HIGHER
    assert mt.spec("throughput").kind is Kind.THROUGHPUT
    assert mt.spec("completed").direction is Direction.NONE
    p99 = mt.spec("latency_p99")
    assert (p99.kind, p99.direction, p99.histogram, p99.percentile) == (
        Kind.LATENCY, Direction.LOWER, "round_trip", 99.0)
    lat = old.scenario("latency")
    assert lat.spec("latency_p99_9").percentile == 99.9
    assert lat.spec("latency_p99_9").histogram == "latency"
    assert lat.spec("achieved_rate").direction is Direction.NONE     # not compared in 0.1
    peak = old.scenario("peak_load")
    assert peak.spec("success_rate").direction is Direction.HIGHER
    # and it compares with a run of today, metric for metric
    from caxton_meter._compare import compare
    c = compare(old, old, lenient=True)
    assert {m.metric for m in c.metrics if m.scenario == "message_throughput"} == {
        "throughput", "messages_per_second", "latency_p50", "latency_p99"}


def test_a_metric_with_a_bad_declaration_is_refused_with_its_path(run):
    doc = run.to_dict()
    doc["scenarios"][0]["trials"][0]["metrics"][0]["direction"] = "sideways"
    with pytest.raises(ResultFormatError, match=r"scenarios\[0\]\.trials\[0\]\.metrics\[0\]"
                                                r"\.direction must be one of higher, lower, "
                                                r"none, got 'sideways'"):
        RunResult.from_dict(doc, source="x.json")


def _graded_trials(values, row, scenario="s"):
    spec = MetricSpec("latency_p99", "ns", Kind.LATENCY, graded_by="latency_p99")
    return Trials(scenario, {}, tuple(
        ScenarioResult(scenario, {}, (spec.graded(v, {"latency_p99": row}),), {})
        for v in values))


def test_the_figure_shown_is_graded_not_the_worst_trial():
    from caxton_meter._model import Threshold
    row = Threshold("latency_p99", "ns", 10e6, 50e6, 100e6)
    t = _graded_trials([5e6, 5e6, 12e6], row)                 # mean 7.3 ms < 10 ms
    assert t.grade("latency_p99") is Grade.TARGET
    assert t.worst_grade("latency_p99") is Grade.ACCEPTABLE
    assert t.trial_grades("latency_p99") == (Grade.TARGET, Grade.TARGET, Grade.ACCEPTABLE)
    assert _graded_trials([9e6, 60e6, 60e6], row).grade("latency_p99") is Grade.ACCEPTABLE
    # a trial that did not measure it fails the figure
    assert _graded_trials([5e6, math.nan], row).grade("latency_p99") is Grade.FAILED
    run = RunResult({}, (t, _graded_trials([200e6], row, "u")))
    assert run.graded_at_least(Grade.CRITICAL) == (("u", "latency_p99", Grade.FAILED),)
    assert len(run.graded_at_least(Grade.TARGET)) == 2


def test_the_row_a_metric_was_graded_by_is_kept_and_an_older_file_keeps_its_worst_grade():
    from caxton_meter._model import Threshold
    row = Threshold("latency_p99", "ns", 10e6, 50e6, 100e6)
    run = RunResult({}, (_graded_trials([5e6, 5e6, 12e6], row),))
    doc = run.to_dict()
    assert doc["format"] == 3
    saved = doc["scenarios"][0]["trials"][0]["metrics"][0]["threshold"]
    assert saved == {"metric": "latency_p99", "unit": "ns", "target": 10e6,
                     "acceptable": 50e6, "critical": 100e6}
    back = RunResult.from_dict(json.loads(json.dumps(doc)))
    assert back.scenarios[0].results[0].metrics[0].threshold == row
    assert back.scenarios[0].grade("latency_p99") is Grade.TARGET
    # format 2 kept no row: the figure keeps its worst trial's grade, as it was shown then
    doc["format"] = 2
    for trial in doc["scenarios"][0]["trials"]:
        del trial["metrics"][0]["threshold"]
    old = RunResult.from_dict(doc)
    assert old.scenarios[0].grade("latency_p99") is Grade.ACCEPTABLE
    doc["format"] = 3
    doc["scenarios"][0]["trials"][0]["metrics"][0]["threshold"] = {"metric": "latency_p99"}
    with pytest.raises(ResultFormatError, match=r"metrics\[0\]\.threshold\.unit"):
        RunResult.from_dict(doc)
