"""Scenarios driven by an open loop (k6's arrival-rate stages): latency
percentiles, load test, burst traffic, sustained load and peak load.
Latency is measured from each request's intended send time (corrected for
coordinated omission), the uncorrected histogram kept beside it."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import _checks
from .._checks import ArgumentError
from .._model import Direction, Grade, Kind, Metric, MetricSpec, ScenarioResult, Threshold, grade
from .._sampling import ResourceProfile
from ._base import (
    OPEN_LOOP_METRICS,
    AgentsConfig,
    OpenRun,
    count,
    counted,
    field,
    fraction,
    http_url,
    cluster_address,
    merged_p99,
    number_at_least_one,
    rate,
    run_open_loop,
    scenario,
    seconds,
    seconds_or_zero,
    size,
)

_S = 1_000_000_000        # ns


def _workers(value: object, what: str) -> int:
    return _checks.integer(value, what, low=1)


@dataclass(frozen=True, kw_only=True)
class OpenLoopConfig(AgentsConfig):
    """Fields of every open-loop scenario: at most ``max_in_flight``
    requests outstanding (one due beyond that is dropped and counted), and
    statistics every ``interval`` seconds.

    ``target``: a URL (http://127.0.0.1:PORT/PATH) to load instead of the
    router's agents, over ``connections`` keep-alive connections from the
    core's network loop (a request due while every connection is busy
    waits, at most ``max_in_flight`` of them); with ``cluster`` (a Dask
    scheduler, "tcp://HOST:8786") the load runs on ``workers`` of its
    workers (default: all), merged exactly.  The resources sampled are
    this process's either way.  Left None, these fields are not in the
    config's record, so results without them compare as before."""
    max_in_flight: int = field(100_000, count)
    interval: float = field(1.0, seconds)
    target: str | None = field(None, _checks.optional(http_url))
    connections: int = field(50, count)
    cluster: str | None = field(None, _checks.optional(cluster_address))
    workers: int | None = field(None, _checks.optional(_workers))

    def validate(self) -> None:
        super().validate()
        if self.target is None and (self.cluster is not None or self.workers is not None):
            self._refuse("cluster and workers share the load on a target: give target= (a URL)")
        if self.cluster is None and self.workers is not None:
            self._refuse("workers is how many of a cluster's workers: give cluster= too")

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if self.target is None:
            for name in ("target", "connections", "cluster", "workers"):
                out.pop(name, None)
        return out


# -- latency -----------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class LatencyConfig(OpenLoopConfig):
    """The guide's end-to-end latency percentiles: an open loop at ``rate``
    requests/s for ``duration`` seconds over ``agents`` echo agents."""
    rate: float = field(10_000.0, rate)
    duration: float = field(60.0, seconds, timed=True)

    QUICK: ClassVar[Mapping[str, Any]] = {"rate": 2000.0, "duration": 0.5, "interval": 0.1}


@scenario("latency", LatencyConfig, OPEN_LOOP_METRICS)
def run_latency(config: LatencyConfig, thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics: ``latency_p50``/``_p99`` (graded), ``latency_p90``,
    ``_p95``, ``_p99_9``, ``_max``, corrected for coordinated omission; the
    open loop's counts (``achieved_rate``, ``intended_rate``, ``requests``,
    ``completed``, ``failed``, ``dropped``).  Histograms: ``latency``,
    ``latency_uncorrected``, ``send_jitter``."""
    o = run_open_loop(config, [(config.rate, config.duration)])
    return _result("latency", o, o.latency_metrics(thresholds) + o.counts)


def _result(name: str, o: OpenRun, metrics: list[Metric], *,
            resources: ResourceProfile | None | bool = True) -> ScenarioResult:
    return o.run.result(name, metrics, o.histograms, intervals=o.intervals, router=o.router,
                        resources=resources)


# -- load test ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class LoadTestConfig(OpenLoopConfig):
    """A load test: an open loop over ``agents`` echo agents ramping
    linearly from 0 to ``rate`` requests/s over ``ramp_up`` seconds, then
    holding ``rate`` for ``duration`` seconds; statistics every ``interval``
    seconds.  Full values: 10,000/s, 60 s ramp-up, 300 s hold (the guide
    gives no figures for this run: these defaults are chosen)."""
    rate: float = field(10_000.0, rate)
    duration: float = field(300.0, seconds, timed=True)
    ramp_up: float = field(60.0, seconds_or_zero, timed=True)

    QUICK: ClassVar[Mapping[str, Any]] = {"rate": 2000.0, "ramp_up": 0.2, "duration": 0.4,
                                          "interval": 0.1}


@scenario("load_test", LoadTestConfig, OPEN_LOOP_METRICS)
def run_load_test(config: LoadTestConfig, thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics: ``latency_p50``/``_p99`` over the whole run, ramp included
    (graded; corrected for coordinated omission), the other percentiles and
    the open loop's counts.  ``intervals``: each interval's sent,
    completed, failed, dropped and latency."""
    o = run_open_loop(config, [(config.rate, config.ramp_up), (config.rate, config.duration)],
                      start_rate=0.0)
    return _result("load_test", o, o.latency_metrics(thresholds) + o.counts)


