"""Scenarios of the benchmarking guide, graded against its targets table.

Each scenario is a frozen config dataclass (validated when built: a bad
value raises before anything runs) and a run function returning an
immutable :class:`ScenarioResult`.  The configs default to the guide's full
values; ``Config.quick()`` gives a variant that runs in well under a second,
for CI and the test suite.

Grading.  The guide's targets table is :data:`DEFAULT_THRESHOLDS`, in base
units (msg/s, ns, bytes, percent).  :func:`grade` reads the table literally:

* lower is better (latency, spawn time, memory, CPU, recovery): the table
  says "< 1 ms", so a value is TARGET if strictly below the target bound,
  ACCEPTABLE if strictly below the acceptable bound, CRITICAL if strictly
  below the critical bound, and FAILED otherwise (a value exactly at a bound
  falls to the next grade);
* higher is better (throughput): the table says "100K msg/s", meaning at
  least that, so a value at or above a bound earns its grade; below the
  critical bound is FAILED.

Run functions take ``thresholds=``: a mapping of metric name to
:class:`Threshold` overriding some of the defaults (the rest stay);
an unknown name raises ValueError listing the valid ones.

Ctrl-C.  The router's load loops (``closed_loop``, ``open_loop``) run in
compiled code that does not check for signals, so a Ctrl-C is seen only when
the loop returns to Python: it cannot stop the loop early.  When the
KeyboardInterrupt surfaces inside a run (during the loop's return, or in a
Python agent's handler), the run function catches it and returns what the
router recorded so far (its histograms and counts, which accumulate as
messages flow) with ``partial=True`` and a note, instead of raising.  A
result from a loop that reports ``interrupted`` is marked partial too.
What an interrupted loop's own result would have held (its exact elapsed
time, per-interval statistics) is lost: throughput is then computed over
the wall time measured around the loop.
"""
from __future__ import annotations

import dataclasses
import enum
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ._core import Histogram, LoadResult, OpenLoopResult, Router, closed_loop, open_loop
from ._sampling import ResourceProfile, ResourceSampler

__all__ = [
    "DEFAULT_THRESHOLDS",
    "SCENARIOS",
    "CrashRecoveryConfig",
    "Grade",
    "Interval",
    "LatencyConfig",
    "Metric",
    "MessageThroughputConfig",
    "ScenarioResult",
    "TaskProcessingConfig",
    "Threshold",
    "grade",
    "resolve_thresholds",
    "run_crash_recovery",
    "run_latency",
    "run_message_throughput",
    "run_task_processing",
]

_MS = 1_000_000           # ns
_S = 1_000_000_000        # ns
_MB = 1_000_000           # bytes (the guide's MB, decimal)


# -- grading -----------------------------------------------------------------------------

class Grade(enum.Enum):
    """A metric's grade against a threshold, best first."""
    TARGET = "target"
    ACCEPTABLE = "acceptable"
    CRITICAL = "critical"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """0 for TARGET up to 3 for FAILED (higher is worse)."""
        return _RANK[self]


_RANK = {Grade.TARGET: 0, Grade.ACCEPTABLE: 1, Grade.CRITICAL: 2, Grade.FAILED: 3}


@dataclass(frozen=True)
class Threshold:
    """One row of the targets table: three bounds in ``unit``.

    For lower-is-better metrics target <= acceptable <= critical; for
    higher-is-better ones target >= acceptable >= critical.  ValueError
    otherwise, or for a non-finite or negative bound."""
    metric: str
    unit: str
    target: float
    acceptable: float
    critical: float
    higher_is_better: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"Threshold: metric must be a non-empty str, got {self.metric!r}")
        for name in ("target", "acceptable", "critical"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Threshold {self.metric!r}: {name} must be a number, "
                                f"not {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Threshold {self.metric!r}: {name} must be a finite "
                                 f"number >= 0, got {value!r}")
        bounds = (self.target, self.acceptable, self.critical)
        if self.higher_is_better:
            ok = bounds[0] >= bounds[1] >= bounds[2]
            order = "target >= acceptable >= critical (higher is better)"
        else:
            ok = bounds[0] <= bounds[1] <= bounds[2]
            order = "target <= acceptable <= critical (lower is better)"
        if not ok:
            raise ValueError(f"Threshold {self.metric!r}: bounds must satisfy {order}, got "
                             f"target={self.target!r}, acceptable={self.acceptable!r}, "
                             f"critical={self.critical!r}")


