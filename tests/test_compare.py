"""Comparison of runs: which metrics, in which direction, strict and
lenient baselines, machine warnings."""
import dataclasses

import numpy as np
import pytest

from caxton_meter import Histogram
from caxton_meter._compare import MissingCounterpartError, compare, metric_direction
from caxton_meter._regression import Verdict
from caxton_meter._results import RunResult, Trials
from caxton_meter._scenarios import Grade, Metric, ScenarioResult

META = {"host": "h", "cpu": {"model": "m", "logical": 2}, "os": {"system": "Linux",
        "machine": "x86_64"}, "profile": "quick"}


def trial(scenario, metrics, histograms=None):
    return ScenarioResult(scenario, {}, tuple(Metric(n, v, u, g) for n, v, u, g in metrics),
                          histograms or {}, ())


def run_of(values, scenario="message_throughput", unit="msg/s", name="throughput",
           meta=META, extra=()):
    trials = tuple(trial(scenario, [(name, v, unit, Grade.TARGET), *extra]) for v in values)
    return RunResult(dict(meta), (Trials(scenario, {"messages": 1000}, trials),))


def test_directions():
    assert metric_direction("throughput", "msg/s") is True
    assert metric_direction("throughput@100", "msg/s") is True
    assert metric_direction("success_rate", "ratio") is True
    assert metric_direction("latency_p99", "ns") is False
    assert metric_direction("memory_per_agent@10", "bytes") is False
    assert metric_direction("cpu_per_agent", "percent") is False
    assert metric_direction("completed", "messages") is None
    assert metric_direction("intended_rate", "msg/s") is None      # the config's, not measured
    assert metric_direction("memory_leak", "bool") is None


def test_a_throughput_drop_is_a_regression_and_a_rise_an_improvement():
    rng = np.random.default_rng(7)
    base = run_of(rng.normal(100_000, 2000, 8))
    slower = run_of(rng.normal(85_000, 2000, 8))
    faster = run_of(rng.normal(120_000, 2000, 8))
    c = compare(base, slower)
    (m,) = c.metrics
    assert m.metric == "throughput" and m.change.verdict is Verdict.REGRESSED
    assert m.change.method == "mann-whitney" and m.change.p_value < 0.05
    assert c.regressions == (m,) and c.improvements == ()
    assert m.grade is Grade.TARGET
    (m,) = compare(base, faster).metrics
    assert m.change.verdict is Verdict.IMPROVED


def test_equal_runs_are_not_flagged():
    rng = np.random.default_rng(3)
    flagged = 0
    for _ in range(40):
        c = compare(run_of(rng.normal(100, 3, 6)), run_of(rng.normal(100, 3, 6)))
        flagged += bool(c.regressions or c.improvements)
    assert flagged <= 2                                   # at most 5 % false alarms


def test_single_trials_use_the_fixed_threshold():
    c = compare(run_of([100_000.0]), run_of([88_000.0]), threshold=0.10)
    (m,) = c.metrics
    assert m.change.method == "fixed-threshold" and m.change.verdict is Verdict.REGRESSED
    c = compare(run_of([100_000.0]), run_of([95_000.0]), threshold=0.10)
    assert c.metrics[0].change.verdict is Verdict.NO_CHANGE
    # a per-metric threshold overrides the fixed one
    c = compare(run_of([100_000.0]), run_of([95_000.0]), thresholds={"throughput": 0.02})
    assert c.metrics[0].change.verdict is Verdict.REGRESSED


def test_single_trial_percentiles_compare_through_the_histograms():
    rng = np.random.default_rng(11)

    def lat_run(scale):
        h = Histogram(1, 3_600_000_000_000, 3)
        values = (rng.lognormal(10, 0.5, 20_000) * scale).astype(np.int64)
        h.record_array(values)
        return RunResult(dict(META), (Trials("latency", {}, (trial(
            "latency", [("latency_p99", h.value_at_percentile(99), "ns", Grade.TARGET)],
            {"latency": h.encode()}),)),))
    c = compare(lat_run(1.0), lat_run(1.3))
    (m,) = c.metrics
    assert m.change.method == "histogram" and m.change.verdict is Verdict.REGRESSED
    c = compare(lat_run(1.0), lat_run(1.0))
    assert c.metrics[0].change.verdict is not Verdict.REGRESSED


def test_a_metric_missing_from_the_baseline_fails_unless_lenient():
    extra = (("latency_p99", 5000.0, "ns", Grade.TARGET),)
    base = run_of([100.0, 101.0])
    cur = run_of([100.0, 100.5], extra=extra)
    with pytest.raises(MissingCounterpartError, match="message_throughput/latency_p99"):
        compare(base, cur)
    c = compare(base, cur, lenient=True)
    assert c.missing == ("message_throughput/latency_p99",)
    assert [m.metric for m in c.metrics] == ["throughput"]
    other = run_of([1.0, 2.0], scenario="latency", unit="ns", name="latency_p50")
    with pytest.raises(MissingCounterpartError, match=r"latency/\*"):
        compare(base, other)


def test_different_machines_and_configs_warn():
    base = run_of([100.0, 101.0], meta={**META, "host": "laptop"})
    cur = run_of([100.0, 100.5])
    c = compare(base, cur)
    assert any("different machine" in w and "host: 'laptop' vs 'h'" in w for w in c.warnings)
    changed = RunResult(cur.metadata, (dataclasses.replace(cur.scenarios[0],
                                                           config={"messages": 5}),))
    c = compare(cur, changed)
    assert any("config differs from the baseline's (messages)" in w for w in c.warnings)


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": -0.1}, "threshold must be a fraction"),
    ({"noise_threshold": float("nan")}, "noise_threshold must be a fraction"),
    ({"significance": 1.5}, "significance must be in"),
    ({"thresholds": {"throughput": "10%"}}, r"thresholds\['throughput'\] must be a fraction"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare(run_of([1.0]), run_of([1.0]), **kwargs)


def test_too_few_trials_for_significance_warn():
    c = compare(run_of([100.0, 101.0, 99.0]), run_of([50.0, 51.0, 49.0]))
    assert any("with 3 and 3 trials no change can reach p < 0.05" in w for w in c.warnings)
    assert c.metrics[0].change.verdict is Verdict.NO_CHANGE     # as the warning says
    c = compare(run_of([100.0, 101.0, 99.0, 100.5]), run_of([50.0, 51.0, 49.0, 50.5]))
    assert not c.warnings and c.metrics[0].change.verdict is Verdict.REGRESSED