# -- burst traffic -----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class BurstTrafficConfig(OpenLoopConfig):
    """The guide's burst traffic: an open loop over ``agents`` echo agents
    at ``baseline_rate`` (1000/s) for ``before`` seconds, jumping to
    ``burst_rate`` (50,000/s) for ``burst_duration`` (10 s), then back to
    the baseline for ``after`` seconds (300 s: long enough to grade a
    recovery up to the critical bound).  ``recovery_factor`` (1.5) is the
    tolerance of "back at baseline"."""
    baseline_rate: float = field(1000.0, rate)
    burst_rate: float = field(50_000.0, rate)
    burst_duration: float = field(10.0, seconds, timed=True)
    before: float = field(30.0, seconds, timed=True)
    after: float = field(300.0, seconds, timed=True)
    recovery_factor: float = field(1.5, number_at_least_one)

    QUICK: ClassVar[Mapping[str, Any]] = {"baseline_rate": 500.0, "burst_rate": 5000.0,
                                          "burst_duration": 0.3, "before": 0.5, "after": 0.5,
                                          "interval": 0.1}

    def validate(self) -> None:
        super().validate()
        if self.before < self.interval:
            self._refuse(f"before ({self.before!r} s) must be at least one interval "
                         f"({self.interval!r} s): the baseline needs a whole interval")


_RECOVERY = MetricSpec("recovery_time", "ns", Kind.DURATION, graded_by="recovery_time")
_BURST = (MetricSpec("burst_latency_p99", "ns", Kind.LATENCY),
          MetricSpec("baseline_latency_p99", "ns", Kind.LATENCY), _RECOVERY,
          MetricSpec("recovered", "bool", Kind.FLAG))


@scenario("burst_traffic", BurstTrafficConfig, _BURST + OPEN_LOOP_METRICS)
def run_burst_traffic(config: BurstTrafficConfig,
                      thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Stages: the baseline for ``before`` s, a 0-duration jump to the
    burst rate, held ``burst_duration`` s, a jump back, the baseline for
    ``after`` s.

    Recovery.  The baseline p99 is the p99 of all intervals that end by
    the burst's start (merged; within 1 % of an interval: their boundaries
    wobble by microseconds).  The recovery time is measured from the
    burst's end to the end of the first interval that starts at or after
    it, has completions, and whose p99 is at most ``recovery_factor`` x the
    baseline p99 (an interval's p99 is known only at its end, so the figure
    is rounded up to interval ends: its resolution is ``interval``).
    ``recovery_time`` is graded as recovery_time.  If no interval recovers
    within the run, ``recovery_time`` is the time from the burst's end to
    the run's end (a lower bound), ``recovered`` is 0, a note says so, and
    the grade is FAILED only when that lower bound is already beyond the
    critical bound; otherwise it is ungraded (the run was too short to
    tell).

    Other metrics: ``recovered`` (1/0), ``baseline_latency_p99``,
    ``burst_latency_p99`` (intervals overlapping the burst), the whole
    run's percentiles (ungraded: the burst is graded by its recovery) and
    the open loop's counts."""
    base, burst = config.baseline_rate, config.burst_rate
    o = run_open_loop(config, [(base, config.before), (burst, 0.0),
                               (burst, config.burst_duration), (base, 0.0),
                               (base, config.after)], start_rate=base)
    metrics: list[Metric] = []
    if o.result is None:
        o.run.notes.append("recovery time not measured: the intervals are lost")
    else:
        metrics += _recovery_metrics(o.result, config, thresholds, o.run.notes)
    metrics += o.latency_metrics(thresholds, graded=False) + o.counts
    return _result("burst_traffic", o, metrics)


