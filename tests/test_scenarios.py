"""The guide's scenarios: quick runs give complete graded results; grading
against the targets table; thresholds; config validation; Ctrl-C."""
import dataclasses
import math
import os
import re

import pytest

from caxton_meter import Histogram, ResourceProfile
from caxton_meter import _scenarios as sc
from caxton_meter._core import closed_loop as core_closed_loop
from caxton_meter._model import Direction, Kind
from caxton_meter._scenarios import (
    DEFAULT_THRESHOLDS,
    SCENARIOS,
    BurstTrafficConfig,
    CrashRecoveryConfig,
    Grade,
    HorizontalScalingConfig,
    LatencyConfig,
    LoadTestConfig,
    MessageThroughputConfig,
    Metric,
    ScenarioResult,
    TaskProcessingConfig,
    Threshold,
    WasmOverheadConfig,
    AgentResponseTimeConfig,
    CpuProfileConfig,
    MemoryProfileConfig,
    PeakLoadConfig,
    SustainedLoadConfig,
    WasmMemoryLimitsConfig,
    grade,
    resolve_thresholds,
)

MS = 1_000_000

GRADED = {
    "message_throughput": {"throughput", "latency_p50", "latency_p99"},
    "task_processing": {"throughput", "latency_p50", "latency_p99"},
    "latency": {"latency_p50", "latency_p99"},
    "crash_recovery": {"recovery_time_max"},
    "horizontal_scaling": {f"{m}@{n}" for m in ("spawn_time", "memory_per_agent", "throughput")
                           for n in (1, 10, 100)},
    "load_test": {"latency_p50", "latency_p99"},
    "burst_traffic": {"recovery_time"},      # unless it did not recover (see the test)
    "wasm_overhead": set(),                  # no row of the targets table applies
    "agent_response_time": {"response_p99_worst"},
    "memory_profile": {"memory_per_agent"},
    "cpu_profile": {"cpu_per_agent"},
    "wasm_memory_limits": set(),             # no row of the targets table applies
    "sustained_load": {"latency_p50", "latency_p99"},
    "peak_load": {"success_rate", "latency_p50", "latency_p99"},
}
HISTOGRAMS = {
    "message_throughput": {"round_trip", "queue_time", "handling_time"},
    "task_processing": {"round_trip", "queue_time", "handling_time"},
    "latency": {"latency", "latency_uncorrected", "send_jitter"},
    "crash_recovery": {"recovery_time", "round_trip"},
    "horizontal_scaling": {f"{h}@{n}" for h in ("spawn_time", "round_trip") for n in (1, 10, 100)},
    "load_test": {"latency", "latency_uncorrected", "send_jitter"},
    "burst_traffic": {"latency", "latency_uncorrected", "send_jitter"},
    "wasm_overhead": {f"handling_time_{k}@{u}" for k in ("native", "wasm") for u in (0, 5000)},
    "agent_response_time": {"handling_time", "queue_time", "handling_time_worst"},
    "memory_profile": {"round_trip"},
    "cpu_profile": {"round_trip"},
    "wasm_memory_limits": {"handling_time@1", "handling_time@10"},
    "sustained_load": {"latency", "latency_uncorrected", "send_jitter"},
    "peak_load": {"latency", "latency_uncorrected", "send_jitter"},
}
WITH_INTERVALS = {"latency", "load_test", "burst_traffic", "sustained_load", "peak_load"}


# --- every scenario, quick -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_runs_quick_and_returns_a_complete_result(name):
    scenario = SCENARIOS[name]
    config = scenario.config.quick()
    res = scenario.run(config)
    assert isinstance(res, ScenarioResult)
    assert res.scenario == name and not res.partial
    assert res.config == config.as_dict()
    # fields left unset that a record leaves out (an open loop's target): the rest as declared
    assert {k: v for k, v in dataclasses.asdict(config).items() if k not in res.config} \
        in ({}, {"target": None, "connections": 50, "cluster": None, "workers": None})
    graded = {m.name for m in res.metrics if m.threshold is not None or m.grade is not None}
    expected = GRADED[name]
    if name == "burst_traffic" and res.metric("recovered").value == 0:
        expected = set()       # a quick run too short to grade a missed recovery
    assert graded == expected
    for m in res.metrics:
        # graded, unless the figure is below what its measurement resolves
        below = m.resolution is not None and abs(m.value) < m.resolution
        if m.threshold is not None:
            assert (m.grade is None) == below, m
    for m in res.metrics:
        assert isinstance(m.value, float) and not math.isnan(m.value), m
        # every metric is declared by its scenario, with the kind and direction it carries
        declared = scenario.spec(m.name)
        assert (m.kind, m.direction, m.unit) == (declared.kind, declared.direction,
                                                 declared.unit), m
        assert isinstance(m.direction, Direction)
        if m.histogram is not None:
            assert m.histogram in res.histograms
            assert res.histogram(m.histogram).value_at_percentile(m.percentile) == m.value
    if expected and any(m.grade is not None for m in res.metrics):
        assert res.worst_grade is not None
    assert res.passed == (res.worst_grade is not Grade.FAILED)
    assert bool(res.intervals) == (name in WITH_INTERVALS)
    assert set(res.histograms) == HISTOGRAMS[name]
    for key, encoded in res.histograms.items():
        h = Histogram.decode(encoded)
        assert h == res.histogram(key)
    assert isinstance(res.resources, ResourceProfile)
    assert res.resources.samples
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.partial = True


def test_throughput_counts_every_message_and_its_round_trip():
    res = sc.run_message_throughput(MessageThroughputConfig.quick(messages=500))
    assert res.metric("completed").value == 500 and res.metric("failed").value == 0
    assert Histogram.decode(res.histograms["round_trip"]).total_count == 500
    assert res.notes == ()


def test_throughput_with_python_agents_and_without_sampling():
    res = sc.run_message_throughput(
        MessageThroughputConfig.quick(agent_kind="python", messages=300, sample_resources=False))
    assert res.metric("completed").value == 300
    assert res.resources is None


