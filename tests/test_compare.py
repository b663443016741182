"""The regression gate: each metric of a run against the run-to-run spread
of the baseline's saved runs, in the direction it declares, with Holm's
family-wise correction; strict and lenient baselines, machine warnings."""
import dataclasses

import numpy as np
import pytest

from caxton_meter._baselines import BaselineHistory
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


def trial(scenario, metrics, histograms=None):
    return ScenarioResult(scenario, {}, tuple((n if isinstance(n, MetricSpec) else SPECS[n])(v, g)
                                              for n, v, u, g in metrics), histograms or {}, ())


def run_of(values, scenario="message_throughput", unit="msg/s", name="throughput",
           meta=META, extra=()):
    trials = tuple(trial(scenario, [(name, v, unit, Grade.TARGET), *extra]) for v in values)
    return RunResult(dict(meta), (Trials(scenario, {"messages": 1000}, trials),))


def history_of(means, *, spec="throughput", unit="msg/s", trials=3, rng=None, scenario=None):
    """A baseline history: one saved run per mean, each of ``trials`` trials
    spread a little around it."""
    rng = rng or np.random.default_rng(0)
    runs = [run_of(rng.normal(m, abs(m) * 0.001 + 1e-9, trials), name=spec, unit=unit,
                   **({"scenario": scenario} if scenario else {})) for m in means]
    return BaselineHistory("main", tuple(runs))


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
    base = history_of(rng.normal(100.0, 1.0, 8), spec=spec, unit=unit)
    dropped = compare(base, run_of(rng.normal(70.0, 0.5, 3), name=spec, unit=unit))
    if direction is Direction.NONE:
        assert dropped.metrics == () and dropped.family == 0
        return
    (m,) = dropped.metrics
    assert m.spec.direction is direction and m.change.higher_is_better is (
        direction is Direction.HIGHER)
    expected = Verdict.REGRESSED if direction is Direction.HIGHER else Verdict.IMPROVED
    assert m.change.verdict is expected and m.change.method == "run-to-run"
    assert dropped.family == 1 and dropped.history_runs == 8


def test_an_error_rate_that_rises_from_zero_is_a_regression():
    error_rate = MetricSpec("error_rate", "ratio", Kind.RATIO, Direction.LOWER)
    base = BaselineHistory("main", tuple(run_of([0.0] * 5, name=error_rate, unit="ratio")
                                         for _ in range(4)))
    worse = run_of([0.04, 0.05, 0.06, 0.05, 0.045], name=error_rate, unit="ratio")
    (m,) = compare(base, worse).metrics
    assert m.metric == "error_rate" and m.change.verdict is Verdict.REGRESSED


def test_a_declaration_without_a_direction_is_refused():
    with pytest.raises(ValueError, match="a ratio has no usual direction; declare direction="):
        MetricSpec("rate_of_something", "ratio", Kind.RATIO)
    with pytest.raises(TypeError, match="direction must be a Direction"):
        from caxton_meter._model import Metric
        Metric("x", 1.0, "ns", kind=Kind.LATENCY, direction=None)


def test_a_single_saved_run_cannot_gate_whatever_its_trials_say():
    # five trials a side that differ by 30 %: within-run error alone is no verdict
    c = compare(run_of([100.0, 100.1, 99.9, 100.0, 100.2]), run_of([70.0, 70.1, 69.9, 70.2, 70.0]))
    (m,) = c.metrics
    assert m.change.verdict is Verdict.NOT_GATEABLE and c.regressions == ()
    assert m.change.method == "history of 1 run(s), 3 needed"
    assert c.family == 0 and c.history_runs == 1


def test_a_throughput_drop_is_a_regression_and_a_rise_an_improvement():
    rng = np.random.default_rng(7)
    base = history_of(rng.normal(100_000, 2000, 10), rng=rng)
    c = compare(base, run_of(rng.normal(80_000, 500, 5)))
    (m,) = c.metrics
    assert m.metric == "throughput" and m.change.verdict is Verdict.REGRESSED
    assert m.change.p_value < 0.05 and m.change.adjusted_p == m.change.p_value   # a family of 1
    assert c.regressions == (m,) and c.improvements == ()
    assert m.grade is Grade.TARGET
    assert 0.005 < m.change.spread < 0.04 and 0.02 < m.change.detectable < 0.15
    (m,) = compare(base, run_of(rng.normal(125_000, 500, 5))).metrics
    assert m.change.verdict is Verdict.IMPROVED