def _recovery_metrics(res: Any, config: BurstTrafficConfig, limits: Mapping[str, Threshold],
                      notes: list[str]) -> list[Metric]:
    ivs = res.intervals
    if not ivs:
        notes.append("no intervals: recovery time not measured")
        return []
    t0 = ivs[0].start_ns
    burst_start = t0 + round(config.before * _S)
    burst_end = burst_start + round(config.burst_duration * _S)
    run_end = ivs[-1].end_ns
    slack = round(config.interval * _S / 100)     # interval ends wobble by microseconds
    baseline = merged_p99([iv.latency for iv in ivs if iv.end_ns <= burst_start + slack])
    during = merged_p99([iv.latency for iv in ivs
                         if iv.start_ns < burst_end and iv.end_ns > burst_start])
    out: list[Metric] = []
    if during is not None:
        out.append(_BURST[0](during))
    if baseline is None:
        notes.append("no latency before the burst: no baseline, recovery time not measured")
        return out
    out.append(_BURST[1](baseline))
    bound = config.recovery_factor * baseline
    for iv in ivs:
        if iv.start_ns >= burst_end - slack and iv.latency.total_count \
                and iv.latency.value_at_percentile(99) <= bound:
            return out + [_RECOVERY.graded(iv.end_ns - burst_end, limits), _BURST[3](1)]
    remainder = max(run_end - burst_end, 0)
    failed = grade(limits["recovery_time"], remainder) is Grade.FAILED
    notes.append(f"latency did not recover (p99 <= {config.recovery_factor:g} x the baseline "
                 f"{baseline:.0f} ns) within the {remainder / 1e9:.3g} s after the burst: "
                 "recovery_time is that remainder, a lower bound"
                 + ("" if failed else ", left ungraded (the run is too short to grade it)"))
    return out + [_RECOVERY(remainder, Grade.FAILED if failed else None), _BURST[3](0)]


# -- sustained load ----------------------------------------------------------------------

def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile (p in (0.5, 1)), from the normal quantile by
    the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5): within 0.5 %
    of the exact value for df >= 3, a little large (conservative) below."""
    from statistics import NormalDist
    z = NormalDist().inv_cdf(p)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3


@dataclass(frozen=True)
class MemoryTrend:
    """The result of :func:`rss_trend`.  ``slope`` and its confidence
    bounds in bytes/s; ``projected_growth``: slope x the series' span over
    the fitted value at its start (a fraction: 0.05 is 5 %); ``leak``: the
    rule's verdict."""
    slope: float
    slope_low: float
    slope_high: float
    projected_growth: float
    samples: int
    leak: bool


