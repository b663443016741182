"""Comparison of runs: which metrics, in which direction, strict and
lenient baselines, machine warnings."""
import dataclasses

import numpy as np
import pytest

from caxton_meter import Histogram
from caxton_meter._compare import MissingCounterpartError, compare
from caxton_meter._model import Direction, Grade, Kind, MetricSpec, ScenarioResult
from caxton_meter._regression import Verdict
from caxton_meter._results import RunResult, Trials

META = {"host": "h", "cpu": {"model": "m", "logical": 2}, "os": {"system": "Linux",
        "machine": "x86_64"}, "profile": "quick"}

# the metrics these tests produce, declared as a scenario declares them
SPECS = {s.name: s for s in (
    MetricSpec("throughput", "msg/s", Kind.THROUGHPUT),
    MetricSpec("latency_p50", "ns", Kind.LATENCY),
    MetricSpec("latency_p99", "ns", Kind.LATENCY),
)}
P99_OF_LATENCY = MetricSpec("latency_p99", "ns", Kind.LATENCY, histogram="latency", percentile=99)


def trial(scenario, metrics, histograms=None):
    return ScenarioResult(scenario, {}, tuple((n if isinstance(n, MetricSpec) else SPECS[n])(v, g)
                                              for n, v, u, g in metrics), histograms or {}, ())


def run_of(values, scenario="message_throughput", unit="msg/s", name="throughput",
           meta=META, extra=()):
    trials = tuple(trial(scenario, [(name, v, unit, Grade.TARGET), *extra]) for v in values)
    return RunResult(dict(meta), (Trials(scenario, {"messages": 1000}, trials),))


@pytest.mark.parametrize("kind, direction, unit", [
    (Kind.THROUGHPUT, Direction.HIGHER, "msg/s"),
    (Kind.THROUGHPUT, Direction.HIGHER, "calls/s"),
    (Kind.LATENCY, Direction.LOWER, "ns"),
    (Kind.DURATION, Direction.LOWER, "s"),
    (Kind.MEMORY, Direction.LOWER, "bytes"),
    (Kind.CPU, Direction.LOWER, "percent"),
    (Kind.RATIO, Direction.LOWER, "ratio"),         # an error rate
    (Kind.RATIO, Direction.HIGHER, "ratio"),        # a success rate
    (Kind.COUNT, Direction.NONE, "requests"),
    (Kind.FLAG, Direction.NONE, "bool"),
    (Kind.THROUGHPUT, Direction.NONE, "msg/s"),     # the rate a config asks for
    (Kind.LATENCY, Direction.HIGHER, "ns"),         # whatever the unit, the declaration rules
])
def test_each_kind_is_compared_in_the_direction_it_declares(kind, direction, unit):
    spec = MetricSpec("m", unit, kind, direction)
    rng = np.random.default_rng(5)

    def run(mean):
        return run_of(rng.normal(mean, 0.5, 6), name=spec, unit=unit)

    dropped = compare(run(100.0), run(70.0))
    if direction is Direction.NONE:
        assert dropped.metrics == ()
        return
    (m,) = dropped.metrics
    assert m.spec.direction is direction and m.change.higher_is_better is (
        direction is Direction.HIGHER)
    expected = Verdict.REGRESSED if direction is Direction.HIGHER else Verdict.IMPROVED
    assert m.change.verdict is expected


def test_an_error_rate_that_rises_from_zero_is_a_regression():
    error_rate = MetricSpec("error_rate", "ratio", Kind.RATIO, Direction.LOWER)
    base = run_of([0.0] * 5, name=error_rate, unit="ratio")
    worse = run_of([0.04, 0.05, 0.06, 0.05, 0.045], name=error_rate, unit="ratio")
    (m,) = compare(base, worse).metrics
    assert m.metric == "error_rate" and m.change.verdict is Verdict.REGRESSED


def test_a_declaration_without_a_direction_is_refused():
    with pytest.raises(ValueError, match="a ratio has no usual direction; declare direction="):
        MetricSpec("rate_of_something", "ratio", Kind.RATIO)
    with pytest.raises(TypeError, match="direction must be a Direction"):
        from caxton_meter._model import Metric
        Metric("x", 1.0, "ns", kind=Kind.LATENCY, direction=None)


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
            "latency", [(P99_OF_LATENCY, h.value_at_percentile(99), "ns", Grade.TARGET)],
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