def _family(rng, metrics, runs, shift=0.0, spread=0.03):
    """A baseline of ``runs`` saved runs of ``metrics`` throughputs, and a
    current run whose first metric is shifted by ``shift``."""
    specs = [MetricSpec(f"m{i}", "msg/s", Kind.THROUGHPUT) for i in range(metrics)]

    def one(shifted):
        means = [1000.0 * (1 + (shift if shifted and i == 0 else 0.0))
                 * (1 + rng.normal(0, spread)) for i in range(metrics)]
        results = tuple(ScenarioResult("s", {}, tuple(sp(v) for sp, v in zip(specs, means)), {})
                        for _ in range(1))
        return RunResult(dict(META), (Trials("s", {}, results),))
    return BaselineHistory("main", tuple(one(False) for _ in range(runs))), one(True)


def test_the_false_alarm_rate_of_a_whole_run_is_held_with_many_metrics():
    # 400 unchanged runs of 40 metrics each against 10 saved runs: the share
    # of runs with any false verdict stays within alpha (0.05) plus three
    # standard errors (0.011); without the correction it would be ~87 %.
    rng = np.random.default_rng(20261202)
    alarmed = 0
    for _ in range(400):
        base, current = _family(rng, 40, 10)
        c = compare(base, current)
        assert c.family == 40
        alarmed += bool(c.regressions or c.improvements)
    assert alarmed / 400 <= 0.05 + 3 * 0.011


def test_a_change_beyond_what_the_run_can_detect_is_found():
    # 3 % run-to-run spread, 10 saved runs, 40 metrics: a 30 % drop (beyond the
    # detectable ~20 %) is caught in at least 95 % of 200 seeded runs
    rng = np.random.default_rng(7)
    caught = elsewhere = 0
    for _ in range(200):
        base, current = _family(rng, 40, 10, shift=-0.30)
        c = compare(base, current)
        caught += any(m.metric == "m0" for m in c.regressions)
        elsewhere += any(m.metric != "m0" for m in c.regressions + c.improvements)
    assert caught >= 190
    assert elsewhere <= 200 * (0.05 + 3 * 0.016)     # the other 39 are unchanged: alpha holds


def test_one_outlying_saved_run_neither_hides_a_change_nor_makes_one():
    # ten saved runs within ~0.3 %, one of them a slow spell 25 % down: left
    # out, the other nine gate a 10 % drop (nearer them than the spell);
    # kept, the spell would have made the spread ~8 % and the metric not gateable
    means = [1000.0, 1003.0, 998.0, 1001.0, 750.0, 999.0, 1002.0, 997.0, 1000.0, 1001.0]
    base = history_of(means)
    (m,) = compare(base, run_of([900.0, 901.0, 899.0])).metrics
    assert m.change.verdict is Verdict.REGRESSED and m.change.left_out == 1
    assert m.change.baseline_n == 9 and m.change.detectable < 0.05
    (m,) = compare(base, run_of([1000.0, 1001.0, 999.0])).metrics
    assert m.change.verdict is Verdict.NO_CHANGE and m.change.left_out == 1
    # a run nearer the spell is one more like it: not a regression
    (m,) = compare(base, run_of([800.0, 801.0, 799.0])).metrics
    assert not m.change.is_regression and m.change.left_out == 0


def test_a_spread_that_hides_the_threshold_is_not_gateable_not_a_regression():
    noisy = history_of([70.0, 130.0, 80.0, 120.0, 100.0, 100.0])          # ~22 % spread
    (m,) = compare(noisy, run_of([75.0, 76.0, 74.0])).metrics            # -25 %: noise-sized
    assert m.change.verdict is Verdict.NOT_GATEABLE
    assert m.change.spread > 0.15 and m.change.detectable > 0.10
    # a threshold the spread allows makes it gateable: no change then
    (m,) = compare(noisy, run_of([100.0, 99.0, 101.0]), threshold=3.0).metrics
    assert m.change.verdict is Verdict.NO_CHANGE
    # and a change far beyond the spread is a regression all the same
    (m,) = compare(noisy, run_of([5.0, 5.1, 4.9])).metrics
    assert m.change.verdict is Verdict.REGRESSED