def rss_trend(times: Any, rss: Any, *, confidence: float = 0.95,
              growth_threshold: float = 0.05) -> MemoryTrend:
    """A memory-leak test on an RSS series (``times`` in s, ``rss`` in
    bytes, same length, at least 3 points, times not all equal).

    Rule: fit RSS = a + b t by least squares (numpy); the two-sided
    ``confidence`` interval of b is b +- t(df = n - 2) x SE(b).  A leak is
    flagged when the interval's lower bound is above 0 (growth is
    significant) AND the projected growth b x (t_last - t_first) / (a +
    b t_first) exceeds ``growth_threshold`` (the growth matters: a
    significant but tiny slope, e.g. an allocator settling, is not a leak).
    RSS samples are autocorrelated, which makes the interval too narrow;
    the growth threshold is what guards against flagging noise.  A
    series whose residuals are all zero (a perfect line) has a zero-width
    interval."""
    import numpy as np
    t = np.asarray(times, dtype=np.float64)
    y = np.asarray(rss, dtype=np.float64)
    if t.ndim != 1 or y.ndim != 1 or t.shape != y.shape:
        raise ValueError(f"rss_trend: times and rss must be 1-D of the same length, got "
                         f"shapes {t.shape} and {y.shape}")
    n = int(t.size)
    if n < 3:
        raise ValueError(f"rss_trend: needs at least 3 samples, got {n}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise ValueError("rss_trend: times and rss must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"rss_trend: confidence must be in (0, 1), got {confidence!r}")
    tc = t - t.mean()
    sxx = float(np.dot(tc, tc))
    if sxx == 0:
        raise ValueError("rss_trend: the times are all equal")
    slope = float(np.dot(tc, y - y.mean()) / sxx)
    intercept = float(y.mean() - slope * t.mean())
    resid = y - (intercept + slope * t)
    se = math.sqrt(float(np.dot(resid, resid)) / (n - 2) / sxx)
    half = _t_quantile(0.5 + confidence / 2, n - 2) * se
    start = intercept + slope * float(t[0])
    span = float(t[-1] - t[0])
    growth = slope * span / start if start > 0 else math.inf if slope > 0 else 0.0
    return MemoryTrend(slope, slope - half, slope + half, growth, n,
                       bool(slope - half > 0 and growth > growth_threshold))


def _window_figures(ivs: tuple[Any, ...], first: bool, count: int) -> tuple[float | None, float]:
    """(p99, completed per second) over the first or last ``count`` intervals."""
    chosen = ivs[:count] if first else ivs[-count:]
    span = sum(iv.end_ns - iv.start_ns for iv in chosen) / 1e9
    per_second = sum(iv.completed for iv in chosen) / span if span > 0 else 0.0
    return merged_p99([iv.latency for iv in chosen]), per_second


def _half(value: object, what: str) -> float:
    out = fraction(value, what)
    if out > 0.5:
        raise ArgumentError(f"{what} must be <= 0.5 (the first and last windows must not "
                         f"overlap), got {value!r}")
    return out


@dataclass(frozen=True, kw_only=True)
class SustainedLoadConfig(OpenLoopConfig):
    """The guide's sustained load: an open loop at ``rate`` (10,000/s) over
    ``agents`` (100) echo agents, ``message_size`` (512 B), for
    ``duration`` (86,400 s: 24 h), statistics every ``interval`` (60 s),
    RSS sampled every ``sample_interval`` (1 s).  ``window_fraction``
    (0.1) of the intervals (at least one) form the first and last windows
    compared for degradation, with ``degradation_limit`` (5 %);
    ``leak_threshold`` (5 %) is :func:`rss_trend`'s growth threshold."""
    agents: int = field(100, count)
    message_size: int = field(512, size)
    interval: float = field(60.0, seconds)
    sample_interval: float = field(1.0, seconds)
    rate: float = field(10_000.0, rate)
    duration: float = field(86_400.0, seconds, timed=True)
    window_fraction: float = field(0.1, _half)
    degradation_limit: float = field(0.05, fraction)
    leak_threshold: float = field(0.05, fraction)

    QUICK: ClassVar[Mapping[str, Any]] = {"rate": 2000.0, "duration": 1.0, "agents": 10,
                                          "interval": 0.25, "window_fraction": 0.25,
                                          "sample_interval": 0.02}

    def validate(self) -> None:
        super().validate()
        if self.duration < 2 * self.interval:
            self._refuse(f"duration ({self.duration!r} s) must cover at least two intervals "
                         f"({self.interval!r} s each)")