def test_task_processing_defaults_are_the_guides():
    c = TaskProcessingConfig()
    assert (c.agents, c.tasks, c.window) == (10, 1000, 1000)
    assert MessageThroughputConfig().messages == 10_000
    res = sc.run_task_processing(TaskProcessingConfig.quick(tasks=50))
    assert res.metric("throughput").unit == "tasks/s"
    assert res.metric("completed").value == 50


def test_latency_reports_every_percentile_and_intervals():
    res = sc.run_latency(LatencyConfig.quick(rate=1000.0, duration=0.3))
    names = [m.name for m in res.metrics]
    for p in ("latency_p50", "latency_p90", "latency_p95", "latency_p99", "latency_p99_9",
              "latency_max"):
        assert p in names
    values = [res.metric(p).value for p in ("latency_p50", "latency_p90", "latency_p95",
                                            "latency_p99", "latency_p99_9")]
    assert values == sorted(values) and values[-1] <= res.metric("latency_max").value
    assert res.metric("requests").value == 300
    corrected = res.histogram("latency")
    assert corrected.total_count == res.histogram("latency_uncorrected").total_count == 300
    assert res.intervals and sum(iv.sent for iv in res.intervals) == 300
    assert sum(Histogram.decode(iv.latency).total_count for iv in res.intervals) == 300


def test_crash_recovery_counts_faults_dead_letters_and_recoveries():
    res = sc.run_crash_recovery(CrashRecoveryConfig.quick(messages=1000, agents=4, fail_every=10))
    # 250 messages per agent, every 10th faults
    assert res.metric("faults").value == 4 * 25
    assert res.metric("dead_letters").value == 100 == res.metric("recoveries").value
    assert res.metric("failed").value == 100 and res.metric("completed").value == 900
    assert res.histogram("recovery_time").total_count == 100
    assert res.metric("recovery_time_max").grade is not None
    assert res.notes == ()


def test_crash_recovery_without_a_crash_says_so():
    res = sc.run_crash_recovery(CrashRecoveryConfig.quick(messages=10, fail_every=1000))
    assert res.metric("recovery_time_max").grade is None
    assert any("no agent crashed" in n for n in res.notes)


def test_horizontal_scaling_reports_every_point():
    res = sc.run_horizontal_scaling(HorizontalScalingConfig.quick(agent_counts=(1, 20),
                                                                  messages=100))
    for n in (1, 20):
        assert res.metric(f"completed@{n}").value == 100
        assert res.metric(f"failed@{n}").value == 0
        assert res.metric(f"throughput@{n}").unit == "req/s"
        memory = res.metric(f"memory_per_agent@{n}")
        # a page over the point's agents is what the reading resolves
        assert memory.resolution == pytest.approx(4096 / n)
        assert (memory.grade is None) == (abs(memory.value) < memory.resolution)
        spawn = res.metric(f"spawn_time@{n}")
        assert spawn.grade is not None and spawn.value >= res.metric(f"spawn_time_p99@{n}").value
        assert res.histogram(f"spawn_time@{n}").total_count == n
        assert res.histogram(f"round_trip@{n}").total_count == 100
    with pytest.raises(KeyError):
        res.metric("throughput@100")


@pytest.mark.parametrize("kind", ["python", "wasm"])
def test_horizontal_scaling_with_python_and_wasm_agents(kind):
    res = sc.run_horizontal_scaling(HorizontalScalingConfig.quick(
        agent_kind=kind, agent_counts=(3,), messages=50, sample_resources=False))
    assert res.metric("completed@3").value == 50
    assert res.histogram("spawn_time@3").total_count == 3
    assert res.resources is None
    assert HorizontalScalingConfig().agent_counts == (1, 10, 100, 1000, 10_000)


def test_load_test_ramps_from_zero_and_keeps_intervals():
    c = LoadTestConfig.quick()
    res = sc.run_load_test(c)
    planned = c.rate * c.ramp_up / 2 + c.rate * c.duration      # 200 + 800
    assert abs(res.metric("requests").value - planned) <= 1
    assert res.metric("dropped").value == 0 and res.metric("failed").value == 0
    assert len(res.intervals) == round((c.ramp_up + c.duration) / c.interval)
    assert sum(iv.sent for iv in res.intervals) == res.metric("requests").value
    assert sum(Histogram.decode(iv.latency).total_count for iv in res.intervals) == \
        res.metric("completed").value
    for name in ("latency_p50", "latency_p99"):
        assert res.metric(name).grade is not None
    for name in ("achieved_rate", "intended_rate", "latency_p99_9", "latency_max"):
        assert res.metric(name).grade is None


def test_burst_traffic_measures_baseline_burst_and_recovery():
    c = BurstTrafficConfig.quick()
    res = sc.run_burst_traffic(c)
    planned = c.baseline_rate * (c.before + c.after) + c.burst_rate * c.burst_duration
    assert abs(res.metric("requests").value - planned) <= 1
    for name in ("baseline_latency_p99", "burst_latency_p99", "recovery_time", "recovered"):
        res.metric(name)
    rec = res.metric("recovery_time")
    assert 0 <= rec.value <= c.after * 1e9 + 1e6
    if res.metric("recovered").value == 1:
        assert rec.grade is not None
    else:
        assert any("did not recover" in n for n in res.notes)
    # only the recovery is graded; the run's latency is reported beside it
    assert res.metric("latency_p99").grade is None
    assert sum(iv.sent for iv in res.intervals) == res.metric("requests").value


def _fake_run(p99s, interval_ns=100 * MS):
    """An open-loop result whose k-th interval's latencies are all p99s[k]."""
    from types import SimpleNamespace
    ivs = []
    for k, v in enumerate(p99s):
        h = Histogram(1, 10**12, 3)
        if v is not None:
            h.record(v, 10)
        ivs.append(SimpleNamespace(start_ns=1000 + k * interval_ns,
                                   end_ns=1000 + (k + 1) * interval_ns, latency=h))
    return SimpleNamespace(intervals=tuple(ivs))