def test_auto_noise_takes_twice_each_metrics_spread():
    rng = np.random.default_rng(11)
    base = history_of(1000 * (1 + rng.normal(0, 0.02, 12)), rng=rng)    # ~2 % spread
    current = run_of([930.0, 931.0, 929.0])                               # -7 %
    (fixed,) = compare(base, current, noise_threshold=0.10).metrics
    (auto,) = compare(base, current, noise_threshold="auto").metrics
    assert fixed.change.verdict is Verdict.WITHIN_NOISE                  # inside ±10 %
    assert auto.change.verdict is Verdict.REGRESSED                       # beyond ±2 x 2 %


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


def test_a_subset_run_in_the_history_keeps_the_other_scenarios():
    a = run_of([100.0], scenario="message_throughput")
    b = run_of([5.0], scenario="latency", unit="ns", name="latency_p50")
    both = RunResult(dict(META), a.scenarios + b.scenarios)
    history = BaselineHistory("main", (both, run_of([101.0], scenario="message_throughput")))
    latest = history.latest()
    assert set(latest.names) == {"message_throughput", "latency"}
    assert latest.scenario("message_throughput").values("throughput") == (101.0,)
    assert history.run_means("latency", "latency_p50") == [5.0]


def test_different_machines_and_configs_warn_and_equal_configs_do_not():
    base = run_of([100.0, 101.0], meta={**META, "host": "laptop"})
    cur = run_of([100.0, 100.5])
    c = compare(base, cur)
    assert any("different machine" in w and "host: 'laptop' vs 'h'" in w for w in c.warnings)
    changed = RunResult(cur.metadata, (dataclasses.replace(cur.scenarios[0],
                                                           config={"messages": 5}),))
    c = compare(cur, changed)
    assert any("config differs from the baseline's (messages)" in w for w in c.warnings)
    # a saved list and a live tuple are the same config
    listed = RunResult(cur.metadata, (dataclasses.replace(cur.scenarios[0],
                                                          config={"counts": [1, 10]}),))
    tupled = RunResult(cur.metadata, (dataclasses.replace(cur.scenarios[0],
                                                          config={"counts": (1, 10)}),))
    assert not compare(listed, tupled).warnings


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": -0.1}, "threshold must be a fraction"),
    ({"noise_threshold": float("nan")}, "noise_threshold must be a fraction"),
    ({"noise_threshold": "sometimes"}, "noise_threshold must be a fraction"),
    ({"significance": 1.5}, "significance must be in"),
    ({"thresholds": {"throughput": "10%"}}, r"thresholds\['throughput'\] must be a fraction"),
    ({"min_history": 1}, "min_history must be an int >= 2"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare(run_of([1.0]), run_of([1.0]), **kwargs)


def test_a_change_a_rerun_does_not_repeat_is_transient_and_fails_nothing():
    from caxton_meter._compare import confirm
    rng = np.random.default_rng(9)
    base = history_of(rng.normal(100_000, 500, 10), rng=rng)
    slow = compare(base, run_of([70_000.0, 70_100.0, 69_900.0]))
    assert [m.metric for m in slow.regressions] == ["throughput"]
    assert slow.changed_scenarios() == ("message_throughput",)
    spell = confirm(slow, compare(base, run_of([100_050.0, 99_950.0, 100_010.0])))
    assert spell.regressions == () and [m.metric for m in spell.transient] == ["throughput"]
    assert spell.confirmed_by is not None
    held = confirm(slow, compare(base, run_of([69_000.0, 69_500.0, 70_200.0])))
    assert [m.metric for m in held.regressions] == ["throughput"] and held.transient == ()


def test_a_scenario_run_on_a_noisier_machine_than_every_saved_run_is_said():
    def state(p99, steal):
        return {**META, "machine_state": {"message_throughput": {"wake_late_p99_ns": p99,
                                                                "steal_percent": steal}}}
    runs = [run_of([1000.0 + i, 1001.0, 999.0], meta=state(100_000 + 10_000 * i, 0.5))
            for i in range(5)]
    base = BaselineHistory("main", tuple(runs))
    calm = compare(base, run_of([1000.0, 1001.0, 999.0], meta=state(120_000, 0.4)))
    assert not any("noisier" in w for w in calm.warnings)
    noisy = compare(base, run_of([1000.0, 1001.0, 999.0], meta=state(900_000, 6.0)))
    (warning,) = [w for w in noisy.warnings if "noisier" in w]
    assert warning.startswith("message_throughput: the machine was noisier than in every saved "
                              "run: timer wake-up lateness p99 900 us (saved runs: 100-140 us)")
    assert "steal time 6.0 %" in warning