_LEAK = (MetricSpec("rss_slope", "bytes/s", Kind.MEMORY),
         MetricSpec("rss_slope_low", "bytes/s", Kind.MEMORY),
         MetricSpec("rss_growth_projected", "ratio", Kind.RATIO, Direction.LOWER),
         MetricSpec("memory_leak", "bool", Kind.FLAG))
_DEGRADATION = (MetricSpec("p99_first_window", "ns", Kind.LATENCY),
                MetricSpec("p99_last_window", "ns", Kind.LATENCY),
                MetricSpec("p99_change", "ratio", Kind.RATIO, Direction.LOWER),
                MetricSpec("throughput_change", "ratio", Kind.RATIO, Direction.HIGHER),
                MetricSpec("degraded", "bool", Kind.FLAG))
_STORAGE = MetricSpec("interval_storage_bytes", "bytes", Kind.MEMORY, Direction.NONE)


@scenario("sustained_load", SustainedLoadConfig,
          _LEAK + _DEGRADATION + (_STORAGE,) + OPEN_LOOP_METRICS)
def run_sustained_load(config: SustainedLoadConfig,
                       thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics: ``latency_p50``/``_p99`` of the whole run (graded; corrected
    for coordinated omission), the other percentiles, the open loop's
    counts.

    Leak: :func:`rss_trend` over the sampler's RSS readings taken after the
    first ``window_fraction`` of ``duration`` (warm-up: histograms,
    mailboxes and the allocator grow to their working size then, which is
    not a leak).  The RSS is the whole process's, so it includes the
    meter's own per-interval histograms (``interval_storage_bytes``, an
    upper bound; a note when it exceeds ``leak_threshold`` of the starting
    RSS).  Metrics: ``rss_slope``, ``rss_slope_low`` (bytes/s),
    ``rss_growth_projected`` (fraction over the run), ``memory_leak``
    (1/0).  Fewer than 3 readings (or ``sample_resources=False``): not
    tested, noted.

    Degradation between the first and last windows (``window_fraction`` of
    the intervals each, at least one): ``p99_change`` = (last p99 - first
    p99) / first p99, ``throughput_change`` likewise of the completed rate
    (negative is worse), ``degraded`` = 1 when p99 rose by more than
    ``degradation_limit`` or throughput fell by more than it (the guide's
    < 5 % target; a note says which).  With few samples per interval the
    p99s are noisy: a short run's verdict means little."""
    o = run_open_loop(config, [(config.rate, config.duration)])
    run, res = o.run, o.result
    metrics: list[Metric] = []
    if res is not None:
        metrics += _degradation_metrics(res, config, run.notes)
    metrics += _leak_metrics(run.resources, config, run.notes)
    if res is not None and res.intervals and run.resources is not None:
        # the meter's own per-interval histograms grow with the run: say how much
        storage = sum(iv.packed_size for iv in res.intervals)
        metrics.append(_STORAGE(storage))
        if storage > config.leak_threshold * run.resources.rss_start:
            run.notes.append(f"the meter's own per-interval histograms take up to {storage} "
                             f"bytes ({len(res.intervals)} intervals), more than "
                             f"{config.leak_threshold:.0%} of the starting RSS: part of the RSS "
                             "growth is the meter's; use a longer interval")
    return _result("sustained_load", o, o.latency_metrics(thresholds) + metrics + o.counts)


def _leak_metrics(profile: ResourceProfile | None, config: SustainedLoadConfig,
                  notes: list[str]) -> list[Metric]:
    if profile is None:
        return []
    readings = [(profile.start_time, profile.rss_start)] + [(s.time, s.rss_bytes)
                                                          for s in profile.samples]
    # the first window is warm-up (histograms, mailboxes and the allocator
    # growing to their working size): the trend is fitted after it
    warm_up = profile.start_time + config.window_fraction * config.duration
    readings = [r for r in readings if r[0] >= warm_up]
    times = [r[0] for r in readings]
    rss = [r[1] for r in readings]
    if len(times) < 3 or max(times) == min(times):
        notes.append(f"memory leak not tested: {len(times)} RSS readings after the warm-up "
                     "window (needs 3)")
        return []
    trend = rss_trend(times, rss, growth_threshold=config.leak_threshold)
    if trend.leak:
        notes.append(f"memory leak: RSS grows {trend.slope:.0f} B/s (95 % lower bound "
                     f"{trend.slope_low:.0f}), {trend.projected_growth:.1%} over the run "
                     f"(> {config.leak_threshold:.0%})")
    return [spec(v) for spec, v in zip(_LEAK, (trend.slope, trend.slope_low,
                                               trend.projected_growth, int(trend.leak)))]