DEFAULT_THRESHOLDS: Mapping[str, Threshold] = {
    t.metric: t for t in (
        Threshold("throughput", "msg/s", 100_000, 50_000, 10_000, higher_is_better=True),
        Threshold("latency_p50", "ns", 1 * _MS, 5 * _MS, 10 * _MS),
        Threshold("latency_p99", "ns", 10 * _MS, 50 * _MS, 100 * _MS),
        Threshold("spawn_time", "ns", 100 * _MS, 500 * _MS, 1 * _S),
        Threshold("memory_per_agent", "bytes", 10 * _MB, 50 * _MB, 100 * _MB),
        Threshold("cpu_per_agent", "percent", 5, 10, 25),
        Threshold("recovery_time", "ns", 30 * _S, 120 * _S, 300 * _S),
    )
}


def grade(threshold: Threshold, value: float) -> Grade:
    """Grade ``value`` (in the threshold's unit) against ``threshold``; see
    the module's docstring for the bounds.  ValueError for NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"grade: value must be a number, not {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"grade: value for {threshold.metric!r} is NaN")
    bounds = ((Grade.TARGET, threshold.target), (Grade.ACCEPTABLE, threshold.acceptable),
              (Grade.CRITICAL, threshold.critical))
    for g, bound in bounds:
        if (value >= bound) if threshold.higher_is_better else (value < bound):
            return g
    return Grade.FAILED


def resolve_thresholds(overrides: Mapping[str, Threshold] | None = None) -> dict[str, Threshold]:
    """The default thresholds with ``overrides`` replacing some of them.
    ValueError for a name not in the table (listing the valid ones) or a
    threshold filed under a name other than its own metric."""
    merged = dict(DEFAULT_THRESHOLDS)
    if overrides is None:
        return merged
    unknown = sorted(set(overrides) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ValueError(f"unknown threshold metric(s) {', '.join(map(repr, unknown))}; "
                         f"valid names: {', '.join(sorted(DEFAULT_THRESHOLDS))}")
    for name, threshold in overrides.items():
        if not isinstance(threshold, Threshold):
            raise TypeError(f"thresholds[{name!r}] must be a Threshold, "
                            f"not {type(threshold).__name__}")
        if threshold.metric != name:
            raise ValueError(f"thresholds[{name!r}] is a threshold for "
                             f"{threshold.metric!r}: the key must be its metric")
        merged[name] = threshold
    return merged


# -- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One measured figure, in base units (msg/s, ns, bytes, percent), and
    its grade (None for an ungraded figure)."""
    name: str
    value: float
    unit: str
    grade: Grade | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))     # counts given as ints


@dataclass(frozen=True)
class Interval:
    """One interval of an open-loop run; ``latency`` is HDR-encoded
    (``Histogram.decode`` reads it)."""
    start_ns: int
    end_ns: int
    sent: int
    completed: int
    failed: int
    dropped: int
    latency: str


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario measured.  ``config`` is the config as a dict;
    ``histograms`` maps a name to the HDR encoding of the histogram
    (``Histogram.encode``); ``partial`` is True when the run was interrupted
    (Ctrl-C) and the figures cover only part of it.  ``passed`` and
    ``worst_grade`` are derived from the graded metrics (``partial`` does
    not change them: check it too)."""
    scenario: str
    config: dict[str, Any]
    metrics: tuple[Metric, ...]
    histograms: dict[str, str]
    intervals: tuple[Interval, ...] = ()
    resources: ResourceProfile | None = None
    partial: bool = False
    notes: tuple[str, ...] = ()

    @property
    def worst_grade(self) -> Grade | None:
        """The worst grade among graded metrics; None if none is graded."""
        grades = [m.grade for m in self.metrics if m.grade is not None]
        return max(grades, key=lambda g: g.rank) if grades else None

    @property
    def passed(self) -> bool:
        """True when no graded metric is FAILED."""
        return self.worst_grade is not Grade.FAILED

    def metric(self, name: str) -> Metric:
        """The metric called ``name``; KeyError listing the names if none."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r} in {self.scenario!r}; "
                       f"metrics: {', '.join(m.name for m in self.metrics)}")

    def histogram(self, name: str) -> Histogram:
        """The histogram called ``name``, decoded."""
        return Histogram.decode(self.histograms[name])