def test_burst_recovery_is_timed_from_the_burst_end_to_a_recovered_interval_end():
    c = BurstTrafficConfig.quick(before=0.2, burst_duration=0.1, after=0.4)
    limits = resolve_thresholds()
    # baseline 1000 ns; burst; then 2000 (> 1.5x), empty, 1400 (<= 1.5x): recovered
    notes = []
    ms = sc.load._recovery_metrics(_fake_run([1000, 1000, 90_000, 2000, None, 1400, 1000]), c,
                              limits, notes)
    got = {m.name: m for m in ms}
    assert got["baseline_latency_p99"].value == pytest.approx(1000, rel=0.01)
    assert got["recovered"].value == 1
    assert got["recovery_time"].value == 300 * MS      # end of the 3rd interval after
    assert got["recovery_time"].grade is Grade.TARGET and notes == []


def test_burst_that_never_recovers_reports_the_remainder_not_a_fake_number():
    c = BurstTrafficConfig.quick(before=0.2, burst_duration=0.1, after=0.3)
    limits = resolve_thresholds()
    notes = []
    ms = {m.name: m for m in sc.load._recovery_metrics(
        _fake_run([1000, 1000, 90_000, 5000, 5000, 5000]), c, limits, notes)}
    assert ms["recovered"].value == 0
    assert ms["recovery_time"].value == 300 * MS and ms["recovery_time"].grade is None
    assert any("did not recover" in n and "ungraded" in n for n in notes)
    # a remainder already beyond the critical bound (300 s) is FAILED
    long_run = BurstTrafficConfig.quick(before=100.0, burst_duration=100.0, after=400.0,
                                        interval=100.0)
    notes = []
    ms = {m.name: m for m in sc.load._recovery_metrics(
        _fake_run([1000, 90_000] + [5000] * 4, interval_ns=100 * 1000 * MS),
        long_run, limits, notes)}
    assert ms["recovery_time"].value == 400 * 1000 * MS
    assert ms["recovery_time"].grade is Grade.FAILED


def test_wasm_overhead_checks_results_and_compares_per_message_time():
    res = sc.run_wasm_overhead(WasmOverheadConfig.quick(messages=200, heavy_units=2000))
    assert res.metric("mismatches").value == 0 and res.notes == ()
    for kind in ("native", "wasm"):
        for units in (0, 2000):
            assert res.metric(f"{kind}_ns@{units}").value > 0
            assert res.histogram(f"handling_time_{kind}@{units}").total_count == 200
    assert res.metric("call_overhead_ns").value == pytest.approx(
        res.metric("wasm_ns@0").value - res.metric("native_ns@0").value)
    assert res.metric("compute_ratio").value == pytest.approx(
        res.metric("wasm_ns@2000").value / res.metric("native_ns@2000").value)
    assert res.worst_grade is None and res.passed


# --- grading ---------------------------------------------------------------------------

def test_default_thresholds_are_the_guides_table_in_base_units():
    t = DEFAULT_THRESHOLDS
    assert set(t) == {"throughput", "latency_p50", "latency_p99", "spawn_time",
                      "memory_per_agent", "cpu_per_agent", "recovery_time"}
    assert (t["throughput"].target, t["throughput"].acceptable, t["throughput"].critical) == \
        (100_000, 50_000, 10_000)
    assert t["throughput"].higher_is_better
    assert (t["latency_p50"].target, t["latency_p50"].critical) == (1 * MS, 10 * MS)
    assert (t["latency_p99"].acceptable, t["spawn_time"].critical) == (50 * MS, 1000 * MS)
    assert t["memory_per_agent"].acceptable == 50_000_000
    assert t["cpu_per_agent"].critical == 25
    assert t["recovery_time"].acceptable == 120 * 1000 * MS
    assert all(name == th.metric for name, th in t.items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        t["throughput"].target = 1


@pytest.mark.parametrize("value, expected", [
    (0, Grade.TARGET),
    (1 * MS - 1, Grade.TARGET),
    (1 * MS, Grade.ACCEPTABLE),       # "< 1 ms": at the bound is not the target
    (5 * MS - 1, Grade.ACCEPTABLE),
    (5 * MS, Grade.CRITICAL),
    (10 * MS - 1, Grade.CRITICAL),
    (10 * MS, Grade.FAILED),          # "< 10 ms" critical: at it is beyond it
    (10**12, Grade.FAILED),
])
def test_lower_is_better_grading_boundaries(value, expected):
    assert grade(DEFAULT_THRESHOLDS["latency_p50"], value) is expected


@pytest.mark.parametrize("value, expected", [
    (1e9, Grade.TARGET),
    (100_000, Grade.TARGET),          # "100K msg/s": at least that
    (99_999.9, Grade.ACCEPTABLE),
    (50_000, Grade.ACCEPTABLE),
    (49_999, Grade.CRITICAL),
    (10_000, Grade.CRITICAL),
    (9_999.99, Grade.FAILED),
    (0, Grade.FAILED),
])
def test_higher_is_better_grading_boundaries(value, expected):
    assert grade(DEFAULT_THRESHOLDS["throughput"], value) is expected


def test_grade_refuses_nan():
    with pytest.raises(ValueError, match="'latency_p99' is NaN"):
        grade(DEFAULT_THRESHOLDS["latency_p99"], math.nan)


def test_passed_and_worst_grade():
    def result(*grades):
        ms = tuple(Metric(f"m{i}", 1.0, "ns", g, kind=Kind.LATENCY, direction=Direction.LOWER)
                   for i, g in enumerate(grades))
        return ScenarioResult("x", {}, ms, {})

    assert result(Grade.TARGET, None, Grade.CRITICAL).worst_grade is Grade.CRITICAL
    assert result(Grade.TARGET, Grade.CRITICAL).passed
    r = result(Grade.ACCEPTABLE, Grade.FAILED)
    assert r.worst_grade is Grade.FAILED and not r.passed
    assert result(None).worst_grade is None and result(None).passed


def test_custom_thresholds_override_some_and_keep_the_rest():
    strict = Threshold("latency_p50", "ns", 1, 2, 3)
    merged = resolve_thresholds({"latency_p50": strict})
    assert merged["latency_p50"] is strict
    assert merged["latency_p99"] is DEFAULT_THRESHOLDS["latency_p99"]
    impossible = Threshold("throughput", "msg/s", 1e15, 1e14, 1e13)    # more is better: its metric's
    res = sc.run_message_throughput(MessageThroughputConfig.quick(sample_resources=False),
                                    thresholds={"latency_p50": strict, "throughput": impossible})
    assert res.metric("latency_p50").grade is Grade.FAILED      # nothing routes in < 3 ns
    assert res.metric("throughput").grade is Grade.FAILED
    assert not res.passed
    # the defaults are untouched
    assert DEFAULT_THRESHOLDS["latency_p50"].target == 1 * MS


def test_unknown_threshold_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"metric must be a row of the targets table "
                                         r"\(throughput, latency_p50, latency_p99, spawn_time, "
                                         r"memory_per_agent, cpu_per_agent, recovery_time\), "
                                         r"got 'latency_p42' \(did you mean 'latency_p99'\?\)"):
        Threshold("latency_p42", "ns", 1, 2, 3)
    with pytest.raises(ValueError, match=r"unknown threshold metric 'latency_p42' \(did you "
                                         r"mean 'latency_p99'\?\); valid names: cpu_per_agent, "
                                         r"latency_p50, latency_p99, memory_per_agent, "
                                         r"recovery_time, spawn_time, throughput"):
        sc.run_latency(LatencyConfig.quick(),
                       thresholds={"latency_p42": DEFAULT_THRESHOLDS["latency_p50"]})
    with pytest.raises(ValueError, match="is a threshold for 'latency_p99'"):
        resolve_thresholds({"latency_p50": DEFAULT_THRESHOLDS["latency_p99"]})
    with pytest.raises(TypeError, match="must be a Threshold"):
        resolve_thresholds({"latency_p50": 5})