def _degradation_metrics(res: Any, config: SustainedLoadConfig,
                         notes: list[str]) -> list[Metric]:
    ivs = res.intervals
    if len(ivs) < 2:
        notes.append(f"degradation not measured: {len(ivs)} interval(s)")
        return []
    n = max(1, min(len(ivs) // 2, int(len(ivs) * config.window_fraction)))
    p99_first, rate_first = _window_figures(ivs, True, n)
    p99_last, rate_last = _window_figures(ivs, False, n)
    out: list[Metric] = []
    worse: list[str] = []
    if p99_first and p99_last is not None:
        change = (p99_last - p99_first) / p99_first
        out += [_DEGRADATION[0](p99_first), _DEGRADATION[1](p99_last), _DEGRADATION[2](change)]
        if change > config.degradation_limit:
            worse.append(f"p99 rose {change:.1%}")
    else:
        notes.append("p99 degradation not measured: a window has no completions")
    if rate_first > 0:
        change = (rate_last - rate_first) / rate_first
        out.append(_DEGRADATION[3](change))
        if change < -config.degradation_limit:
            worse.append(f"throughput fell {-change:.1%}")
    out.append(_DEGRADATION[4](int(bool(worse))))
    notes.append(f"degradation between the first and last {n} interval(s): "
                 + ("; ".join(worse) + f" (limit {config.degradation_limit:.0%})" if worse
                    else f"within {config.degradation_limit:.0%}"))
    return out


# -- peak load ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PeakLoadConfig(OpenLoopConfig):
    """The guide's peak load: an open loop at ``rate`` (100,000/s) over
    ``agents`` (1000) echo agents, ``message_size`` (1 KiB), for
    ``duration`` (300 s); success means at least ``min_success_rate``
    (0.99) of the planned requests completed."""
    agents: int = field(1000, count)
    message_size: int = field(1024, size)
    rate: float = field(100_000.0, rate)
    duration: float = field(300.0, seconds, timed=True)
    min_success_rate: float = field(0.99, fraction)

    QUICK: ClassVar[Mapping[str, Any]] = {"rate": 20_000.0, "duration": 0.5, "agents": 100,
                                          "interval": 0.1}


_SUCCESS = MetricSpec("success_rate", "ratio", Kind.RATIO, Direction.HIGHER)


@scenario("peak_load", PeakLoadConfig, (_SUCCESS,) + OPEN_LOOP_METRICS)
def run_peak_load(config: PeakLoadConfig, thresholds: Mapping[str, Threshold]) -> ScenarioResult:
    """Metrics: ``success_rate`` = completed / planned requests (dropped and
    failed ones count against it), graded TARGET when at least
    ``min_success_rate`` and FAILED otherwise (pass/fail: the targets table
    has no row for it); ``latency_p50``/``_p99`` (graded, corrected for
    coordinated omission), the other percentiles and the open loop's
    counts."""
    o = run_open_loop(config, [(config.rate, config.duration)])
    metrics: list[Metric] = []
    res = o.result
    if res is None:
        o.run.notes.append("success rate not measured: the planned count is lost")
    else:
        success = res.completed / res.planned if res.planned else 0.0
        ok = success >= config.min_success_rate
        metrics.append(_SUCCESS(success, Grade.TARGET if ok else Grade.FAILED))
        if not ok:
            o.run.notes.append(f"success rate {success:.2%} < {config.min_success_rate:.0%} "
                               f"({res.completed} of {res.planned} planned requests completed)")
    return _result("peak_load", o, metrics + o.latency_metrics(thresholds) + o.counts)