# -- config validation -------------------------------------------------------------------

def _int_at_least(owner: str, name: str, value: object, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an int, not {type(value).__name__}")
    if value < low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value}")


def _positive_number(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a number, not {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")


def _choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of "
                         f"{', '.join(map(repr, choices))}, got {value!r}")


_AgentKind = Literal["native", "python"]
_AGENT_KINDS: tuple[str, ...] = ("native", "python")
_C = TypeVar("_C")


def _common(owner: str, agents: object, sample_resources: object,
            sample_interval: object) -> None:
    _int_at_least(owner, "agents", agents)
    if not isinstance(sample_resources, bool):
        raise TypeError(f"{owner}: sample_resources must be a bool, "
                        f"not {type(sample_resources).__name__}")
    _positive_number(owner, "sample_interval", sample_interval)


# -- configs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageThroughputConfig:
    """The guide's message throughput: route ``messages`` (10,000) through
    ``agents`` echo agents ("native" or "python"), ``window`` in flight at
    once (a closed loop), each ``message_size`` bytes."""
    messages: int = 10_000
    agents: int = 10
    agent_kind: _AgentKind = "native"
    window: int = 1000
    message_size: int = 64
    sample_resources: bool = True
    sample_interval: float = 0.1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _int_at_least(owner, "messages", self.messages)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _AGENT_KINDS)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)

    @classmethod
    def quick(cls, **changes: Any) -> MessageThroughputConfig:
        """A seconds-long variant (1000 messages)."""
        return dataclasses.replace(cls(messages=1000, window=100), **changes)


@dataclass(frozen=True)
class TaskProcessingConfig:
    """The guide's task processing: a pool of ``agents`` (10) compute agents
    processing ``tasks`` (1000) with ``window`` (1000) in flight at once;
    each task is ``units`` of the core's reference computation."""
    tasks: int = 1000
    agents: int = 10
    window: int = 1000
    units: int = 1000
    message_size: int = 64
    sample_resources: bool = True
    sample_interval: float = 0.1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _int_at_least(owner, "tasks", self.tasks)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "units", self.units)
        _int_at_least(owner, "message_size", self.message_size, 0)

    @classmethod
    def quick(cls, **changes: Any) -> TaskProcessingConfig:
        """A seconds-long variant (200 tasks of 100 units)."""
        return dataclasses.replace(cls(tasks=200, window=200, units=100), **changes)


@dataclass(frozen=True)
class LatencyConfig:
    """The guide's end-to-end latency percentiles: an open loop at ``rate``
    requests/s for ``duration`` seconds over ``agents`` echo agents;
    latency from each request's intended send time (corrected for
    coordinated omission), the uncorrected histogram kept beside it."""
    rate: float = 10_000.0
    duration: float = 60.0
    agents: int = 10
    agent_kind: _AgentKind = "native"
    message_size: int = 64
    max_in_flight: int = 100_000
    interval: float = 1.0
    sample_resources: bool = True
    sample_interval: float = 0.1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _positive_number(owner, "rate", self.rate)
        _positive_number(owner, "duration", self.duration)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _AGENT_KINDS)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _int_at_least(owner, "max_in_flight", self.max_in_flight)
        _positive_number(owner, "interval", self.interval)

    @classmethod
    def quick(cls, **changes: Any) -> LatencyConfig:
        """A seconds-long variant (2000/s for 0.5 s, 0.1 s intervals)."""
        return dataclasses.replace(cls(rate=2000.0, duration=0.5, interval=0.1), **changes)