@pytest.mark.parametrize("kwargs, message", [
    (dict(target=5, acceptable=1, critical=10), "target <= acceptable <= critical"),

    (dict(target=-1, acceptable=5, critical=10), "target must be a finite number >= 0, got -1"),
    (dict(target=1, acceptable=math.inf, critical=10),
     "acceptable must be a finite number >= 0, got inf"),
])
def test_bad_thresholds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Threshold("latency_p50", "ns", **kwargs)


def test_a_thresholds_order_follows_its_metrics_direction():
    # throughput: more is better, so its bounds descend; nothing else can say otherwise
    with pytest.raises(ValueError, match="target >= acceptable >= critical"):
        Threshold("throughput", "msg/s", 1, 5, 10)
    assert Threshold("throughput", "msg/s", 10, 5, 1).direction is Direction.HIGHER
    assert Threshold("latency_p50", "ns", 1, 5, 10).direction is Direction.LOWER


# --- agent response time, memory, CPU, WASM limits, sustained and peak load ----------

@pytest.mark.parametrize("kind", ["python", "wasm"])
def test_agent_response_time_summarises_every_agent(kind):
    res = sc.run_agent_response_time(AgentResponseTimeConfig.quick(agent_kind=kind, agents=4,
                                                                   sample_resources=False))
    assert res.metric("agents_measured").value == 4
    assert res.metric("completed").value == 1000
    worst, median = res.metric("response_p99_worst"), res.metric("response_p99_median")
    assert worst.value >= median.value > 0
    assert worst.grade is not None
    assert res.histogram("handling_time_worst").total_count == 250     # round robin


def test_memory_profile_checkpoints_every_agent():
    res = sc.run_memory_profile(MemoryProfileConfig.quick(agents=5, sample_resources=False))
    assert res.metric("checkpoint_bytes").value == 5 * 8    # a native echo's counter
    assert res.metric("checkpoint_time_max").value >= res.metric("checkpoint_time_mean").value > 0
    assert res.metric("completed").value == 1000
    py = sc.run_memory_profile(MemoryProfileConfig.quick(agents=3, agent_kind="python",
                                                         sample_resources=False))
    assert py.metric("checkpoint_bytes").value == 3 * 8


def test_cpu_profile_reports_each_phase_with_its_resolution():
    res = sc.run_cpu_profile(CpuProfileConfig.quick(agents=4, rate_per_agent=500))
    names = {m.name for m in res.metrics}
    assert {"cpu_processing", "cpu_idle", "cpu_per_agent", "throughput", "spawn_seconds"} <= names
    busy, quiet = res.metric("cpu_processing"), res.metric("cpu_idle")
    per_agent = res.metric("cpu_per_agent")
    assert per_agent.value == pytest.approx((busy.value - quiet.value) / 4)
    # one 10 ms tick over the phase: 1 s of processing resolves 1 %, 0.5 s idle 2 %
    tick = 100 / os.sysconf("SC_CLK_TCK")
    assert busy.resolution == pytest.approx(tick / 1.0, rel=0.2)
    assert quiet.resolution == pytest.approx(tick / 0.5, rel=0.2)
    assert per_agent.resolution == pytest.approx((busy.resolution + quiet.resolution) / 4)
    # the load is offered at its rate, whatever the agents cost (an open loop)
    assert res.metric("throughput").value == pytest.approx(2000, rel=0.05)


