"""Baselines as histories of runs: appended, the last N kept, never
overwritten; runs that would make a poor reference refused; subsets update
what they measured; baselines of the 0.1 format read and kept."""
import os
import re
import shutil

import pytest

from caxton_meter._baselines import (
    BaselineHistory,
    BaselineNotFoundError,
    BaselineRefusedError,
    BaselineStore,
)
from caxton_meter._model import Kind, MetricSpec, ScenarioResult
from caxton_meter._results import RunResult, Trials, read_result

DATA = os.path.join(os.path.dirname(__file__), "data")
THROUGHPUT = MetricSpec("throughput", "msg/s", Kind.THROUGHPUT)


def run_of(*scenarios, value=100.0, meta=None, partial=False, commit="abc123"):
    trials = tuple(Trials(s, {"messages": 10}, (ScenarioResult(
        s, {"messages": 10}, (THROUGHPUT(value),), {}, partial=partial),)) for s in scenarios)
    return RunResult({"date": "2026-12-02T10:00:00+00:00", "git": {"commit": commit},
                      **(meta or {})}, trials)


def test_saving_appends_to_the_history_and_never_overwrites(tmp_path):
    store = BaselineStore(tmp_path)
    assert store.names() == []
    with pytest.raises(BaselineNotFoundError, match="no baseline 'main' .*saved baselines: none"):
        store.history("main")
    paths = [store.save("main", run_of("a", value=v)) for v in (1.0, 2.0, 3.0)]
    assert len(set(paths)) == 3 and all(p.is_file() for p in paths)
    history = store.history("main")
    assert [r.scenario("a").values("throughput") for r in history.runs] == [(1.0,), (2.0,), (3.0,)]
    assert history.run_means("a", "throughput") == [1.0, 2.0, 3.0]
    assert store.load("main").scenario("a").values("throughput") == (3.0,)
    assert store.load("main").metadata["baseline_runs"] == 3
    store.save("pr-12", run_of("a"))
    assert store.names() == ["main", "pr-12"] and store.exists("main")
    with pytest.raises(BaselineNotFoundError, match="saved baselines: main, pr-12"):
        store.history("mian")
    for bad in ("../x", "a/b", "", ".hidden", "x.json"):
        with pytest.raises(ValueError, match="baseline name .* is not valid"):
            store.path(bad)


def test_the_last_n_runs_are_kept(tmp_path):
    store = BaselineStore(tmp_path, keep=3)
    for v in range(1, 6):
        store.save("main", run_of("a", value=float(v)))
    assert store.history("main").run_means("a", "throughput") == [3.0, 4.0, 5.0]
    assert len(store.run_files("main")) == 3
    with pytest.raises(ValueError, match="keep must be an int >= 1"):
        BaselineStore(tmp_path, keep=0)


@pytest.mark.parametrize("run, why", [
    (RunResult({}, ()), "the run holds no scenario"),
    (run_of("a", meta={"failed_scenarios": ["b: RuntimeError: boom"]}),
     "1 scenario(s) failed to run (b: RuntimeError: boom)"),
    (run_of("a", meta={"stopped_early": True}), "the run was stopped early"),
    (run_of("a", "b", partial=True), "a, b are partial"),
])
def test_a_run_that_would_make_a_poor_reference_is_refused_and_nothing_changes(tmp_path, run, why):
    store = BaselineStore(tmp_path)
    store.save("main", run_of("a", "b"))
    before = {p: p.read_bytes() for p in store.run_files("main")}
    with pytest.raises(BaselineRefusedError, match=f"not saved as baseline 'main': .*{re.escape(why)}"):
        store.save("main", run)
    assert {p: p.read_bytes() for p in store.run_files("main")} == before


def test_a_subset_updates_what_it_measured_and_keeps_the_rest(tmp_path):
    store = BaselineStore(tmp_path)
    store.save("main", run_of("a", "b", value=1.0))
    store.save("main", run_of("b", value=2.0))
    latest = store.load("main")
    assert set(latest.names) == {"a", "b"}
    assert latest.scenario("a").values("throughput") == (1.0,)
    assert latest.scenario("b").values("throughput") == (2.0,)
    history = store.history("main")
    assert history.run_means("a", "throughput") == [1.0]
    assert history.run_means("b", "throughput") == [1.0, 2.0]


def test_runs_saved_in_the_same_second_keep_their_order(tmp_path):
    store = BaselineStore(tmp_path)
    for v in range(10):
        store.save("main", run_of("a", value=float(v)))
    assert store.history("main").run_means("a", "throughput") == [float(v) for v in range(10)]


def test_a_baseline_of_format_1_in_one_file_is_read_and_then_kept_in_the_history(tmp_path):
    shutil.copy(os.path.join(DATA, "result-format-1.json"), tmp_path / "main.json")
    store = BaselineStore(tmp_path)
    assert store.names() == ["main"] and store.exists("main")
    old = store.history("main")
    assert len(old.runs) == 1 and "latency" in old.latest().names
    store.save("main", run_of("latency_extra"))
    assert not (tmp_path / "main.json").exists()              # moved, not rewritten
    history = store.history("main")
    assert len(history.runs) == 2
    assert history.runs[0].to_dict() == old.runs[0].to_dict()   # the old run, first
    assert set(history.latest().names) >= {"latency", "latency_extra"}


def test_a_damaged_run_file_is_named(tmp_path):
    store = BaselineStore(tmp_path)
    path = store.save("main", run_of("a"))
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path.name}.*not valid JSON"):
        store.history("main")


def test_a_history_needs_a_run():
    with pytest.raises(ValueError, match="baseline 'x' has no run"):
        BaselineHistory("x", ())