@dataclass(frozen=True)
class CrashRecoveryConfig:
    """The guide's agent crash recovery time: ``messages`` through
    ``agents`` fail-every-n agents (each faults on every ``fail_every``-th
    message it handles, is restarted, and the message is dead-lettered),
    ``window`` in flight at once."""
    messages: int = 100_000
    agents: int = 10
    fail_every: int = 100
    window: int = 100
    message_size: int = 64
    sample_resources: bool = True
    sample_interval: float = 0.1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _int_at_least(owner, "messages", self.messages)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _int_at_least(owner, "fail_every", self.fail_every)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)

    @classmethod
    def quick(cls, **changes: Any) -> CrashRecoveryConfig:
        """A seconds-long variant (5000 messages, a fault every 50th)."""
        return dataclasses.replace(cls(messages=5000, fail_every=50), **changes)


# -- running -----------------------------------------------------------------------------

def _python_echo(message: Any) -> Any:
    return message


def _spawn_echoes(router: Router, kind: str, count: int) -> list[int]:
    if kind == "native":
        return list(router.spawn_native("echo", count=count))
    return list(router.spawn_python(_python_echo, count=count))


class _Run:
    """One guarded run: samples resources around the load call and turns a
    KeyboardInterrupt into a partial result."""

    def __init__(self, sample: bool, interval: float) -> None:
        self.sampler = ResourceSampler(interval) if sample else None
        self.partial = False
        self.notes: list[str] = []
        self.elapsed_ns = 0

    def call(self, load: Callable[[], _C]) -> _C | None:
        result: _C | None = None
        started = time.perf_counter_ns()
        if self.sampler is not None:
            self.sampler.start()
        try:
            result = load()
        except KeyboardInterrupt:
            self.partial = True
            self.notes.append("interrupted (KeyboardInterrupt): figures are what the router "
                              "recorded before the interrupt")
        finally:
            self.elapsed_ns = time.perf_counter_ns() - started
            if self.sampler is not None:
                self.sampler.stop()
        return result

    @property
    def resources(self) -> ResourceProfile | None:
        return self.sampler.profile if self.sampler is not None else None


def _graded(name: str, value: float, unit: str, thresholds: Mapping[str, Threshold],
            by: str | None = None) -> Metric:
    return Metric(name, float(value), unit, grade(thresholds[by or name], value))


def _latency_metrics(h: Histogram, thresholds: Mapping[str, Threshold],
                     notes: list[str], extra: bool = False) -> list[Metric]:
    """p50 and p99 graded as latency_p50/p99 (plus p90, p95, p99.9 and max
    ungraded when ``extra``).  No samples: the graded ones are FAILED."""
    if h.total_count == 0:
        notes.append("no latency was recorded (no request completed): latency is FAILED")
        return [Metric("latency_p50", math.nan, "ns", Grade.FAILED),
                Metric("latency_p99", math.nan, "ns", Grade.FAILED)]
    out = [_graded("latency_p50", h.value_at_percentile(50), "ns", thresholds),
           _graded("latency_p99", h.value_at_percentile(99), "ns", thresholds)]
    if extra:
        p90, p95, p999 = h.percentiles([90, 95, 99.9])
        out += [Metric("latency_p90", float(p90), "ns"), Metric("latency_p95", float(p95), "ns"),
                Metric("latency_p99_9", float(p999), "ns"), Metric("latency_max", float(h.max), "ns")]
    return out


def _check_conservation(router: Router, notes: list[str]) -> None:
    c = router.counts
    if c.sent != c.delivered + c.dead_lettered + c.rejected + c.in_flight:
        notes.append(f"router counts not conserved: sent {c.sent} != delivered {c.delivered} "
                     f"+ dead_lettered {c.dead_lettered} + rejected {c.rejected} "
                     f"+ in_flight {c.in_flight}")


def _closed_loop_rates(res: LoadResult | None, router: Router, run: _Run,
                       requests: int) -> tuple[float, int, int]:
    """(completed per second, completed, failed); from the router's counts
    over the measured wall time when the loop's result was lost."""
    if res is not None:
        return res.completed_per_second, res.completed, res.failed
    completed = router.round_trip.total_count
    failed = router.counts.dead_lettered + router.counts.rejected
    rate = completed / (run.elapsed_ns / 1e9) if run.elapsed_ns > 0 else 0.0
    run.notes.append(f"{completed + failed} of {requests} requests ended before the interrupt")
    return rate, completed, failed