def test_a_figure_below_its_resolution_is_not_graded():
    from caxton_meter._model import DEFAULT_THRESHOLDS, Grade, Kind, MetricSpec, ScenarioResult
    from caxton_meter._results import Trials
    spec = MetricSpec("memory_per_agent", "bytes", Kind.MEMORY, graded_by="memory_per_agent")
    small = spec.graded(300.0, DEFAULT_THRESHOLDS, resolution=409.6)
    assert small.grade is None and small.threshold is not None
    assert spec.graded(5000.0, DEFAULT_THRESHOLDS, resolution=409.6).grade is Grade.TARGET

    def trials(*values):
        return Trials("s", {}, tuple(ScenarioResult("s", {}, (spec.graded(
            v, DEFAULT_THRESHOLDS, resolution=409.6),), {}) for v in values))
    assert trials(0.0, 0.0, 409.6).indistinct("memory_per_agent") == "below resolution"
    assert trials(0.0, 0.0, 409.6).grade("memory_per_agent") is None
    assert trials(-12e3, 40e3, -30e3).indistinct("memory_per_agent") == "noise"
    assert trials(-12e3, 40e3, -30e3).grade("memory_per_agent") is None
    assert trials(5e6, 5.1e6).indistinct("memory_per_agent") is None
    assert trials(5e6, 5.1e6).grade("memory_per_agent") is Grade.TARGET


