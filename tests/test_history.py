"""A baseline's history: change points found where a series moved and not
where it only varied, and ``caxton-meter history`` end to end on a baseline
folder built from synthetic runs.  Every series comes from a seeded
generator and the permutation test has a fixed seed, so each assertion
holds or fails the same way on every run."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from caxton_meter._baselines import BaselineHistory, BaselineStore
from caxton_meter._checks import ArgumentError, ArgumentTypeError
from caxton_meter._history import DEFAULT_PERMUTATIONS, change_points, metric_histories, \
    min_runs
from caxton_meter._model import DEFAULT_THRESHOLDS, Kind, MetricSpec, ScenarioResult
from caxton_meter._results import RunResult, Trials

SIGNIFICANCE = 0.05


def noisy(seed, n=20, level=100.0, spread=0.02):
    """n runs of a steady metric: ``level`` with a relative spread of 2 %."""
    return level * (1 + np.random.default_rng(seed).normal(0.0, spread, n))


# -- change_points -----------------------------------------------------------------------

@pytest.mark.parametrize("factor", [1.2, 0.8], ids=["up", "down"])
def test_a_single_step_is_found_at_the_first_run_after_it(factor):
    series = noisy(1)
    series[12:] *= factor
    [cp] = change_points(list(series))
    assert cp.index == 12
    assert cp.before == pytest.approx(series[:12].mean())
    assert cp.after == pytest.approx(series[12:].mean())
    assert cp.change == pytest.approx(cp.after / cp.before - 1)
    assert math.copysign(1, cp.change) == math.copysign(1, factor - 1)
    assert cp.p_value <= SIGNIFICANCE


def test_the_same_series_and_seed_give_the_same_change_points():
    series = noisy(2)
    series[9:] *= 1.05
    assert change_points(series, seed=7) == change_points(series, seed=7)


def _false_alarm_bound(trials, rate, tail=0.001):
    """The smallest k with P(Binomial(trials, rate) > k) < tail."""
    above = 1.0
    for k in range(trials + 1):
        above -= math.comb(trials, k) * rate ** k * (1 - rate) ** (trials - k)
        if above < tail:
            return k
    return trials


def test_steady_noise_is_marked_no_more_often_than_the_significance_level():
    # The permutation p-value is valid and the bisection stops at the first
    # split that is not significant, so a history with no change is marked
    # with probability <= SIGNIFICANCE: about 10 of 200.  The bound asserted
    # is the count that a Binomial(200, 0.05) exceeds with probability
    # 0.001 (21), fixed before looking at these seeds; the seeds are fixed,
    # so the count (and the verdict) is the same on every run.
    marked = sum(bool(change_points(noisy(1000 + i), seed=i)) for i in range(200))
    assert marked <= _false_alarm_bound(200, SIGNIFICANCE) == 21


def test_a_constant_series_has_no_change_point():
    assert change_points([5.0] * 20) == []


def test_two_steps_are_both_found_a_regression_and_its_fix_too():
    staircase = noisy(3, 30)
    staircase[10:] *= 1.15
    staircase[20:] *= 1.15
    assert [cp.index for cp in change_points(staircase)] == [10, 20]
    # back to where it was: the runs before and after look alike, which a
    # split over the whole history alone would miss
    pulse = noisy(4, 30)
    pulse[10:20] *= 1.15
    found = change_points(pulse)
    assert [cp.index for cp in found] == [10, 20]
    assert found[0].change > 0 > found[1].change
    assert found[1].before == pytest.approx(pulse[10:20].mean())     # the neighbouring segment


def test_a_slow_drift_that_no_adjacent_comparison_flags_is_marked():
    # 0.75 % worse per run with 1.5 % run-to-run spread: 15 % over 20 runs.
    series = noisy(5, spread=0.015) * (1 + 0.0075 * np.arange(20))
    steps = series[1:] / series[:-1] - 1
    assert max(abs(steps)) < 0.10           # the gate's default threshold: no step reaches it
    found = change_points(series)
    assert found and all(cp.change > 0 for cp in found)


def test_the_fewest_runs_follow_from_the_permutation_test():
    # a perfect step has p >= 2 / C(n, n // 2): 2/35 > 0.05 with 7 runs, 2/70 with 8
    assert min_runs() == 8 and min_runs(0.01) == 10 and min_runs(0.05, min_size=5) == 10
    for n in range(6, 10):
        step = [1.0] * (n // 2) + [2.0] * (n - n // 2)
        assert bool(change_points(step)) == (n >= min_runs()), n


def test_a_series_shorter_than_two_segments_has_no_change_point():
    assert change_points([]) == [] and change_points([1.0, 9.0, 1.0, 9.0, 1.0]) == []


@pytest.mark.parametrize("kwargs, error, message", [
    ({"series": [1.0, float("nan")]}, ArgumentError, r"series\[1\] must be finite, got nan"),
    ({"series": [1.0, "2"]}, ArgumentTypeError, r"series\[1\] must be a number, not str"),
    ({"series": "123"}, ArgumentTypeError, "series must be a sequence of numbers, not str"),
    ({"significance": 1.5}, ArgumentError, r"significance must be within \(0, 1\)"),
    ({"significance": True}, ArgumentTypeError, "significance must be a number, not bool"),
    ({"min_size": 1}, ArgumentError, "min_size must be >= 2, got 1"),
    ({"permutations": 9}, ArgumentError,
     r"permutations=9 cannot give a p-value <= 0.05 .* use at least 19"),
    ({"seed": 1.5}, ArgumentTypeError, "seed must be an int, not float"),
])
def test_bad_arguments_are_named_with_their_value(kwargs, error, message):
    kwargs = {"series": [1.0] * 10, **kwargs}
    with pytest.raises(error, match=message):
        change_points(**kwargs)


def test_the_default_permutations_can_reach_the_default_significance():
    assert 1 / (DEFAULT_PERMUTATIONS + 1) <= SIGNIFICANCE / 10


# -- a baseline's metrics ----------------------------------------------------------------

P99 = MetricSpec("latency_p99", "ns", Kind.LATENCY, graded_by="latency_p99")
THROUGHPUT = MetricSpec("throughput", "msg/s", Kind.THROUGHPUT, graded_by="throughput")
MEAN = MetricSpec("latency_mean", "ns", Kind.LATENCY)
MESSAGES = MetricSpec("messages", "messages", Kind.COUNT)        # not compared
TASKS = MetricSpec("throughput", "tasks/s", Kind.THROUGHPUT)
RUNS = 12
SLOWER_FROM = 8            # runs are 0-based here: run #9 is the first with the slower p99
FASTER_FROM = 5            # run #6 is the first with more tasks/s


def commit(i):
    return f"{i:02d}abcdef" + "0" * 32


def synthetic_run(i, rng, *, tasks=True):
    """Run i of a synthetic history, one trial per scenario: latency's p99
    is 10 ms, 30 % slower from SLOWER_FROM on; task_processing does 30 %
    more tasks/s from FASTER_FROM on; the rest is steady; every value has
    a 1 % run-to-run spread.  Run 3 was measured on a dirty tree."""
    def jitter(value):
        return value * (1 + rng.normal(0, 0.01))

    latency = ScenarioResult("latency", {"rate": 1000}, (
        P99.graded(jitter(10e6 * (1.3 if i >= SLOWER_FROM else 1.0)), DEFAULT_THRESHOLDS),
        THROUGHPUT.graded(jitter(80_000), DEFAULT_THRESHOLDS), MEAN(jitter(2e6)),
        MESSAGES(5000)), {})
    scenarios = [Trials("latency", {"rate": 1000}, (latency,))]
    if tasks:
        rate = TASKS(jitter(5000 * (1.3 if i >= FASTER_FROM else 1.0)))
        scenarios.append(Trials("task_processing", {}, (
            ScenarioResult("task_processing", {}, (rate,), {}),)))
    metadata = {"date": f"2024-05-{i + 1:02d}T09:30:00+00:00", "profile": "quick",
                "git": {"commit": commit(i), "dirty": i == 3, "branch": "main"}}
    return RunResult(metadata, tuple(scenarios))


def test_change_points_are_placed_at_runs_of_the_baseline_even_where_a_scenario_was_skipped():
    rng = np.random.default_rng(7)
    runs = tuple(synthetic_run(i, rng, tasks=i % 4 != 0) for i in range(RUNS))
    found = {(h.scenario, h.metric): h for h in metric_histories(BaselineHistory("x", runs))}
    assert ("latency", "messages") not in found                     # a count is not compared
    tasks = found["task_processing", "throughput"]
    assert tasks.runs == (1, 2, 3, 5, 6, 7, 9, 10, 11)
    assert [cp.index for cp in tasks.change_points] == [FASTER_FROM]
    assert [cp.index for cp in found["latency", "latency_p99"].change_points] == [SLOWER_FROM]


def test_scenarios_and_metrics_are_chosen_by_name_and_an_unknown_one_is_named():
    rng = np.random.default_rng(7)
    h = BaselineHistory("x", tuple(synthetic_run(i, rng) for i in range(RUNS)))
    assert [(m.scenario, m.metric) for m in metric_histories(h, metrics=["throughput"])] == [
        ("latency", "throughput"), ("task_processing", "throughput")]
    assert [m.metric for m in metric_histories(h, scenarios=["task_processing"])] == ["throughput"]
    with pytest.raises(ArgumentError, match=r"no compared metric 'latency_p98' in the baseline "
                       r"\(did you mean 'latency_p99'\?\); compared metrics: latency_p99, "
                       r"throughput, latency_mean$"):
        metric_histories(h, metrics=["latency_p98"])
    with pytest.raises(ArgumentError, match="no scenario 'latnecy' .*scenarios: latency, task_"):
        metric_histories(h, scenarios=["latnecy"])


# -- caxton-meter history ----------------------------------------------------------------

@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    """A baseline folder: 'main' with RUNS synthetic runs, 'short' with 5."""
    folder = tmp_path_factory.mktemp("baselines")
    store = BaselineStore(folder)
    rng = np.random.default_rng(42)
    for i in range(RUNS):
        store.save("main", synthetic_run(i, rng))
    for i in range(5):
        store.save("short", synthetic_run(i, rng))
    return folder


def history(*args):
    return subprocess.run([sys.executable, "-m", "caxton_meter.run", "history", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_history_lists_every_run_and_the_run_each_change_came_with(baselines):
    r = history("main", "--baseline-dir", baselines)
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split() == ["#", "date", "commit", "profile", "latency/latency_p99",
                              "latency/throughput", "task_processing/throughput"]
    rows = lines[lines.index(header) + 1:lines.index(header) + 1 + RUNS]
    for i, row in enumerate(rows):
        dirty = "+dirty" if i == 3 else ""
        assert row.split()[:5] == [str(i + 1), f"2024-05-{i + 1:02d}", "09:30",
                                   commit(i)[:8] + dirty, "quick"], row
    assert rows[0].split()[5:] == ["10", "ms", "79.2K", "msg/s", "5.0K", "tasks/s"]
    assert ("  latency/latency_p99: change at run #9 (2024-05-09 09:30, 08abcdef): 9.98 ms -> "
            "13 ms (+30.3 %, p=0.005, worse)") in lines
    assert ("  task_processing/throughput: change at run #6 (2024-05-06 09:30, 05abcdef): "
            "5.0K tasks/s -> 6.5K tasks/s (+30.3 %, p=0.005, better)") in lines
    assert "  no change point in the other 2 (--all lists them)" in lines
    assert "messages" not in r.stdout                    # a count is neither a column nor tested


def test_all_lists_the_metrics_without_a_change_point(baselines):
    r = history("main", "--baseline-dir", baselines, "--all")
    assert r.returncode == 0
    assert "  latency/latency_mean: no change point (12 runs, mean 2.01 ms)" in r.stdout
    assert "  latency/throughput: no change point (12 runs, mean 79.7K msg/s)" in r.stdout
    assert "(--all lists them)" not in r.stdout


def test_metric_and_scenario_choose_the_columns_and_the_metrics_tested(baselines):
    r = history("main", "--baseline-dir", baselines, "--metric", "latency_mean")
    assert r.returncode == 0
    assert r.stdout.splitlines()[2].split()[4:] == ["latency/latency_mean"]
    assert "in 1 compared metric:" in r.stdout and "  none" in r.stdout.splitlines()
    r = history("main", "--baseline-dir", baselines, "--scenario", "task_processing")
    assert r.stdout.splitlines()[2].split()[4:] == ["task_processing/throughput"]
    assert "latency" not in r.stdout


def test_json_holds_the_runs_and_each_metrics_values_and_change_points(baselines):
    r = history("main", "--baseline-dir", baselines, "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["kind"] == "caxton_meter.history" and doc["baseline"] == "main"
    assert doc["min_runs"] == 8 and doc["method"]["permutations"] == DEFAULT_PERMUTATIONS
    assert [run["run"] for run in doc["runs"]] == list(range(1, RUNS + 1))
    assert doc["runs"][3]["dirty"] is True and doc["runs"][0]["commit"] == commit(0)
    metrics = {(m["scenario"], m["metric"]): m for m in doc["metrics"]}
    assert set(metrics) == {("latency", "latency_p99"), ("latency", "throughput"),
                            ("latency", "latency_mean"), ("task_processing", "throughput")}
    [cp] = metrics["latency", "latency_p99"]["change_points"]
    assert (cp["run"], cp["commit"], cp["assessment"]) == (9, commit(8), "worse")
    assert cp["change"] == pytest.approx(0.3, abs=0.02) and cp["p_value"] <= 0.05
    assert len(metrics["latency", "throughput"]["values"]) == RUNS


def test_too_few_runs_are_listed_and_the_minimum_is_said(baselines):
    r = history("short", "--baseline-dir", baselines)
    assert r.returncode == 0
    assert "change points need 8 runs at least" in r.stdout and "'short' has 5" in r.stdout
    assert [line.split()[0] for line in r.stdout.splitlines()[3:8]] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("args, message", [
    (["nope"], "no baseline 'nope' in .*; saved baselines: main, short"),
    (["main", "--metric", "latency_p98"], r"no compared metric 'latency_p98' in the baseline "
                                          r"\(did you mean 'latency_p99'\?\)"),
    (["main", "--metric", "messages"], "no compared metric 'messages'"),
    (["main", "--scenario", "latnecy"], "no scenario 'latnecy' in the baseline"),
    (["../etc"], "baseline name '../etc' is not valid"),
    (["main", "--significance", "5"], "--significance: '5' must be between 0 and 1"),
])
def test_a_bad_name_or_option_exits_2_and_names_what_there_is(baselines, args, message):
    import re
    r = history(*args, "--baseline-dir", baselines)
    assert r.returncode == 2 and r.stdout == ""
    assert re.search(message, r.stderr), r.stderr


def test_a_damaged_run_file_exits_2_and_names_the_file(tmp_path):
    store = BaselineStore(tmp_path)
    store.save("main", synthetic_run(0, np.random.default_rng(0)))
    [path] = store.run_files("main")
    path.write_text("{")
    r = history("main", "--baseline-dir", tmp_path)
    assert r.returncode == 2 and str(path) in r.stderr and "not valid JSON" in r.stderr


def test_a_smaller_significance_gets_enough_permutations(baselines):
    r = history("main", "--baseline-dir", baselines, "--significance", "0.001", "--json")
    method = json.loads(r.stdout)["method"]
    assert (method["significance"], method["permutations"]) == (0.001, 9999)