def run_message_throughput(config: MessageThroughputConfig | None = None, *,
                           thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Message throughput.  Metrics: ``throughput`` (completed round trips
    per second, graded as throughput), ``messages_per_second`` (requests and
    replies, ungraded), ``latency_p50``/``latency_p99`` of the router's
    round trip (graded)."""
    config = config or MessageThroughputConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    echoes = _spawn_echoes(router, config.agent_kind, config.agents)
    content = b"x" * config.message_size
    run = _Run(config.sample_resources, config.sample_interval)
    res = run.call(lambda: closed_loop(router, echoes, config.messages,
                                       window=config.window, content=content))
    rate, completed, failed = _closed_loop_rates(res, router, run, config.messages)
    metrics = [_graded("throughput", rate, "msg/s", limits),
               Metric("messages_per_second",
                      res.messages_per_second if res is not None else 2 * rate, "msg/s"),
               Metric("completed", completed, "messages"), Metric("failed", failed, "messages")]
    metrics += _latency_metrics(router.round_trip, limits, run.notes)
    _check_conservation(router, run.notes)
    return ScenarioResult(
        "message_throughput", dataclasses.asdict(config), tuple(metrics),
        {"round_trip": router.round_trip.encode(),
         "queue_time": router.queue_time.encode(),
         "handling_time": router.handling_time.encode()},
        (), run.resources, run.partial, tuple(run.notes))


def run_task_processing(config: TaskProcessingConfig | None = None, *,
                        thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Task processing.  Metrics: ``throughput`` (tasks completed per
    second, unit "tasks/s", graded by the throughput threshold: a task is
    one request and its reply), ``latency_p50``/``latency_p99`` of a task's
    round trip (graded)."""
    config = config or TaskProcessingConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    pool = list(router.spawn_native("compute", count=config.agents, units=config.units))
    content = b"t" * config.message_size
    run = _Run(config.sample_resources, config.sample_interval)
    res = run.call(lambda: closed_loop(router, pool, config.tasks, window=config.window,
                                       content=content))
    rate, completed, failed = _closed_loop_rates(res, router, run, config.tasks)
    metrics = [_graded("throughput", rate, "tasks/s", limits),
               Metric("completed", completed, "tasks"), Metric("failed", failed, "tasks")]
    metrics += _latency_metrics(router.round_trip, limits, run.notes)
    _check_conservation(router, run.notes)
    return ScenarioResult(
        "task_processing", dataclasses.asdict(config), tuple(metrics),
        {"round_trip": router.round_trip.encode(),
         "queue_time": router.queue_time.encode(),
         "handling_time": router.handling_time.encode()},
        (), run.resources, run.partial, tuple(run.notes))


def run_latency(config: LatencyConfig | None = None, *,
                thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """End-to-end latency percentiles from an open loop.  Metrics:
    ``latency_p50``/``latency_p99`` (graded), ``latency_p90``, ``_p95``,
    ``_p99_9``, ``_max`` (ungraded), all corrected for coordinated omission;
    ``achieved_rate``, ``dropped`` (requests due while ``max_in_flight``
    were outstanding), ``failed``.  Histograms: ``latency`` (corrected),
    ``latency_uncorrected``, ``send_jitter``."""
    config = config or LatencyConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    echoes = _spawn_echoes(router, config.agent_kind, config.agents)
    content = b"x" * config.message_size
    run = _Run(config.sample_resources, config.sample_interval)
    res: OpenLoopResult | None = run.call(lambda: open_loop(
        router, echoes, [(config.rate, config.duration)], max_in_flight=config.max_in_flight,
        content=content, interval=config.interval))
    histograms: dict[str, str]
    intervals: tuple[Interval, ...] = ()
    if res is not None:
        if res.interrupted:
            run.partial = True
            run.notes.append("the open loop was interrupted: the result is partial")
        latency = res.latency
        histograms = {"latency": latency.encode(),
                      "latency_uncorrected": res.latency_uncorrected.encode(),
                      "send_jitter": res.send_jitter.encode()}
        intervals = tuple(Interval(iv.start_ns, iv.end_ns, iv.sent, iv.completed, iv.failed,
                                   iv.dropped, iv.latency.encode()) for iv in res.intervals)
        counts = [Metric("achieved_rate", res.achieved_rate, "msg/s"),
                  Metric("requests", res.requests, "requests"),
                  Metric("dropped", res.dropped, "requests"),
                  Metric("failed", res.failed, "requests")]
        if res.dropped:
            run.notes.append(f"{res.dropped} of {res.planned} planned requests were dropped "
                             f"(due while max_in_flight={config.max_in_flight} were outstanding)")
    else:
        latency = router.round_trip
        histograms = {"latency": latency.encode(),
                      "latency_uncorrected": router.round_trip_uncorrected.encode()}
        run.notes.append("intervals and send jitter are lost with the interrupted loop")
        counts = [Metric("requests", latency.total_count, "requests")]
    metrics = _latency_metrics(latency, limits, run.notes, extra=True) + counts
    _check_conservation(router, run.notes)
    return ScenarioResult("latency", dataclasses.asdict(config), tuple(metrics), histograms,
                          intervals, run.resources, run.partial, tuple(run.notes))


def run_crash_recovery(config: CrashRecoveryConfig | None = None, *,
                       thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Agent crash recovery time under a closed loop.  Metrics:
    ``recovery_time_max`` graded as recovery_time (the guide bounds every
    recovery, so the worst one is graded, not a percentile),
    ``recovery_time_p50``/``_p99`` (ungraded), ``recoveries``,
    ``dead_letters`` (should equal the faults), ``completed``, ``failed``,
    and ``throughput`` (ungraded: faults are the point here).  Counts are
    checked for conservation (sent = delivered + dead-lettered + rejected +
    in flight); a violation is noted, not raised."""
    config = config or CrashRecoveryConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    agents = list(router.spawn_native("fail-every-n", count=config.agents,
                                      every=config.fail_every))
    content = b"c" * config.message_size
    run = _Run(config.sample_resources, config.sample_interval)
    res = run.call(lambda: closed_loop(router, agents, config.messages, window=config.window,
                                       content=content))
    rate, completed, failed = _closed_loop_rates(res, router, run, config.messages)
    rec = router.recovery_time
    dead = router.counts.dead_lettered
    faults = sum(router.agent(a).faults for a in agents)
    if rec.total_count == 0:
        run.notes.append("no agent crashed (messages per agent < fail_every): "
                         "recovery time not measured")
        metrics = [Metric("recovery_time_max", math.nan, "ns", None)]
    else:
        p50, p99 = rec.percentiles([50, 99])
        metrics = [_graded("recovery_time_max", rec.max, "ns", limits, by="recovery_time"),
                   Metric("recovery_time_p50", float(p50), "ns"),
                   Metric("recovery_time_p99", float(p99), "ns")]
    metrics += [Metric("recoveries", rec.total_count, "recoveries"),
                Metric("faults", faults, "faults"),
                Metric("dead_letters", dead, "messages"),
                Metric("completed", completed, "messages"),
                Metric("failed", failed, "messages"),
                Metric("throughput", rate, "msg/s")]
    if dead != faults:
        run.notes.append(f"dead letters ({dead}) differ from agent faults ({faults})")
    _check_conservation(router, run.notes)
    return ScenarioResult(
        "crash_recovery", dataclasses.asdict(config), tuple(metrics),
        {"recovery_time": rec.encode(), "round_trip": router.round_trip.encode()},
        (), run.resources, run.partial, tuple(run.notes))


Config = MessageThroughputConfig | TaskProcessingConfig | LatencyConfig | CrashRecoveryConfig

SCENARIOS: dict[str, tuple[type[Any], Callable[..., ScenarioResult]]] = {
    "message_throughput": (MessageThroughputConfig, run_message_throughput),
    "task_processing": (TaskProcessingConfig, run_task_processing),
    "latency": (LatencyConfig, run_latency),
    "crash_recovery": (CrashRecoveryConfig, run_crash_recovery),
}
"""Scenario name -> (config class, run function); each run function takes
a config of its class (default: the guide's full values) and
``thresholds=``."""

