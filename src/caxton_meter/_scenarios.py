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

import contextvars
import dataclasses
import enum
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ._core import Histogram, LoadResult, OpenLoopResult, Router, closed_loop, open_loop
from ._sampling import ResourceProfile, ResourceSampler

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AgentResponseTimeConfig",
    "CpuProfileConfig",
    "MemoryProfileConfig",
    "MemoryTrend",
    "PeakLoadConfig",
    "SustainedLoadConfig",
    "WasmMemoryLimitsConfig",
    "rss_trend",
    "run_agent_response_time",
    "run_cpu_profile",
    "run_memory_profile",
    "run_peak_load",
    "run_sustained_load",
    "run_wasm_memory_limits",
    "SCENARIOS",
    "BurstTrafficConfig",
    "CrashRecoveryConfig",
    "Grade",
    "HorizontalScalingConfig",
    "Interval",
    "LatencyConfig",
    "LoadTestConfig",
    "Metric",
    "MessageThroughputConfig",
    "ScenarioResult",
    "TaskProcessingConfig",
    "Threshold",
    "WasmOverheadConfig",
    "grade",
    "resolve_thresholds",
    "run_burst_traffic",
    "run_crash_recovery",
    "run_horizontal_scaling",
    "run_latency",
    "run_load_test",
    "run_message_throughput",
    "run_task_processing",
    "run_wasm_overhead",
    "run_scenario",
    "scenario_config",
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
    interrupted: bool = False      # Ctrl-C cut it short (partial; a deadline is not this)

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


def _deadline(owner: str, value: object) -> None:
    if value is not None:
        _positive_number(owner, "deadline", value)


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
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
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
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
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
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
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
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
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

def _ids(spawned: Any) -> list[int]:
    """The ids of a spawn: an int for count=1, an iterable of ids otherwise."""
    return [spawned] if isinstance(spawned, int) else list(spawned)


def _spawn_echoes(router: Router, kind: str, count: int, module: Any = None) -> list[int]:
    """``count`` echo agents of ``kind``: "native", "python" (an instance
    each, which can be checkpointed) or "wasm" (of ``module``, by default
    the bundled echo agent)."""
    if kind == "wasm":
        return _ids(router.spawn_wasm(module if module is not None else _wasm_module("echo"),
                                      count=count))
    if kind == "python":
        return _ids(router.spawn_python(_CheckpointableEcho, count=count))
    return _ids(router.spawn_native("echo", count=count))


# The on_interval callback of the open loops run by the current scenario
# (run_scenario's on_interval): live progress without a parameter on every
# run function.
_ON_INTERVAL: contextvars.ContextVar[Callable[[Any], object] | None] = contextvars.ContextVar(
    "caxton_meter_on_interval", default=None)


class _DeadlinePassed(Exception):
    """The scenario's deadline passed between two steps of a run."""


class _Run:
    """One guarded run: samples resources around the load call, passes the
    scenario's deadline to the loops, and turns a KeyboardInterrupt or a
    passed deadline into a partial result."""

    def __init__(self, sample: bool, interval: float, deadline: float | None = None) -> None:
        self.sampler = ResourceSampler(interval) if sample else None
        self.partial = False
        self.notes: list[str] = []
        self.elapsed_ns = 0
        self.deadline = deadline
        self.interrupted = False
        self._ends_at: float | None = None

    def call(self, load: Callable[[], _C]) -> _C | None:
        result: _C | None = None
        started = time.perf_counter_ns()
        if self.deadline is not None:
            self._ends_at = time.monotonic() + self.deadline
        if self.sampler is not None:
            self.sampler.start()
        try:
            result = load()
        except KeyboardInterrupt:
            self.partial = self.interrupted = True
            self.notes.append("interrupted (KeyboardInterrupt): figures are what the router "
                              "recorded before the interrupt")
        except _DeadlinePassed:
            self._deadline_note()
        finally:
            self.elapsed_ns = time.perf_counter_ns() - started
            if self.sampler is not None:
                self.sampler.stop()
        return result

    def _deadline_note(self) -> None:
        if not self.partial:
            self.partial = True
            self.notes.append(f"the deadline ({self.deadline:g} s) was reached: the figures "
                              "cover the part of the run before it")

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline), for a load
        loop's ``deadline=``; raises _DeadlinePassed when none are left."""
        if self._ends_at is None:
            return None
        left = self._ends_at - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed
        return left

    def loop(self, fn: Callable[..., _C], *args: Any, **kwargs: Any) -> _C:
        """``fn(*args, **kwargs, deadline=...)`` for a load loop; a loop the
        deadline or Ctrl-C stopped marks the run partial."""
        watcher = _ON_INTERVAL.get()
        if watcher is not None and fn is open_loop:
            kwargs["on_interval"] = watcher
        res = fn(*args, deadline=self.remaining(), **kwargs)
        if getattr(res, "deadline_reached", False):
            self._deadline_note()
        if getattr(res, "interrupted", False):
            self.interrupted = True
            if not self.partial:
                self.partial = True
                self.notes.append("the load loop was interrupted (Ctrl-C): the result is "
                                  "partial")
        return res

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
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res = run.call(lambda: run.loop(closed_loop, router, echoes, config.messages,
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
        (), run.resources, run.partial, tuple(run.notes), run.interrupted)


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
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res = run.call(lambda: run.loop(closed_loop, router, pool, config.tasks,
                                    window=config.window, content=content))
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
        (), run.resources, run.partial, tuple(run.notes), run.interrupted)


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
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res: OpenLoopResult | None = run.call(lambda: run.loop(open_loop,
        router, echoes, [(config.rate, config.duration)], max_in_flight=config.max_in_flight,
        content=content, interval=config.interval))
    histograms: dict[str, str]
    intervals: tuple[Interval, ...] = ()
    if res is not None:
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
                          intervals, run.resources, run.partial, tuple(run.notes), run.interrupted)


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
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res = run.call(lambda: run.loop(closed_loop, router, agents, config.messages,
                                    window=config.window, content=content))
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
        (), run.resources, run.partial, tuple(run.notes), run.interrupted)




# -- scaling, load, burst and WASM scenarios ---------------------------------------------

_ScaleKind = Literal["native", "python", "wasm"]
_SCALE_KINDS: tuple[str, ...] = ("native", "python", "wasm")