def test_wasm_memory_limits_find_the_largest_allocation():
    res = sc.run_wasm_memory_limits(WasmMemoryLimitsConfig(limits_mb=(0.2, 1), messages=5,
                                                           sample_resources=False))
    page = 65536
    for mb, limit in (("0.2", 200_000), ("1", 1_000_000)):
        top = res.metric(f"max_memory@{mb}").value
        assert top == (limit // page) * page          # every whole page under the limit
        assert res.metric(f"largest_allocation@{mb}").value == top - page
        assert res.metric(f"ns_per_message@{mb}").value > 0
        assert res.metric(f"refused_ns_per_message@{mb}").value > 0


def test_trend_flags_a_growing_series():
    t = [i * 0.5 for i in range(200)]
    rss = [100e6 + 200_000 * x for x in t]          # +20 % over the series
    trend = sc.rss_trend(t, rss)
    assert trend.leak and trend.slope == pytest.approx(200_000)
    assert trend.projected_growth == pytest.approx(199 * 0.5 * 200_000 / 100e6)
    noisy = [v + (1e5 if i % 2 else -1e5) for i, v in enumerate(rss)]
    assert sc.rss_trend(t, noisy).leak


def test_trend_does_not_flag_a_flat_noisy_series():
    import numpy as np
    rng = np.random.default_rng(42)
    t = np.arange(500) * 0.1
    for _ in range(20):
        rss = 100e6 + rng.normal(0, 2e6, t.size)      # 2 % noise, no trend
        trend = sc.rss_trend(t, rss)
        assert not trend.leak
        assert trend.slope_low <= trend.slope <= trend.slope_high


def test_trend_does_not_flag_a_significant_but_small_growth():
    t = [float(i) for i in range(100)]
    rss = [100e6 + 1000 * x for x in t]             # significant, 0.1 % over the series
    trend = sc.rss_trend(t, rss)
    assert trend.slope_low > 0 and not trend.leak


@pytest.mark.parametrize("times, rss, message", [
    ([0, 1], [1, 2], "needs at least 3 samples, got 2"),
    ([0, 1, 2], [1, 2], "times and rss must be 1-D of the same length"),
    ([1, 1, 1], [1, 2, 3], "the times are all equal"),
    ([0, 1, 2], [1, math.nan, 3], "times and rss must be finite"),
])
def test_trend_bad_input(times, rss, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sc.rss_trend(times, rss)


def test_t_quantile_is_close_to_the_table():
    for df, exact in ((3, 3.182), (10, 2.228), (30, 2.042), (1000, 1.962)):
        assert sc.load._t_quantile(0.975, df) == pytest.approx(exact, rel=0.01)


def test_sustained_load_compares_first_and_last_windows():
    res = sc.run_sustained_load(SustainedLoadConfig.quick(duration=0.6, interval=0.1))
    assert res.metric("degraded").value in (0, 1)
    assert res.metric("memory_leak").value in (0, 1)
    assert len(res.intervals) >= 5
    assert any("degradation between the first and last 1 interval(s)" in n for n in res.notes)


def test_peak_load_grades_success_rate_pass_fail():
    res = sc.run_peak_load(PeakLoadConfig.quick(duration=0.2, sample_resources=False))
    assert res.metric("success_rate").grade in (Grade.TARGET, Grade.FAILED)
    assert res.metric("success_rate").value == pytest.approx(
        res.metric("completed").value / 4000)
    # one request in flight at most: whatever is dropped counts against the
    # rate, and the pass/fail grade follows the rate either way
    strict = sc.run_peak_load(PeakLoadConfig.quick(duration=0.2, max_in_flight=1,
                                                   sample_resources=False))
    rate = strict.metric("success_rate")
    assert rate.value == pytest.approx(strict.metric("completed").value / 4000)
    assert (rate.grade is Grade.TARGET) == (rate.value >= 0.99)
    assert strict.passed == all(m.grade is not Grade.FAILED for m in strict.metrics)


# --- bad configs -----------------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs, message", [
    (MessageThroughputConfig, dict(messages=0), "MessageThroughputConfig: messages must be >= 1, got 0"),
    (MessageThroughputConfig, dict(messages=-5), "messages must be >= 1, got -5"),
    (MessageThroughputConfig, dict(agents=0), "MessageThroughputConfig: agents must be >= 1, got 0"),
    (MessageThroughputConfig, dict(window=0), "window must be >= 1, got 0"),
    (MessageThroughputConfig, dict(message_size=-1), "message_size must be >= 0, got -1"),
    (MessageThroughputConfig, dict(agent_kind="wasm"),
     "agent_kind must be one of 'native', 'python', got 'wasm'"),
    (MessageThroughputConfig, dict(sample_interval=0), "sample_interval must be a finite number > 0, got 0"),
    (TaskProcessingConfig, dict(tasks=0), "TaskProcessingConfig: tasks must be >= 1, got 0"),
    (TaskProcessingConfig, dict(agents=-1), "agents must be >= 1, got -1"),
    (TaskProcessingConfig, dict(units=0), "units must be >= 1, got 0"),
    (TaskProcessingConfig, dict(window=0), "window must be >= 1, got 0"),
    (LatencyConfig, dict(rate=0), "LatencyConfig: rate must be a finite number > 0, got 0"),
    (LatencyConfig, dict(rate=-100.0), "rate must be a finite number > 0, got -100.0"),
    (LatencyConfig, dict(rate=math.nan), "rate must be a finite number > 0, got nan"),
    (LatencyConfig, dict(duration=0), "LatencyConfig: duration must be a finite number > 0, got 0"),
    (LatencyConfig, dict(duration=-1.5), "duration must be a finite number > 0, got -1.5"),
    (LatencyConfig, dict(duration=math.inf), "duration must be a finite number > 0, got inf"),
    (LatencyConfig, dict(agents=0), "agents must be >= 1, got 0"),
    (LatencyConfig, dict(max_in_flight=0), "max_in_flight must be >= 1, got 0"),
    (LatencyConfig, dict(interval=0), "interval must be a finite number > 0, got 0"),
    (CrashRecoveryConfig, dict(messages=0), "CrashRecoveryConfig: messages must be >= 1, got 0"),
    (CrashRecoveryConfig, dict(fail_every=0), "fail_every must be >= 1, got 0"),
    (CrashRecoveryConfig, dict(agents=0), "agents must be >= 1, got 0"),
    (CrashRecoveryConfig, dict(window=-2), "window must be >= 1, got -2"),
    (HorizontalScalingConfig, dict(agent_counts=()), "agent_counts must not be empty"),
    (HorizontalScalingConfig, dict(agent_counts=(1, 0)), "agent_counts[1] must be >= 1, got 0"),
    (HorizontalScalingConfig, dict(agent_counts=(10, 10)),
     "agent_counts must be strictly ascending, got (10, 10)"),
    (HorizontalScalingConfig, dict(agent_counts=(100, 10)),
     "agent_counts must be strictly ascending, got (100, 10)"),
    (HorizontalScalingConfig, dict(agent_kind="java"),
     "agent_kind must be one of 'native', 'python', 'wasm', got 'java'"),
    (HorizontalScalingConfig, dict(messages=0), "messages must be >= 1, got 0"),
    (HorizontalScalingConfig, dict(window=0), "window must be >= 1, got 0"),
    (LoadTestConfig, dict(rate=0), "LoadTestConfig: rate must be a finite number > 0, got 0"),
    (LoadTestConfig, dict(duration=-1.0), "duration must be a finite number > 0, got -1.0"),
    (LoadTestConfig, dict(ramp_up=-0.5), "ramp_up must be a finite number >= 0, got -0.5"),
    (LoadTestConfig, dict(ramp_up=math.inf), "ramp_up must be a finite number >= 0, got inf"),
    (LoadTestConfig, dict(agent_kind="wasm"),
     "agent_kind must be one of 'native', 'python', got 'wasm'"),
    (LoadTestConfig, dict(max_in_flight=0), "max_in_flight must be >= 1, got 0"),
    (LoadTestConfig, dict(interval=0), "interval must be a finite number > 0, got 0"),
    (BurstTrafficConfig, dict(baseline_rate=0),
     "BurstTrafficConfig: baseline_rate must be a finite number > 0, got 0"),
    (BurstTrafficConfig, dict(burst_rate=-1), "burst_rate must be a finite number > 0, got -1"),
    (BurstTrafficConfig, dict(burst_duration=0),
     "burst_duration must be a finite number > 0, got 0"),
    (BurstTrafficConfig, dict(after=math.nan), "after must be a finite number > 0, got nan"),
    (BurstTrafficConfig, dict(recovery_factor=0.5), "recovery_factor must be a finite number >= 1, got 0.5"),
    (BurstTrafficConfig, dict(before=0.05, interval=0.1),
     "before (0.05 s) must be at least one interval (0.1 s): the baseline needs a whole interval"),
    (WasmOverheadConfig, dict(messages=0), "WasmOverheadConfig: messages must be >= 1, got 0"),
    (WasmOverheadConfig, dict(heavy_units=0), "heavy_units must be >= 1, got 0"),
    (WasmOverheadConfig, dict(agents=0), "agents must be >= 1, got 0"),
    (WasmOverheadConfig, dict(check_messages=0), "check_messages must be >= 1, got 0"),
    (AgentResponseTimeConfig, dict(messages=0),
     "AgentResponseTimeConfig: messages must be >= 1, got 0"),
    (AgentResponseTimeConfig, dict(agents=0), "agents must be >= 1, got 0"),
    (AgentResponseTimeConfig, dict(agent_kind="java"),
     "agent_kind must be one of 'native', 'python', 'wasm', got 'java'"),
    (AgentResponseTimeConfig, dict(window=0), "window must be >= 1, got 0"),
    (MemoryProfileConfig, dict(agents=0), "MemoryProfileConfig: agents must be >= 1, got 0"),
    (MemoryProfileConfig, dict(messages=-1), "messages must be >= 1, got -1"),
    (MemoryProfileConfig, dict(agent_kind="go"),
     "agent_kind must be one of 'native', 'python', 'wasm', got 'go'"),
    (CpuProfileConfig, dict(agents=0), "CpuProfileConfig: agents must be >= 1, got 0"),
    (CpuProfileConfig, dict(idle=0), "idle must be a finite number > 0, got 0"),
    (CpuProfileConfig, dict(idle=math.inf), "idle must be a finite number > 0, got inf"),
    (CpuProfileConfig, dict(rate_per_agent=0),
     "rate_per_agent must be a finite number > 0, got 0"),
    (CpuProfileConfig, dict(sample_interval=-0.1),
     "sample_interval must be a finite number > 0, got -0.1"),
    (WasmMemoryLimitsConfig, dict(limits_mb=()), "WasmMemoryLimitsConfig: limits_mb must not be empty"),
    (WasmMemoryLimitsConfig, dict(limits_mb=(1, 0)),
     "limits_mb[1] must be a finite number > 0, got 0"),
    (WasmMemoryLimitsConfig, dict(limits_mb=(0.05,)),
     "limits_mb[0] must be within [0.065536, 4294.967296] MB (one 64 KiB page to 4 GiB), got 0.05"),
    (WasmMemoryLimitsConfig, dict(limits_mb=(1, 5000)),
     "limits_mb[1] must be within [0.065536, 4294.967296] MB (one 64 KiB page to 4 GiB), got 5000"),
    (WasmMemoryLimitsConfig, dict(limits_mb=(10, 1)),
     "limits_mb must be strictly ascending, got (10, 1)"),
    (WasmMemoryLimitsConfig, dict(messages=0), "messages must be >= 1, got 0"),
    (SustainedLoadConfig, dict(rate=0), "SustainedLoadConfig: rate must be a finite number > 0, got 0"),
    (SustainedLoadConfig, dict(duration=-1.0), "duration must be a finite number > 0, got -1.0"),
    (SustainedLoadConfig, dict(agents=0), "agents must be >= 1, got 0"),
    (SustainedLoadConfig, dict(duration=1.0, interval=0.6),
     "duration (1.0 s) must cover at least two intervals (0.6 s each)"),
    (SustainedLoadConfig, dict(window_fraction=0.6),
     "window_fraction must be <= 0.5 (the first and last windows must not overlap), got 0.6"),
    (SustainedLoadConfig, dict(window_fraction=0), "window_fraction must be a fraction in (0, 1] (0.05 for 5 %), got 0"),
    (SustainedLoadConfig, dict(leak_threshold=-0.05),
     "leak_threshold must be a fraction in (0, 1] (0.05 for 5 %), got -0.05"),
    (SustainedLoadConfig, dict(degradation_limit=0),
     "degradation_limit must be a fraction in (0, 1] (0.05 for 5 %), got 0"),
    (PeakLoadConfig, dict(rate=0), "PeakLoadConfig: rate must be a finite number > 0, got 0"),
    (PeakLoadConfig, dict(agents=0), "agents must be >= 1, got 0"),
    (PeakLoadConfig, dict(duration=math.nan), "duration must be a finite number > 0, got nan"),
    (PeakLoadConfig, dict(min_success_rate=1.5), "min_success_rate must be a fraction in (0, 1] (0.05 for 5 %), got 1.5"),
    (PeakLoadConfig, dict(min_success_rate=0), "min_success_rate must be a fraction in (0, 1] (0.05 for 5 %), got 0"),
    (PeakLoadConfig, dict(max_in_flight=0), "max_in_flight must be >= 1, got 0"),
])
def test_bad_config_values(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        cls(**kwargs)
    assert str(info.value).startswith(f"{cls.__name__}: ") and str(info.value).endswith(message)
    with pytest.raises(ValueError, match=re.escape(message)):
        cls.quick(**kwargs)       # the quick profile validates too


@pytest.mark.parametrize("cls, kwargs, message", [
    (MessageThroughputConfig, dict(messages=1.5), "messages must be an int, not float"),
    (MessageThroughputConfig, dict(agents=True), "agents must be an int, not bool"),
    (LatencyConfig, dict(rate=[5]), "rate must be a number or a string with a unit"),
    (TaskProcessingConfig, dict(sample_resources=1), "sample_resources must be a bool"),
    (HorizontalScalingConfig, dict(agent_counts={1, 10}),
     "agent_counts must be a tuple, not set"),
    (HorizontalScalingConfig, dict(agent_counts=(1, 2.5)),
     r"agent_counts\[1\] must be an int, not float"),
    (LoadTestConfig, dict(ramp_up=None), "ramp_up must be a number or a string with a unit"),
    (BurstTrafficConfig, dict(sample_resources=None), "sample_resources must be a bool"),
    (WasmMemoryLimitsConfig, dict(limits_mb=(1, "10")), r"limits_mb\[1\] must be a number, not str"),
    (CpuProfileConfig, dict(agents=2.0), "agents must be an int, not float"),
])
def test_bad_config_types(cls, kwargs, message):
    with pytest.raises(TypeError, match=message):
        cls(**kwargs)


def test_quantities_with_units_and_lists_from_json_are_read_into_the_fields_types():
    c = LoadTestConfig(rate="2K/s", duration="500ms", ramp_up="1s", interval="100ms",
                       message_size="1KB")
    assert (c.rate, c.duration, c.ramp_up, c.interval, c.message_size) == (2000.0, 0.5, 1.0,
                                                                           0.1, 1000)
    assert c.planned_seconds() == 1.5
    assert HorizontalScalingConfig(agent_counts=[1, 10]).agent_counts == (1, 10)
    assert WasmMemoryLimitsConfig(limits_mb=[1, 10]).limits_mb == (1, 10)
    with pytest.raises(ValueError, match="LatencyConfig: rate: 'fast' does not start with a "
                                         "number"):
        LatencyConfig(rate="fast")
    with pytest.raises(ValueError, match="unknown unit 'parsecs' for a time"):
        LatencyConfig(duration="3 parsecs")
    with pytest.raises(TypeError, match="deadline must be a number or a string with a unit"):
        LatencyConfig(deadline=True)           # True is not one second


def test_configs_are_frozen_and_quick_is_smaller():
    for name, scenario in SCENARIOS.items():
        cls = scenario.config
        full, quick = cls(), cls.quick()
        assert full != quick, name
        with pytest.raises(dataclasses.FrozenInstanceError):
            full.agents = 3
    assert LatencyConfig.quick().duration < LatencyConfig().duration


# --- Ctrl-C ----------------------------------------------------------------------------

def test_an_interrupt_returns_the_partial_result(monkeypatch):
    def interrupted_loop(router, targets, total, **kwargs):
        core_closed_loop(router, targets, total // 2, **kwargs)    # half ran, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(sc.routing, "closed_loop", interrupted_loop)
    res = sc.run_message_throughput(MessageThroughputConfig.quick(messages=1000))
    assert res.partial
    assert res.metric("completed").value == 500
    assert res.histogram("round_trip").total_count == 500
    assert res.metric("throughput").grade is not None
    assert res.resources is not None           # the sampler was stopped
    assert any("interrupted" in n for n in res.notes)
    assert any("500 of 1000 requests ended" in n for n in res.notes)


def test_an_interrupted_open_loop_keeps_the_routers_latency(monkeypatch):
    real = sc._base.open_loop

    def interrupted_loop(router, targets, stages, **kwargs):
        real(router, targets, [(1000.0, 0.1)], **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(sc._base, "open_loop", interrupted_loop)
    res = sc.run_latency(LatencyConfig.quick(sample_resources=False))
    assert res.partial and res.intervals == ()
    assert res.histogram("latency").total_count == 100
    assert res.metric("latency_p99").grade is not None


def test_an_interrupted_scaling_run_keeps_the_finished_points(monkeypatch):
    calls = []

    def loop(router, targets, total, **kwargs):
        calls.append(total)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return core_closed_loop(router, targets, total, **kwargs)

    monkeypatch.setattr(sc.resources, "closed_loop", loop)
    res = sc.run_horizontal_scaling(HorizontalScalingConfig.quick(messages=50))
    assert res.partial and res.interrupted
    assert {m.name.split("@")[1] for m in res.metrics} == {"1"}
    assert set(res.histograms) == {"spawn_time@1", "round_trip@1"}
    assert any("points finished before the stop: [1]" in n for n in res.notes)


# -- deadlines ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "soon", "-2s", b"1"])
def test_a_bad_deadline_is_refused_before_anything_runs(bad):
    with pytest.raises((ValueError, TypeError), match="deadline"):
        LatencyConfig(deadline=bad)


def test_a_deadline_stops_an_open_loop_scenario_with_the_partial_result():
    import time
    started = time.perf_counter()
    res = sc.run_latency(LatencyConfig.quick(duration=30.0, deadline=0.3, sample_resources=False))
    assert time.perf_counter() - started < 10          # not the 30 s the config asks
    assert res.partial
    assert any("deadline (0.3 s) was reached" in n for n in res.notes)
    requests = res.metric("requests").value
    assert 0 < requests < 2000 * 30                     # some, not all, of the schedule
    assert res.histogram("latency").total_count == requests - res.metric("failed").value


def test_a_deadline_stops_a_multi_point_scenario_between_points():
    # 1 agent then 10 then 100, each routing many messages: the deadline
    # cuts the run short, and only whole points are reported
    config = HorizontalScalingConfig(agent_counts=(1, 10, 100), messages=2_000_000,
                                     window=100, sample_resources=False, deadline=0.2)
    res = sc.run_horizontal_scaling(config)
    assert res.partial and not res.interrupted
    assert any("deadline" in n for n in res.notes)
    done = {m.name.split("@")[1] for m in res.metrics}
    assert "100" not in done
    for point in done:                                   # each reported point is complete
        assert res.metric(f"completed@{point}").value == 2_000_000


def test_a_deadline_stops_the_cpu_profile_between_phases():
    res = sc.run_cpu_profile(CpuProfileConfig.quick(idle=30.0, deadline=0.3))
    assert res.partial
    assert "cpu_per_agent" not in {m.name for m in res.metrics}   # processing never ran


# -- run_scenario and the public API -----------------------------------------------------

def test_run_scenario_takes_a_name_or_a_config_with_changes():
    import caxton_meter as cm
    res = cm.run_scenario("message_throughput", quick=True, messages=300,
                          sample_resources=False)
    assert res.scenario == "message_throughput"
    assert res.config["messages"] == 300 and res.config["window"] == 100   # quick's window
    assert res.metric("completed").value == 300
    config = cm.MessageThroughputConfig.quick(messages=200, sample_resources=False)
    res = cm.run_scenario(config, agents=3)
    assert res.config["agents"] == 3 and res.metric("completed").value == 200
    assert cm.scenario_config("latency") == cm.LatencyConfig()          # the guide's values
    assert cm.scenario_config("latency", quick=True) == cm.LatencyConfig.quick()


def test_run_scenario_refuses_bad_input_before_running():
    import caxton_meter as cm
    with pytest.raises(ValueError, match=r"unknown scenario 'nope'; scenarios: message_throughput"):
        cm.run_scenario("nope")
    with pytest.raises(ValueError, match=r"unknown scenario 'latncy' \(did you mean 'latency'\?\)"):
        cm.run_scenario("latncy")
    with pytest.raises(ValueError, match=r"LatencyConfig has no field 'rat' \(did you mean "
                                         r"'rate'\?\); fields: .*rate"):
        cm.run_scenario("latency", rat=5)
    with pytest.raises(ValueError, match="rate must be a finite number > 0"):
        cm.run_scenario("latency", rate=0)
    with pytest.raises(TypeError, match="scenario name or config, not int"):
        cm.run_scenario(5)
    with pytest.raises(ValueError, match="unknown threshold metric"):
        cm.run_scenario("latency", quick=True,
                        thresholds={"latncy_p99": sc.DEFAULT_THRESHOLDS["latency_p99"]})


def test_every_public_name_resolves_and_is_listed():
    import caxton_meter as cm
    for name in cm.__all__:
        assert getattr(cm, name) is not None, name
    assert set(cm.__all__) <= set(dir(cm))
    assert set(cm._LAZY) <= set(cm.__all__)             # nothing importable but unlisted
    assert {"run_scenario", "SCENARIOS", "open_loop", "closed_loop", "run_processes",
            "open_loop_async", "Target", "ResourceSampler"} <= set(cm.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cm.nope