def _non_negative_number(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a number, not {type(value).__name__}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")


def _sample_flags(owner: str, sample_resources: object, sample_interval: object) -> None:
    if not isinstance(sample_resources, bool):
        raise TypeError(f"{owner}: sample_resources must be a bool, "
                        f"not {type(sample_resources).__name__}")
    _positive_number(owner, "sample_interval", sample_interval)


def _wasm_module(name: str) -> Any:
    from . import agents
    from ._core import WasmModule
    return WasmModule(agents.path(name).read_text())


def _memory_now(interval: float) -> ResourceProfile:
    """A momentary memory reading (USS when readable), after a collection."""
    import gc
    gc.collect()
    sampler = ResourceSampler(interval)
    sampler.start()
    return sampler.stop()


@dataclass(frozen=True)
class HorizontalScalingConfig:
    """The guide's horizontal scaling: for each count in ``agent_counts``
    (1, 10, 100, 1000, 10,000; ascending, distinct) spawn that many echo
    agents ("native", "python" or "wasm") in a fresh router and route
    ``messages`` (10,000) through them, ``window`` in flight at once."""
    agent_counts: tuple[int, ...] = (1, 10, 100, 1000, 10_000)
    agent_kind: _ScaleKind = "native"
    messages: int = 10_000
    window: int = 1000
    message_size: int = 64
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        counts = self.agent_counts
        if not isinstance(counts, tuple):
            raise TypeError(f"{owner}: agent_counts must be a tuple of ints, "
                            f"not {type(counts).__name__}")
        if not counts:
            raise ValueError(f"{owner}: agent_counts must not be empty")
        for i, n in enumerate(counts):
            _int_at_least(owner, f"agent_counts[{i}]", n)
        if any(b <= a for a, b in zip(counts, counts[1:])):
            raise ValueError(f"{owner}: agent_counts must be strictly ascending, got {counts!r}")
        _choice(owner, "agent_kind", self.agent_kind, _SCALE_KINDS)
        _int_at_least(owner, "messages", self.messages)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _sample_flags(owner, self.sample_resources, self.sample_interval)

    @classmethod
    def quick(cls, **changes: Any) -> HorizontalScalingConfig:
        """A seconds-long variant (1, 10 and 100 agents, 500 messages each)."""
        return dataclasses.replace(cls(agent_counts=(1, 10, 100), messages=500, window=100),
                                   **changes)


def run_horizontal_scaling(config: HorizontalScalingConfig | None = None, *,
                           thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Horizontal scaling.  For each point N (a fresh router each):

    * ``spawn_time@N``: the slowest spawn (the router's spawn-time
      histogram's max), graded as spawn_time: the guide bounds every spawn,
      so the worst is graded, not a percentile; ``spawn_time_p99@N``
      ungraded beside it;
    * ``memory_per_agent@N``: (memory after spawning - before) / N, by
      :func:`memory_per_agent` (USS when readable, else RSS), graded as
      memory_per_agent.  At small N this is dominated by allocator
      granularity (a page or arena may or may not be taken): read the
      large points.  May be negative (reported as is).  For "wasm" the
      module is compiled once before the first reading, so its compile is
      not charged to the agents (the first instance's engine set-up is);
    * ``throughput@N``: completed round trips per second of a closed loop
      of ``messages`` over the N agents (round robin), graded as throughput;
    * ``completed@N``, ``failed@N``.

    Histograms ``spawn_time@N`` and ``round_trip@N``.  An interrupt keeps
    the points finished before it (partial)."""
    from ._sampling import memory_per_agent
    config = config or HorizontalScalingConfig()
    limits = resolve_thresholds(thresholds)
    content = b"x" * config.message_size
    metrics: list[Metric] = []
    histograms: dict[str, str] = {}
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    done: list[int] = []
    # compiled once, before the first reading: the one-time compile is not per agent
    module = _wasm_module("echo") if config.agent_kind == "wasm" else None

    def points() -> None:
        for n in config.agent_counts:
            run.remaining()               # raises once the deadline has passed
            router = Router(keep_replies=False)
            before = _memory_now(config.sample_interval)
            agents = _spawn_echoes(router, config.agent_kind, n, module)
            after = _memory_now(config.sample_interval)
            spawn = router.spawn_time
            res = run.loop(closed_loop, router, agents, config.messages,
                           window=config.window, content=content)
            metrics.extend([
                _graded(f"spawn_time@{n}", spawn.max, "ns", limits, by="spawn_time"),
                Metric(f"spawn_time_p99@{n}", spawn.value_at_percentile(99), "ns"),
                _graded(f"memory_per_agent@{n}", memory_per_agent(before, after, n), "bytes",
                        limits, by="memory_per_agent"),
                _graded(f"throughput@{n}", res.completed_per_second, "msg/s", limits,
                        by="throughput"),
                Metric(f"completed@{n}", res.completed, "messages"),
                Metric(f"failed@{n}", res.failed, "messages")])
            histograms[f"spawn_time@{n}"] = spawn.encode()
            histograms[f"round_trip@{n}"] = router.round_trip.encode()
            _check_conservation(router, run.notes)
            run.remaining()               # a point the deadline cut short is left out
            done.append(n)
            del agents, router

    run.call(points)
    if run.partial:
        run.notes.append(f"points finished before the stop: {done}")
        # drop the half-recorded metrics of an interrupted point
        keep = {f"@{n}" for n in done}
        metrics[:] = [m for m in metrics if m.name[m.name.index("@"):] in keep]
        histograms = {k: v for k, v in histograms.items() if k[k.index("@"):] in keep}
    return ScenarioResult("horizontal_scaling", dataclasses.asdict(config), tuple(metrics),
                          histograms, (), run.resources, run.partial, tuple(run.notes),
                          run.interrupted)


def _intervals(res: OpenLoopResult) -> tuple[Interval, ...]:
    return tuple(Interval(iv.start_ns, iv.end_ns, iv.sent, iv.completed, iv.failed,
                          iv.dropped, iv.latency.encode()) for iv in res.intervals)


def _open_loop_counts(res: OpenLoopResult, run: _Run, max_in_flight: int) -> list[Metric]:
    if res.dropped:
        run.notes.append(f"{res.dropped} of {res.planned} planned requests were dropped "
                         f"(due while max_in_flight={max_in_flight} were outstanding)")
    if res.errors:
        run.notes.append("errors: " + ", ".join(f"{k}={v}" for k, v in sorted(res.errors.items())))
    return [Metric("achieved_rate", res.achieved_rate, "msg/s"),
            Metric("intended_rate", res.intended_rate, "msg/s"),
            Metric("requests", res.requests, "requests"),
            Metric("completed", res.completed, "requests"),
            Metric("failed", res.failed, "requests"),
            Metric("dropped", res.dropped, "requests")]


def _open_loop_histograms(res: OpenLoopResult) -> dict[str, str]:
    return {"latency": res.latency.encode(),
            "latency_uncorrected": res.latency_uncorrected.encode(),
            "send_jitter": res.send_jitter.encode()}


def _interrupted_open_loop(router: Router, run: _Run) -> tuple[list[Metric], dict[str, str]]:
    run.notes.append("intervals and send jitter are lost with the interrupted loop")
    latency = router.round_trip
    return ([Metric("requests", latency.total_count, "requests")],
            {"latency": latency.encode(),
             "latency_uncorrected": router.round_trip_uncorrected.encode()})


@dataclass(frozen=True)
class LoadTestConfig:
    """A load test: an open loop over ``agents`` echo agents ramping
    linearly from 0 to ``rate`` requests/s over ``ramp_up`` seconds, then
    holding ``rate`` for ``duration`` seconds; statistics every ``interval``
    seconds.  Full values: 10,000/s, 60 s ramp-up, 300 s hold (the guide's
    figures are not in this repository: these are the defaults chosen)."""
    rate: float = 10_000.0
    duration: float = 300.0
    ramp_up: float = 60.0
    agents: int = 10
    agent_kind: _AgentKind = "native"
    message_size: int = 64
    max_in_flight: int = 100_000
    interval: float = 1.0
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _positive_number(owner, "rate", self.rate)
        _positive_number(owner, "duration", self.duration)
        _non_negative_number(owner, "ramp_up", self.ramp_up)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _AGENT_KINDS)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _int_at_least(owner, "max_in_flight", self.max_in_flight)
        _positive_number(owner, "interval", self.interval)

    @classmethod
    def quick(cls, **changes: Any) -> LoadTestConfig:
        """A seconds-long variant (to 2000/s over 0.2 s, held 0.4 s, 0.1 s intervals)."""
        return dataclasses.replace(cls(rate=2000.0, ramp_up=0.2, duration=0.4, interval=0.1),
                                   **changes)


def run_load_test(config: LoadTestConfig | None = None, *,
                  thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Load test.  Metrics: ``latency_p50``/``latency_p99`` over the whole
    run, ramp included (graded; corrected for coordinated omission),
    ``latency_p90``/``_p95``/``_p99_9``/``_max``; ``achieved_rate``,
    ``intended_rate``, ``requests``, ``completed``, ``failed`` (errors),
    ``dropped``.  ``intervals``: each interval's sent, completed, failed,
    dropped and latency.  Histograms: ``latency``, ``latency_uncorrected``,
    ``send_jitter``."""
    config = config or LoadTestConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    echoes = _spawn_echoes(router, config.agent_kind, config.agents)
    content = b"x" * config.message_size
    stages = [(config.rate, config.ramp_up), (config.rate, config.duration)]
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res: OpenLoopResult | None = run.call(lambda: run.loop(open_loop,
        router, echoes, stages, start_rate=0.0, max_in_flight=config.max_in_flight,
        content=content, interval=config.interval))
    intervals: tuple[Interval, ...] = ()
    if res is not None:
        counts = _open_loop_counts(res, run, config.max_in_flight)
        histograms = _open_loop_histograms(res)
        intervals = _intervals(res)
        latency = res.latency
    else:
        counts, histograms = _interrupted_open_loop(router, run)
        latency = router.round_trip
    metrics = _latency_metrics(latency, limits, run.notes, extra=True) + counts
    _check_conservation(router, run.notes)
    return ScenarioResult("load_test", dataclasses.asdict(config), tuple(metrics), histograms,
                          intervals, run.resources, run.partial, tuple(run.notes), run.interrupted)


@dataclass(frozen=True)
class BurstTrafficConfig:
    """The guide's burst traffic: an open loop over ``agents`` echo agents
    at ``baseline_rate`` (1000/s) for ``before`` seconds, jumping to
    ``burst_rate`` (50,000/s) for ``burst_duration`` (10 s), then back to
    the baseline for ``after`` seconds (300 s: long enough to grade a
    recovery up to the critical bound).  ``recovery_factor`` (1.5) is the
    tolerance of "back at baseline"; see :func:`run_burst_traffic`."""
    baseline_rate: float = 1000.0
    burst_rate: float = 50_000.0
    burst_duration: float = 10.0
    before: float = 30.0
    after: float = 300.0
    recovery_factor: float = 1.5
    agents: int = 10
    agent_kind: _AgentKind = "native"
    message_size: int = 64
    max_in_flight: int = 100_000
    interval: float = 1.0
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _positive_number(owner, "baseline_rate", self.baseline_rate)
        _positive_number(owner, "burst_rate", self.burst_rate)
        _positive_number(owner, "burst_duration", self.burst_duration)
        _positive_number(owner, "before", self.before)
        _positive_number(owner, "after", self.after)
        _positive_number(owner, "recovery_factor", self.recovery_factor)
        if self.recovery_factor < 1:
            raise ValueError(f"{owner}: recovery_factor must be >= 1, got {self.recovery_factor!r}")
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _AGENT_KINDS)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _int_at_least(owner, "max_in_flight", self.max_in_flight)
        _positive_number(owner, "interval", self.interval)
        if self.before < self.interval:
            raise ValueError(f"{owner}: before ({self.before!r} s) must be at least one interval "
                             f"({self.interval!r} s): the baseline needs a whole interval")

    @classmethod
    def quick(cls, **changes: Any) -> BurstTrafficConfig:
        """A seconds-long variant (500/s, a 5000/s burst for 0.3 s, 0.5 s
        before and after, 0.1 s intervals)."""
        return dataclasses.replace(cls(baseline_rate=500.0, burst_rate=5000.0,
                                       burst_duration=0.3, before=0.5, after=0.5,
                                       interval=0.1), **changes)


def _p99(hs: list[Histogram]) -> float | None:
    if not hs:
        return None
    total = hs[0].copy()
    for h in hs[1:]:
        total.add(h)
    return float(total.value_at_percentile(99)) if total.total_count else None


def run_burst_traffic(config: BurstTrafficConfig | None = None, *,
                      thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Burst traffic and recovery.  Stages: the baseline for ``before`` s,
    a 0-duration jump to the burst rate, held ``burst_duration`` s, a jump
    back, the baseline for ``after`` s.

    Recovery.  The baseline p99 is the p99 of all intervals that end by
    the burst's start (merged; within the same 1 % slack).  The recovery time is measured from the
    burst's end to the end of the first interval that starts at or after
    it (within 1 % of an interval: their boundaries wobble by
    microseconds), has completions, and whose p99 is at most ``recovery_factor`` x the
    baseline p99 (an interval's p99 is known only at its end, so the
    figure is rounded up to interval ends: its resolution is ``interval``).
    ``recovery_time`` is graded as recovery_time.  If no interval recovers
    within the run, ``recovery_time`` is the time from the burst's end to
    the run's end (a lower bound), ``recovered`` is 0, a note says so, and
    the grade is FAILED only when that lower bound is already beyond the
    critical bound; otherwise it is ungraded (the run was too short to
    tell).

    Other metrics (ungraded): ``recovered`` (1/0), ``baseline_latency_p99``,
    ``burst_latency_p99`` (intervals overlapping the burst),
    ``latency_p50``/``latency_p99``/... of the whole run, and the open
    loop's counts.  ``intervals`` as in the load test."""
    config = config or BurstTrafficConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    echoes = _spawn_echoes(router, config.agent_kind, config.agents)
    content = b"x" * config.message_size
    base, burst = config.baseline_rate, config.burst_rate
    stages = [(base, config.before), (burst, 0.0), (burst, config.burst_duration),
              (base, 0.0), (base, config.after)]
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res: OpenLoopResult | None = run.call(lambda: run.loop(open_loop,
        router, echoes, stages, start_rate=base, max_in_flight=config.max_in_flight,
        content=content, interval=config.interval))
    metrics: list[Metric] = []
    intervals: tuple[Interval, ...] = ()
    if res is None:
        counts, histograms = _interrupted_open_loop(router, run)
        run.notes.append("recovery time not measured: the intervals are lost")
        latency = router.round_trip
    else:
        counts = _open_loop_counts(res, run, config.max_in_flight)
        histograms = _open_loop_histograms(res)
        intervals = _intervals(res)
        latency = res.latency
        metrics += _recovery_metrics(res, config, limits, run.notes)
    all_latency = [Metric(m.name, m.value, m.unit)        # graded only as recovery here
                   for m in _latency_metrics(latency, limits, run.notes, extra=True)]
    metrics += all_latency + counts
    _check_conservation(router, run.notes)
    return ScenarioResult("burst_traffic", dataclasses.asdict(config), tuple(metrics),
                          histograms, intervals, run.resources, run.partial, tuple(run.notes),
                          run.interrupted)


def _recovery_metrics(res: OpenLoopResult, config: BurstTrafficConfig,
                      limits: Mapping[str, Threshold], notes: list[str]) -> list[Metric]:
    ivs = res.intervals
    if not ivs:
        notes.append("no intervals: recovery time not measured")
        return []
    t0 = ivs[0].start_ns
    burst_start = t0 + round(config.before * _S)
    burst_end = burst_start + round(config.burst_duration * _S)
    run_end = ivs[-1].end_ns
    slack = round(config.interval * _S / 100)     # interval ends wobble by microseconds
    baseline = _p99([iv.latency for iv in ivs if iv.end_ns <= burst_start + slack])
    during = _p99([iv.latency for iv in ivs if iv.start_ns < burst_end and iv.end_ns > burst_start])
    out: list[Metric] = []
    if during is not None:
        out.append(Metric("burst_latency_p99", during, "ns"))
    if baseline is None:
        notes.append("no latency before the burst: no baseline, recovery time not measured")
        return out
    out.append(Metric("baseline_latency_p99", baseline, "ns"))
    bound = config.recovery_factor * baseline
    for iv in ivs:
        if iv.start_ns >= burst_end - slack and iv.latency.total_count \
                and iv.latency.value_at_percentile(99) <= bound:
            out += [_graded("recovery_time", iv.end_ns - burst_end, "ns", limits),
                    Metric("recovered", 1, "bool")]
            return out
    remainder = max(run_end - burst_end, 0)
    threshold = limits["recovery_time"]
    failed = grade(threshold, remainder) is Grade.FAILED
    notes.append(f"latency did not recover (p99 <= {config.recovery_factor:g} x the baseline "
                 f"{baseline:.0f} ns) within the {remainder / 1e9:.3g} s after the burst: "
                 "recovery_time is that remainder, a lower bound"
                 + ("" if failed else ", left ungraded (the run is too short to grade it)"))
    out += [Metric("recovery_time", remainder, "ns", Grade.FAILED if failed else None),
            Metric("recovered", 0, "bool")]
    return out


@dataclass(frozen=True)
class WasmOverheadConfig:
    """WASM execution overhead: the bundled WASM compute agent against the
    native compute agent on the same work (same messages, same ``units``),
    ``agents`` of each kind, ``messages`` per measurement, ``window`` in
    flight.  Measured at units=0 (the call alone: echo-like) and at
    ``heavy_units`` (compute-bound).  The guide gives no figures for this
    scenario: these defaults are chosen (10,000 messages, 100,000 units)."""
    messages: int = 10_000
    heavy_units: int = 100_000
    agents: int = 1
    window: int = 100
    message_size: int = 64
    check_messages: int = 8
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _int_at_least(owner, "messages", self.messages)
        _int_at_least(owner, "heavy_units", self.heavy_units)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _int_at_least(owner, "check_messages", self.check_messages)

    @classmethod
    def quick(cls, **changes: Any) -> WasmOverheadConfig:
        """A seconds-long variant (1000 messages; heavy_units 5000)."""
        return dataclasses.replace(cls(messages=1000, heavy_units=5000), **changes)


def _spawn_compute(router: Router, kind: str, count: int, units: int, module: Any) -> list[int]:
    if kind == "wasm":
        return _ids(router.spawn_wasm(module, count=count, units=units))
    return _ids(router.spawn_native("compute", count=count, units=units))


def run_wasm_overhead(config: WasmOverheadConfig | None = None, *,
                      thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """WASM execution overhead (no row of the targets table applies:
    nothing is graded; ``thresholds`` is still validated).

    For units in (0, ``heavy_units``) and each kind, a fresh router:
    first ``check_messages`` requests (distinct 8-byte prefixes, on a
    router of their own) whose replies must equal :func:`compute_reference` (a mismatch is noted and
    ``mismatches`` counts it: the comparison is void then), then a closed
    loop of ``messages``.  Time per message = the loop's elapsed time /
    completed.  Metrics: ``native_ns@U``, ``wasm_ns@U`` (per message),
    ``call_overhead_ns`` = wasm_ns@0 - native_ns@0 (the per-call cost of
    entering WASM, routing being equal; may be negative within noise),
    ``compute_ratio`` = wasm_ns@heavy / native_ns@heavy (the
    compute-bound slowdown), ``handling_p50_native@U``/``_wasm@U`` (the
    router's per-message handling time, without the loop's overhead), and
    ``mismatches``.  Histograms ``handling_time_<kind>@U``."""
    from ._core import compute_reference
    config = config or WasmOverheadConfig()
    resolve_thresholds(thresholds)
    module = _wasm_module("compute")
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    per_msg: dict[tuple[str, int], float] = {}
    metrics: list[Metric] = []
    histograms: dict[str, str] = {}
    mismatches = 0

    def measure() -> None:
        nonlocal mismatches
        for units in (0, config.heavy_units):
            for kind in ("native", "wasm"):
                run.remaining()
                checker = Router(keep_replies=True)
                agents = _spawn_compute(checker, kind, config.agents, units, module)
                for i in range(config.check_messages):
                    content = i.to_bytes(8, "little") + b"w" * max(config.message_size - 8, 0)
                    reply = checker.request(agents[i % len(agents)], content)
                    if reply is None or bytes(reply.content) != compute_reference(content, units):
                        mismatches += 1
                        run.notes.append(f"{kind} compute agent at units={units}: reply to "
                                         f"check message {i} differs from compute_reference")
                del checker
                router = Router(keep_replies=False)
                agents = _spawn_compute(router, kind, config.agents, units, module)
                res = run.loop(closed_loop, router, agents, config.messages,
                               window=config.window, content=b"w" * config.message_size)
                ns = res.elapsed_ns / res.completed if res.completed else math.nan
                per_msg[kind, units] = ns
                if res.failed:
                    run.notes.append(f"{kind} at units={units}: {res.failed} requests failed")
                handling = router.handling_time
                metrics.append(Metric(f"{kind}_ns@{units}", ns, "ns"))
                metrics.append(Metric(f"handling_p50_{kind}@{units}",
                                      handling.value_at_percentile(50), "ns"))
                histograms[f"handling_time_{kind}@{units}"] = handling.encode()

    run.call(measure)
    if (("wasm", 0) in per_msg) and (("native", 0) in per_msg):
        metrics.append(Metric("call_overhead_ns", per_msg["wasm", 0] - per_msg["native", 0], "ns"))
    heavy = config.heavy_units
    if ("wasm", heavy) in per_msg and ("native", heavy) in per_msg:
        metrics.append(Metric("compute_ratio", per_msg["wasm", heavy] / per_msg["native", heavy],
                              "ratio"))
    metrics.append(Metric("mismatches", mismatches, "messages"))
    return ScenarioResult("wasm_overhead", dataclasses.asdict(config), tuple(metrics),
                          histograms, (), run.resources, run.partial, tuple(run.notes),
                          run.interrupted)





# -- agent response time, memory, CPU, WASM memory limits, sustained and peak load --------

class _CheckpointableEcho:
    """A Python echo agent whose state (a message counter) can be checkpointed."""

    def __init__(self) -> None:
        self.handled = 0

    def handle(self, message: Any) -> Any:
        self.handled += 1
        return message

    def checkpoint(self) -> bytes:
        return self.handled.to_bytes(8, "little")

    def restore(self, state: bytes) -> None:
        self.handled = int.from_bytes(state, "little")


@dataclass(frozen=True)
class AgentResponseTimeConfig:
    """The guide's agent response time: a closed loop of ``messages``
    (10,000) over ``agents`` (10) echo agents of ``agent_kind`` ("native",
    "python" or "wasm"), ``window`` in flight, timed per agent by the
    router (``Router(per_agent_histograms=True)``)."""
    messages: int = 10_000
    agents: int = 10
    agent_kind: _ScaleKind = "native"
    window: int = 100
    message_size: int = 64
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _int_at_least(owner, "messages", self.messages)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _SCALE_KINDS)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)

    @classmethod
    def quick(cls, **changes: Any) -> AgentResponseTimeConfig:
        """A seconds-long variant (1000 messages)."""
        return dataclasses.replace(cls(messages=1000), **changes)


def run_agent_response_time(config: AgentResponseTimeConfig | None = None, *,
                            thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Agent response time.  An agent's response time is its handling time
    (from the start to the end of its handler, as the router times it);
    the time a message waited in the agent's mailbox is its queue time,
    reported beside it (the router keeps the two as separate histograms per
    agent, so their per-message sum is not available).

    Over the agents that handled a message: ``response_p99_worst`` (the
    largest per-agent handling p99, graded as latency_p99),
    ``response_p99_median`` (the median agent's p99), ``response_p50_median``,
    ``queue_p99_worst``, ``queue_p99_median``; ``agents_measured``,
    ``completed``, ``failed``, ``throughput`` (ungraded).  Histograms:
    ``handling_time``, ``queue_time`` (all agents) and
    ``handling_time_worst`` (the worst agent's)."""
    config = config or AgentResponseTimeConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False, per_agent_histograms=True)
    agents = _spawn_echoes(router, config.agent_kind, config.agents)
    content = b"x" * config.message_size
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res = run.call(lambda: run.loop(closed_loop, router, agents, config.messages,
                                    window=config.window, content=content))
    rate, completed, failed = _closed_loop_rates(res, router, run, config.messages)
    per_agent: list[tuple[int, Histogram, Histogram]] = []
    for aid in agents:
        queue, handling = router.agent_histograms(aid)
        if handling.total_count:
            per_agent.append((aid, queue, handling))
    metrics: list[Metric] = []
    histograms = {"handling_time": router.handling_time.encode(),
                  "queue_time": router.queue_time.encode()}
    if not per_agent:
        run.notes.append("no agent handled a message: response time is FAILED")
        metrics.append(Metric("response_p99_worst", math.nan, "ns", Grade.FAILED))
    else:
        p99s = [float(h.value_at_percentile(99)) for _, _, h in per_agent]
        worst = max(range(len(per_agent)), key=lambda i: p99s[i])
        histograms["handling_time_worst"] = per_agent[worst][2].encode()
        metrics += [
            _graded("response_p99_worst", p99s[worst], "ns", limits, by="latency_p99"),
            Metric("response_p99_median", statistics.median(p99s), "ns"),
            Metric("response_p50_median",
                   statistics.median([float(h.value_at_percentile(50)) for _, _, h in per_agent]), "ns"),
            Metric("queue_p99_worst",
                   max(float(q.value_at_percentile(99)) for _, q, _ in per_agent), "ns"),
            Metric("queue_p99_median",
                   statistics.median([float(q.value_at_percentile(99)) for _, q, _ in per_agent]), "ns"),
            Metric("worst_agent", per_agent[worst][0], "agent id")]
        if len(per_agent) < len(agents):
            run.notes.append(f"{len(agents) - len(per_agent)} of {len(agents)} agents handled "
                             "no message (fewer messages than agents?)")
    metrics += [Metric("agents_measured", len(per_agent), "agents"),
                Metric("completed", completed, "messages"), Metric("failed", failed, "messages"),
                Metric("throughput", rate, "msg/s")]
    _check_conservation(router, run.notes)
    return ScenarioResult("agent_response_time", dataclasses.asdict(config), tuple(metrics),
                          histograms, (), run.resources, run.partial, tuple(run.notes),
                          run.interrupted)


def _rss_now() -> int:
    from ._sampling import _psutil
    return int(_psutil().Process().memory_info().rss)


@dataclass(frozen=True)
class MemoryProfileConfig:
    """The guide's memory profile: spawn ``agents`` (100) echo agents of
    ``agent_kind``, route ``messages`` (1000) through them (``window`` in
    flight), checkpoint every agent."""
    agents: int = 100
    agent_kind: _ScaleKind = "native"
    messages: int = 1000
    window: int = 100
    message_size: int = 64
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _SCALE_KINDS)
        _int_at_least(owner, "messages", self.messages)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)

    @classmethod
    def quick(cls, **changes: Any) -> MemoryProfileConfig:
        """A seconds-long variant (10 agents)."""
        return dataclasses.replace(cls(agents=10), **changes)


def run_memory_profile(config: MemoryProfileConfig | None = None, *,
                       thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Memory profile, in four phases on one router (memory read by
    :func:`memory_per_agent`'s rule: USS when readable, else RSS, after a
    garbage collection):

    * creation: ``memory_per_agent`` = (memory after spawning - before) / N,
      graded as memory_per_agent; ``creation_bytes`` the whole growth;
      for "wasm" the module is compiled before the first reading;
    * processing: a closed loop of ``messages``; ``processing_rss_growth``
      = RSS after - RSS before the loop (bytes; may be negative);
    * checkpoint: every agent checkpointed (the checkpoints kept);
      ``checkpoint_bytes`` (sum of the states' sizes),
      ``checkpoint_time_mean``/``_max`` (ns per checkpoint, the router's
      timing), ``checkpoint_memory`` (memory growth holding them);
    * ``total_bytes``: memory at the end - memory before spawning.

    Negative differences are reported as is (the allocator may return
    memory).  Histogram: ``round_trip``."""
    from ._sampling import memory_per_agent
    config = config or MemoryProfileConfig()
    limits = resolve_thresholds(thresholds)
    n = config.agents
    content = b"x" * config.message_size
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    metrics: list[Metric] = []
    router = Router(keep_replies=False)
    if config.agent_kind == "wasm":
        _wasm_module("echo")              # engine set-up before the first reading

    def phases() -> None:
        start = _memory_now(config.sample_interval)
        agents = _spawn_echoes(router, config.agent_kind, n)
        spawned = _memory_now(config.sample_interval)
        metrics.extend([
            _graded("memory_per_agent", memory_per_agent(start, spawned, n), "bytes", limits),
            Metric("creation_bytes", memory_per_agent(start, spawned, 1), "bytes")])
        run.remaining()
        rss0 = _rss_now()
        res = run.loop(closed_loop, router, agents, config.messages, window=config.window,
                       content=content)
        metrics.extend([Metric("processing_rss_growth", _rss_now() - rss0, "bytes"),
                        Metric("completed", res.completed, "messages"),
                        Metric("failed", res.failed, "messages")])
        run.remaining()
        before_cp = _memory_now(config.sample_interval)
        checkpoints = [router.checkpoint(a) for a in agents]
        after_cp = _memory_now(config.sample_interval)
        times = [c.elapsed_ns for c in checkpoints]
        metrics.extend([
            Metric("checkpoint_bytes", sum(c.size for c in checkpoints), "bytes"),
            Metric("checkpoint_time_mean", sum(times) / len(times), "ns"),
            Metric("checkpoint_time_max", max(times), "ns"),
            Metric("checkpoint_memory", memory_per_agent(before_cp, after_cp, 1), "bytes"),
            Metric("total_bytes", memory_per_agent(start, after_cp, 1), "bytes")])
        del checkpoints

    run.call(phases)
    if run.partial:
        run.notes.append("the phases finished before the stop are reported")
    _check_conservation(router, run.notes)
    return ScenarioResult("memory_profile", dataclasses.asdict(config), tuple(metrics),
                          {"round_trip": router.round_trip.encode()}, (), run.resources,
                          run.partial, tuple(run.notes), run.interrupted)


@dataclass(frozen=True)
class CpuProfileConfig:
    """The guide's CPU profile: ``agents`` (100) echo agents of
    ``agent_kind``; CPU % while spawning them, over ``idle`` seconds (1 s)
    with nothing to do, and during a closed loop of ``messages``
    (100,000; ``window`` in flight).  Each phase has its own sampler at
    ``sample_interval``."""
    agents: int = 100
    agent_kind: _ScaleKind = "native"
    idle: float = 1.0
    messages: int = 100_000
    window: int = 100
    message_size: int = 64
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _int_at_least(owner, "agents", self.agents)
        _choice(owner, "agent_kind", self.agent_kind, _SCALE_KINDS)
        _positive_number(owner, "idle", self.idle)
        _int_at_least(owner, "messages", self.messages)
        _int_at_least(owner, "window", self.window)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _positive_number(owner, "sample_interval", self.sample_interval)

    @classmethod
    def quick(cls, **changes: Any) -> CpuProfileConfig:
        """A seconds-long variant (10 agents, 0.2 s idle, 200,000 messages,
        50 ms samples)."""
        return dataclasses.replace(cls(agents=10, idle=0.2, messages=200_000,
                                       sample_interval=0.05), **changes)


def run_cpu_profile(config: CpuProfileConfig | None = None, *,
                    thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """CPU profile.  Metrics (CPU % of the process, 100 % = one core, the
    mean over each phase from its cumulative CPU times): ``cpu_spawning``,
    ``cpu_idle``, ``cpu_processing``; ``cpu_per_agent`` = cpu_processing /
    N (:func:`cpu_per_agent`), graded as cpu_per_agent; ``spawn_seconds``,
    ``throughput`` (ungraded).  The figures include the load generator and
    the router (one process).  A phase too short for a CPU reading is left
    out with a note.  ``resources`` is the processing phase's profile.
    Histogram: ``round_trip``."""
    from ._sampling import cpu_per_agent
    config = config or CpuProfileConfig()
    limits = resolve_thresholds(thresholds)
    n = config.agents
    router = Router(keep_replies=False)
    if config.agent_kind == "wasm":
        _wasm_module("echo")
    metrics: list[Metric] = []
    run = _Run(False, config.sample_interval, config.deadline)
    processing: ResourceProfile | None = None

    def phase(name: str, work: Callable[[], _C]) -> tuple[_C | None, ResourceProfile]:
        run.remaining()
        sampler = ResourceSampler(config.sample_interval)
        sampler.start()
        try:
            out = work()
        finally:
            prof = sampler.stop()
        if prof.mean_cpu_percent is None:
            run.notes.append(f"{name}: no CPU reading (the phase was too short)")
        else:
            metrics.append(Metric(f"cpu_{name}", prof.mean_cpu_percent, "percent"))
        return out, prof

    def idle() -> None:
        left = run.remaining()
        time.sleep(config.idle if left is None else min(config.idle, left))

    def phases() -> None:
        nonlocal processing
        started = time.perf_counter_ns()
        agents, _ = phase("spawning", lambda: _spawn_echoes(router, config.agent_kind, n))
        metrics.append(Metric("spawn_seconds", (time.perf_counter_ns() - started) / 1e9, "s"))
        phase("idle", idle)
        res, processing = phase("processing", lambda: run.loop(
            closed_loop, router, agents or [], config.messages, window=config.window,
            content=b"x" * config.message_size))
        if processing.mean_cpu_percent is not None:
            metrics.append(_graded("cpu_per_agent", cpu_per_agent(processing, n), "percent",
                                   limits))
        if res is not None:
            metrics.append(Metric("throughput", res.completed_per_second, "msg/s"))

    run.call(phases)
    if run.partial:
        run.notes.append("the phases finished before the stop are reported")
    notes, partial = run.notes, run.partial
    _check_conservation(router, notes)
    return ScenarioResult("cpu_profile", dataclasses.asdict(config), tuple(metrics),
                          {"round_trip": router.round_trip.encode()}, (), processing,
                          partial, tuple(notes), run.interrupted)


_PAGE = 65536


@dataclass(frozen=True)
class WasmMemoryLimitsConfig:
    """WASM memory limits: for each limit in ``limits_mb`` (1, 10, 100,
    1000 MB, decimal; ascending, each at least one 64 KiB page and at most
    4 GiB) a bundled alloc agent (``WasmModule(alloc, memory_limit=L)``)
    grows its memory until ``memory.grow`` refuses, then handles
    ``messages`` (100) requests at the limit."""
    limits_mb: tuple[float, ...] = (1, 10, 100, 1000)
    messages: int = 100
    window: int = 10
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        limits = self.limits_mb
        if not isinstance(limits, tuple):
            raise TypeError(f"{owner}: limits_mb must be a tuple of numbers, "
                            f"not {type(limits).__name__}")
        if not limits:
            raise ValueError(f"{owner}: limits_mb must not be empty")
        for i, mb in enumerate(limits):
            _positive_number(owner, f"limits_mb[{i}]", mb)
            if not _PAGE <= round(mb * _MB) <= 1 << 32:
                raise ValueError(f"{owner}: limits_mb[{i}] must be within [0.065536, 4294.967296] "
                                 f"MB (one 64 KiB page to 4 GiB), got {mb!r}")
        if any(b <= a for a, b in zip(limits, limits[1:])):
            raise ValueError(f"{owner}: limits_mb must be strictly ascending, got {limits!r}")
        _int_at_least(owner, "messages", self.messages)
        _int_at_least(owner, "window", self.window)
        _sample_flags(owner, self.sample_resources, self.sample_interval)

    @classmethod
    def quick(cls, **changes: Any) -> WasmMemoryLimitsConfig:
        """A seconds-long variant (1 and 10 MB, 20 messages)."""
        return dataclasses.replace(cls(limits_mb=(1, 10), messages=20), **changes)


def _grow_reply(router: Router, agent: int, pages: int) -> int:
    reply = router.request(agent, pages.to_bytes(4, "little"))
    if reply is None:
        raise RuntimeError(f"the alloc agent gave no reply to a request for {pages} pages")
    return int.from_bytes(bytes(reply.content)[:4], "little", signed=True)


def _fill_memory(router: Router, agent: int) -> tuple[int, int]:
    """Grow the alloc agent's memory as far as it goes: ask for ``step``
    pages, doubling the step after a success and halving it after a
    refusal, until a one-page request is refused.  Returns (pages at the
    end, requests made): O(log(limit)) requests, each page touched once."""
    pages = _grow_reply(router, agent, 0)     # the current size (memory.grow(0))
    step, requests = 1, 1
    while True:
        old = _grow_reply(router, agent, step)
        requests += 1
        if old >= 0:
            pages = old + step
            step *= 2
        elif step == 1:
            return pages, requests
        else:
            step //= 2


def run_wasm_memory_limits(config: WasmMemoryLimitsConfig | None = None, *,
                           thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """WASM memory limits (no row of the targets table applies: nothing is
    graded; ``thresholds`` is still validated).  For each limit L (MB), a
    fresh router and alloc agent (no epoch deadline: touching a GB of pages
    takes longer than the default 100 ms); its memory is grown by
    :func:`_fill_memory`'s doubling/halving search until a single page is
    refused.  Metrics per L:

    * ``max_memory@L``: the agent's memory at the end (bytes, whole pages;
      at most L) -- the largest memory that succeeds;
    * ``largest_allocation@L``: what the agent allocated beyond its initial
      page (bytes);
    * ``fill_seconds@L``, ``fill_requests@L``: the search's cost;
    * ``ns_per_message@L``: a closed loop of ``messages`` 0-page requests
      (memory.grow(0): the call alone) at the limit, per message;
    * ``refused_ns_per_message@L``: the same with 1-page requests, each
      refused (-1) -- performance at the limit;
    * ``fresh_ns_per_message@L``: 0-page requests to a fresh agent of the
      same module, for comparison.

    Histograms ``handling_time@L`` (the filled agent: its fill requests and the at-limit loops).  An interrupt
    keeps the limits finished before it (partial)."""
    from . import agents as bundled
    from ._core import WasmModule
    config = config or WasmMemoryLimitsConfig()
    resolve_thresholds(thresholds)
    source = bundled.path("alloc").read_text()
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    metrics: list[Metric] = []
    histograms: dict[str, str] = {}
    done: list[str] = []

    def loop_ns(router: Router, agent: int, pages: int) -> float:
        res = run.loop(closed_loop, router, [agent], config.messages, window=config.window,
                       content=pages.to_bytes(4, "little"))
        return res.elapsed_ns / res.completed if res.completed else math.nan

    def limits() -> None:
        for mb in config.limits_mb:
            run.remaining()
            key = f"{mb:g}"
            limit = round(mb * _MB)
            module = WasmModule(source, memory_limit=limit, epoch_deadline_ms=None)
            router = Router(keep_replies=True, max_content=64)
            agent = router.spawn_wasm(module)
            initial = _grow_reply(router, agent, 0)
            started = time.perf_counter_ns()
            pages, requests = _fill_memory(router, agent)
            fill = time.perf_counter_ns() - started
            fresh_router = Router(keep_replies=False)
            fresh = fresh_router.spawn_wasm(module)
            metrics.extend([
                Metric(f"max_memory@{key}", pages * _PAGE, "bytes"),
                Metric(f"largest_allocation@{key}", (pages - initial) * _PAGE, "bytes"),
                Metric(f"fill_seconds@{key}", fill / 1e9, "s"),
                Metric(f"fill_requests@{key}", requests, "requests")])
            ns0 = loop_ns(router, agent, 0)
            ns1 = loop_ns(router, agent, 1)
            metrics.extend([
                Metric(f"ns_per_message@{key}", ns0, "ns"),
                Metric(f"refused_ns_per_message@{key}", ns1, "ns"),
                Metric(f"fresh_ns_per_message@{key}", loop_ns(fresh_router, fresh, 0), "ns")])
            histograms[f"handling_time@{key}"] = router.handling_time.encode()
            if pages * _PAGE > limit:
                run.notes.append(f"{key} MB: the agent grew past its limit "
                                 f"({pages * _PAGE} > {limit} bytes)")
            run.remaining()               # a limit the deadline cut short is left out
            done.append(key)
            del router, fresh_router, module

    run.call(limits)
    if run.partial:
        run.notes.append(f"limits finished before the stop: {done}")
        keep = {f"@{k}" for k in done}
        metrics[:] = [m for m in metrics if m.name[m.name.index("@"):] in keep]
        histograms = {k: v for k, v in histograms.items() if k[k.index("@"):] in keep}
    return ScenarioResult("wasm_memory_limits", dataclasses.asdict(config), tuple(metrics),
                          histograms, (), run.resources, run.partial, tuple(run.notes),
                          run.interrupted)


# -- sustained and peak load -------------------------------------------------------------

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
    seconds = sum(iv.end_ns - iv.start_ns for iv in chosen) / 1e9
    rate = sum(iv.completed for iv in chosen) / seconds if seconds > 0 else 0.0
    return _p99([iv.latency for iv in chosen]), rate


@dataclass(frozen=True)
class SustainedLoadConfig:
    """The guide's sustained load: an open loop at ``rate`` (10,000/s) over
    ``agents`` (100) echo agents, ``message_size`` (512 B), for
    ``duration`` (86,400 s: 24 h), statistics every ``interval`` (60 s),
    RSS sampled every ``sample_interval`` (1 s).  ``window_fraction``
    (0.1) of the intervals (at least one) form the first and last windows
    compared for degradation, with ``degradation_limit`` (5 %);
    ``leak_threshold`` (5 %) is :func:`rss_trend`'s growth threshold."""
    rate: float = 10_000.0
    duration: float = 86_400.0
    agents: int = 100
    agent_kind: _AgentKind = "native"
    message_size: int = 512
    max_in_flight: int = 100_000
    interval: float = 60.0
    window_fraction: float = 0.1
    degradation_limit: float = 0.05
    leak_threshold: float = 0.05
    sample_interval: float = 1.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _positive_number(owner, "rate", self.rate)
        _positive_number(owner, "duration", self.duration)
        _int_at_least(owner, "agents", self.agents)
        _choice(owner, "agent_kind", self.agent_kind, _AGENT_KINDS)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _int_at_least(owner, "max_in_flight", self.max_in_flight)
        _positive_number(owner, "interval", self.interval)
        _positive_number(owner, "window_fraction", self.window_fraction)
        if self.window_fraction > 0.5:
            raise ValueError(f"{owner}: window_fraction must be <= 0.5 (the first and last "
                             f"windows must not overlap), got {self.window_fraction!r}")
        _positive_number(owner, "degradation_limit", self.degradation_limit)
        _positive_number(owner, "leak_threshold", self.leak_threshold)
        _positive_number(owner, "sample_interval", self.sample_interval)
        if self.duration < 2 * self.interval:
            raise ValueError(f"{owner}: duration ({self.duration!r} s) must cover at least two "
                             f"intervals ({self.interval!r} s each)")

    @classmethod
    def quick(cls, **changes: Any) -> SustainedLoadConfig:
        """A seconds-long variant (10 agents, 2000/s for 1 s, 0.25 s
        intervals, 20 ms samples, windows of 0.25)."""
        return dataclasses.replace(cls(rate=2000.0, duration=1.0, agents=10, interval=0.25,
                                       window_fraction=0.25, sample_interval=0.02), **changes)


def run_sustained_load(config: SustainedLoadConfig | None = None, *,
                       thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Sustained load.  Metrics: ``latency_p50``/``latency_p99`` of the
    whole run (graded; corrected for coordinated omission) and the other
    percentiles; the open loop's counts.

    Leak: :func:`rss_trend` over the sampler's RSS readings (the start
    reading and every sample) taken after the first ``window_fraction`` of
    ``duration`` (warm-up: histograms, mailboxes and the allocator grow to
    their working size then, which is not a leak).  The RSS is the whole
    process's, so it includes the meter's own per-interval histograms
    (``interval_storage_bytes``: an upper bound, allocated bytes; a note
    when it exceeds ``leak_threshold`` of the starting RSS -- many short
    intervals can then make the meter itself look like a leak).  Metrics:
    ``rss_slope``, ``rss_slope_low`` (bytes/s), ``rss_growth_projected`` (fraction over the run), ``memory_leak``
    (1/0).  Fewer than 3 readings: not tested, noted.

    Degradation between the first and last windows (``window_fraction`` of
    the intervals each, at least one): ``p99_change`` = (last p99 - first
    p99) / first p99, ``throughput_change`` likewise of the completed rate
    (negative is worse), ``degraded`` = 1 when p99 rose by more than
    ``degradation_limit`` or throughput fell by more than it, else 0 (the
    guide's < 5 % target; a note says which).  With few samples per
    interval the p99s are noisy: a short run's verdict means little."""
    config = config or SustainedLoadConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    echoes = _spawn_echoes(router, config.agent_kind, config.agents)
    run = _Run(True, config.sample_interval, config.deadline)
    res: OpenLoopResult | None = run.call(lambda: run.loop(open_loop,
        router, echoes, [(config.rate, config.duration)], max_in_flight=config.max_in_flight,
        content=b"x" * config.message_size, interval=config.interval))
    intervals: tuple[Interval, ...] = ()
    metrics: list[Metric] = []
    if res is None:
        counts, histograms = _interrupted_open_loop(router, run)
        latency = router.round_trip
    else:
        counts = _open_loop_counts(res, run, config.max_in_flight)
        histograms = _open_loop_histograms(res)
        intervals = _intervals(res)
        latency = res.latency
        metrics += _degradation_metrics(res, config, run.notes)
    metrics += _leak_metrics(run.resources, config, run.notes)
    if res is not None and res.intervals and run.resources is not None:
        # the meter's own per-interval histograms grow with the run: say how much
        storage = sum(iv.packed_size for iv in res.intervals)
        metrics.append(Metric("interval_storage_bytes", storage, "bytes"))
        if storage > config.leak_threshold * run.resources.rss_start:
            run.notes.append(f"the meter's own per-interval histograms take up to {storage} "
                             f"bytes ({len(res.intervals)} intervals), more than "
                             f"{config.leak_threshold:.0%} of the starting RSS: part of the RSS "
                             "growth is the meter's; use a longer interval")
    metrics = _latency_metrics(latency, limits, run.notes, extra=True) + metrics + counts
    _check_conservation(router, run.notes)
    return ScenarioResult("sustained_load", dataclasses.asdict(config), tuple(metrics),
                          histograms, intervals, run.resources, run.partial, tuple(run.notes),
                          run.interrupted)


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
    return [Metric("rss_slope", trend.slope, "bytes/s"),
            Metric("rss_slope_low", trend.slope_low, "bytes/s"),
            Metric("rss_growth_projected", trend.projected_growth, "ratio"),
            Metric("memory_leak", int(trend.leak), "bool")]


def _degradation_metrics(res: OpenLoopResult, config: SustainedLoadConfig,
                         notes: list[str]) -> list[Metric]:
    ivs = res.intervals
    if len(ivs) < 2:
        notes.append(f"degradation not measured: {len(ivs)} interval(s)")
        return []
    count = max(1, min(len(ivs) // 2, int(len(ivs) * config.window_fraction)))
    p99_first, rate_first = _window_figures(ivs, True, count)
    p99_last, rate_last = _window_figures(ivs, False, count)
    out: list[Metric] = []
    worse: list[str] = []
    if p99_first and p99_last is not None:
        change = (p99_last - p99_first) / p99_first
        out += [Metric("p99_first_window", p99_first, "ns"),
                Metric("p99_last_window", p99_last, "ns"), Metric("p99_change", change, "ratio")]
        if change > config.degradation_limit:
            worse.append(f"p99 rose {change:.1%}")
    else:
        notes.append("p99 degradation not measured: a window has no completions")
    if rate_first > 0:
        change = (rate_last - rate_first) / rate_first
        out.append(Metric("throughput_change", change, "ratio"))
        if change < -config.degradation_limit:
            worse.append(f"throughput fell {-change:.1%}")
    out.append(Metric("degraded", int(bool(worse)), "bool"))
    notes.append(f"degradation between the first and last {count} interval(s): "
                 + ("; ".join(worse) + f" (limit {config.degradation_limit:.0%})" if worse
                    else f"within {config.degradation_limit:.0%}"))
    return out


@dataclass(frozen=True)
class PeakLoadConfig:
    """The guide's peak load: an open loop at ``rate`` (100,000/s) over
    ``agents`` (1000) echo agents, ``message_size`` (1 KiB), for
    ``duration`` (300 s); success means at least ``min_success_rate``
    (0.99) of the planned requests completed."""
    rate: float = 100_000.0
    duration: float = 300.0
    agents: int = 1000
    agent_kind: _AgentKind = "native"
    message_size: int = 1024
    max_in_flight: int = 100_000
    min_success_rate: float = 0.99
    interval: float = 1.0
    sample_resources: bool = True
    sample_interval: float = 0.1
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _deadline(owner, self.deadline)
        _positive_number(owner, "rate", self.rate)
        _positive_number(owner, "duration", self.duration)
        _common(owner, self.agents, self.sample_resources, self.sample_interval)
        _choice(owner, "agent_kind", self.agent_kind, _AGENT_KINDS)
        _int_at_least(owner, "message_size", self.message_size, 0)
        _int_at_least(owner, "max_in_flight", self.max_in_flight)
        _positive_number(owner, "min_success_rate", self.min_success_rate)
        if self.min_success_rate > 1:
            raise ValueError(f"{owner}: min_success_rate must be in (0, 1], "
                             f"got {self.min_success_rate!r}")
        _positive_number(owner, "interval", self.interval)

    @classmethod
    def quick(cls, **changes: Any) -> PeakLoadConfig:
        """A seconds-long variant (100 agents, 20,000/s for 0.5 s, 0.1 s intervals)."""
        return dataclasses.replace(cls(rate=20_000.0, duration=0.5, agents=100, interval=0.1),
                                   **changes)


def run_peak_load(config: PeakLoadConfig | None = None, *,
                  thresholds: Mapping[str, Threshold] | None = None) -> ScenarioResult:
    """Peak load.  Metrics: ``success_rate`` = completed / planned requests
    (dropped and failed ones count against it), graded TARGET when at least
    ``min_success_rate`` and FAILED otherwise (pass/fail: the targets table
    has no row for it); ``latency_p50``/``latency_p99`` (graded, corrected
    for coordinated omission) and the other percentiles; the open loop's
    counts.  ``intervals`` and histograms as in the load test."""
    config = config or PeakLoadConfig()
    limits = resolve_thresholds(thresholds)
    router = Router(keep_replies=False)
    echoes = _spawn_echoes(router, config.agent_kind, config.agents)
    run = _Run(config.sample_resources, config.sample_interval, config.deadline)
    res: OpenLoopResult | None = run.call(lambda: run.loop(open_loop,
        router, echoes, [(config.rate, config.duration)], max_in_flight=config.max_in_flight,
        content=b"x" * config.message_size, interval=config.interval))
    intervals: tuple[Interval, ...] = ()
    metrics: list[Metric] = []
    if res is None:
        counts, histograms = _interrupted_open_loop(router, run)
        latency = router.round_trip
        run.notes.append("success rate not measured: the planned count is lost")
    else:
        counts = _open_loop_counts(res, run, config.max_in_flight)
        histograms = _open_loop_histograms(res)
        intervals = _intervals(res)
        latency = res.latency
        rate = res.completed / res.planned if res.planned else 0.0
        ok = rate >= config.min_success_rate
        metrics.append(Metric("success_rate", rate, "ratio", Grade.TARGET if ok else Grade.FAILED))
        if not ok:
            run.notes.append(f"success rate {rate:.2%} < {config.min_success_rate:.0%} "
                             f"({res.completed} of {res.planned} planned requests completed)")
    metrics += _latency_metrics(latency, limits, run.notes, extra=True) + counts
    _check_conservation(router, run.notes)
    return ScenarioResult("peak_load", dataclasses.asdict(config), tuple(metrics), histograms,
                          intervals, run.resources, run.partial, tuple(run.notes), run.interrupted)


# -- registry ----------------------------------------------------------------------------

Config = (MessageThroughputConfig | TaskProcessingConfig | LatencyConfig | CrashRecoveryConfig
          | HorizontalScalingConfig | LoadTestConfig | BurstTrafficConfig | WasmOverheadConfig
          | AgentResponseTimeConfig | MemoryProfileConfig | CpuProfileConfig
          | WasmMemoryLimitsConfig | SustainedLoadConfig | PeakLoadConfig)

SCENARIOS: dict[str, tuple[type[Any], Callable[..., ScenarioResult]]] = {
    "message_throughput": (MessageThroughputConfig, run_message_throughput),
    "task_processing": (TaskProcessingConfig, run_task_processing),
    "latency": (LatencyConfig, run_latency),
    "crash_recovery": (CrashRecoveryConfig, run_crash_recovery),
    "horizontal_scaling": (HorizontalScalingConfig, run_horizontal_scaling),
    "load_test": (LoadTestConfig, run_load_test),
    "burst_traffic": (BurstTrafficConfig, run_burst_traffic),
    "wasm_overhead": (WasmOverheadConfig, run_wasm_overhead),
    "agent_response_time": (AgentResponseTimeConfig, run_agent_response_time),
    "memory_profile": (MemoryProfileConfig, run_memory_profile),
    "cpu_profile": (CpuProfileConfig, run_cpu_profile),
    "wasm_memory_limits": (WasmMemoryLimitsConfig, run_wasm_memory_limits),
    "sustained_load": (SustainedLoadConfig, run_sustained_load),
    "peak_load": (PeakLoadConfig, run_peak_load),
}
"""Scenario name -> (config class, run function); each run function takes
a config of its class (default: the guide's full values) and
``thresholds=``."""


def scenario_config(scenario: str | Config, *, quick: bool = False,
                    **changes: Any) -> Config:
    """The config of ``scenario`` (a name of :data:`SCENARIOS` or a config)
    with ``changes`` applied: the guide's full values, or the quick profile
    when ``quick``.  An unknown name or field raises ValueError listing the
    valid ones; a bad value raises as the config does, before anything runs."""
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
        cls = SCENARIOS[scenario][0]
        base = cls.quick() if quick else cls()
    else:
        if not any(isinstance(scenario, cls) for cls, _ in SCENARIOS.values()):
            raise TypeError(f"scenario must be a scenario name or config, "
                            f"not {type(scenario).__name__}")
        base = scenario
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(f"{type(base).__name__} has no field {unknown[0]!r}; "
                         f"fields: {', '.join(sorted(fields))}")
    out: Config = dataclasses.replace(base, **changes) if changes else base
    return out


def run_scenario(scenario: str | Config, *, quick: bool = False,
                 thresholds: Mapping[str, Threshold] | None = None,
                 on_interval: Callable[[Any], object] | None = None,
                 **changes: Any) -> ScenarioResult:
    """Run ``scenario`` (a name of :data:`SCENARIOS` or a config), with
    ``changes`` to its config (:func:`scenario_config`), graded against the
    guide's targets overridden by ``thresholds``.  ``quick`` starts from the
    quick profile (every scenario in seconds).  ``on_interval`` is called
    with each LoadInterval of the scenario's open loops as it closes (live
    progress)."""
    config = scenario_config(scenario, quick=quick, **changes)
    limits = resolve_thresholds(thresholds)             # a bad name raises before the run
    if on_interval is not None and not callable(on_interval):
        raise TypeError(f"on_interval must be callable, got {type(on_interval).__name__}")
    for cls, run in SCENARIOS.values():
        if type(config) is cls:
            token = _ON_INTERVAL.set(on_interval)
            try:
                return run(config, thresholds=limits)
            finally:
                _ON_INTERVAL.reset(token)
    raise AssertionError(f"no run function for {type(config).__name__}")   # pragma: no cover
