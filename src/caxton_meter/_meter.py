"""The object a test measures with: :class:`Meter`, its series and what
the series become in a run's result.

Nothing here imports pytest, directly or indirectly: ``caxton_meter.Meter``
works in a script, a notebook or under another test runner.  The pytest
plugin (:mod:`caxton_meter._plugin`, :mod:`caxton_meter._session`) hands a
Meter to each test and gathers its series at the end of the test.

Every figure a Meter's series produce in a result is declared once, in
:data:`METRICS`: its unit, kind and direction (whether a comparison with a
baseline wants it higher, lower, or does not compare it).

Each name of a Meter becomes the scenario ``"<test>::<name>"`` of the run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

from . import _checks
from ._checks import ArgumentError, ArgumentTypeError
from ._core import (
    Histogram,
    NetworkResult,
    OpenLoopResult,
    Timer,
    latency_histogram,
    now_ns,
    record_clamped,
)
from ._expressions import (
    PLUGIN_METRICS,
    Evaluation,
    Measurement,
    MetricSet,
    MissingMeasurementError,
    ThresholdExpression,
    parse_threshold,
)
from ._model import Direction, Grade, Interval, Kind, Metric, MetricSpec, ScenarioResult

if TYPE_CHECKING:
    from ._capacity import CapacityResult
    from ._model import Threshold
    from ._results import RunResult, Trials
    from ._sampling import ResourceProfile

__all__ = ["METRICS", "Meter"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_MAX_LOOPS = 100_000_000
_DEFAULT_ROUNDS = 10
_DEFAULT_MIN_TIME = 0.002           # seconds a calibrated round lasts at least
_SAMPLE_INTERVAL = 0.05             # seconds between resource samples


# -- what a Meter measures -------------------------------------------------------------------

METRICS: Mapping[str, MetricSpec] = {s.name: s for s in (
    # calibrated calls, one trial per round
    MetricSpec("time_per_call", "ns", Kind.LATENCY, direction=Direction.LOWER),
    MetricSpec("calls", "count", Kind.COUNT, direction=Direction.NONE),
    # calls (or completed requests) per second -- calls, not messages; only
    # Meter.grade reads it against the targets table's throughput row
    MetricSpec("throughput", "calls/s", Kind.THROUGHPUT, direction=Direction.HIGHER,
               graded_by="throughput"),
    # timed blocks and loads, from the histogram "latency"
    MetricSpec("latency_p50", "ns", Kind.LATENCY, direction=Direction.LOWER,
               histogram="latency", percentile=50.0, graded_by="latency_p50"),
    MetricSpec("latency_p90", "ns", Kind.LATENCY, direction=Direction.LOWER,
               histogram="latency", percentile=90.0),
    MetricSpec("latency_p99", "ns", Kind.LATENCY, direction=Direction.LOWER,
               histogram="latency", percentile=99.0, graded_by="latency_p99"),
    MetricSpec("count", "count", Kind.COUNT, direction=Direction.NONE),       # timed blocks
    # loads: what the loop did, and the share of requests that failed
    MetricSpec("requests", "count", Kind.COUNT, direction=Direction.NONE),
    MetricSpec("completed", "count", Kind.COUNT, direction=Direction.NONE),
    MetricSpec("failed", "count", Kind.COUNT, direction=Direction.NONE),
    MetricSpec("dropped", "count", Kind.COUNT, direction=Direction.NONE),
    MetricSpec("error_rate", "ratio", Kind.RATIO, direction=Direction.LOWER),
    # capacity searches (meter.capacity): one trial per search
    MetricSpec("capacity", "req/s", Kind.THROUGHPUT, direction=Direction.HIGHER),
    MetricSpec("knee", "req/s", Kind.THROUGHPUT, direction=Direction.HIGHER),
    MetricSpec("capacity_steps", "count", Kind.COUNT, direction=Direction.NONE),
)}
"""Every metric a Meter's series produce in a result, declared once."""

_PERCENTILES = tuple((s.name, s.percentile) for s in METRICS.values()
                     if s.percentile is not None)
_GRADED = tuple(METRICS[n] for n in ("latency_p50", "latency_p99", "throughput"))


# -- one measurement ------------------------------------------------------------------------

class _Series:
    """What was recorded under one name of one test (mutable while the test
    runs; merged across tests of meter_session and across xdist workers).

    kind: "time" (timed blocks), "calls" (calibrated rounds), "load" (open
    loops, network loads too), "capacity" (capacity searches) or
    "resources" (only a resource profile so far)."""

    def __init__(self, test: str, name: str, kind: str) -> None:
        self.test = test
        self.name = name
        self.kind = kind
        self.histogram = latency_histogram()        # ns: blocks, per-call times, latencies
        self.uncorrected: Histogram | None = None    # load: from real start times
        self.lateness: Histogram | None = None       # load: real send - intended send
        self.calls = 0           # calls: calls made; load: requests completed
        self.errors = 0          # load: requests failed
        self.requests = 0        # load: requests started
        self.dropped = 0         # load: arrivals dropped
        self.notes: list[str] = []   # load: how a loop fell behind its schedule
        self.planned = 0         # load: arrivals the schedules held
        self.busy_ns = 0         # calls: the rounds' time; load: the runs' elapsed time
        self.rounds: list[tuple[int, int]] = []       # calls: (round ns, loops)
        self.intervals: list[dict[str, Any]] = []     # load: _scenarios.Interval fields
        self.config: dict[str, Any] = {}
        self.profiles: list[ResourceProfile] = []
        self.grades: dict[str, str] = {}              # metric -> Grade value
        self.error_kinds: dict[str, int] = {}         # load: failures by kind
        self.status_classes: dict[str, int] = {}      # network load: HTTP replies by class
        self.connect_time: Histogram | None = None    # network load: TCP connects, ns
        self.capacities: list[dict[str, Any]] = []    # capacity: CapacityResult.to_dict()

    @property
    def key(self) -> str:
        return f"{self.test}::{self.name}"

    @property
    def count(self) -> int:
        if self.kind == "time":
            return self.histogram.total_count + self.histogram.overflow_count
        return self.calls

    @property
    def empty(self) -> bool:
        """Nothing was recorded (the code under test raised first)."""
        if self.kind == "calls":
            return not self.rounds
        if self.kind == "load":
            return self.planned == 0 and self.requests == 0
        if self.kind == "capacity":
            return not self.capacities
        return self.count == 0 and not self.profiles

    @property
    def timed(self) -> bool:
        return self.histogram.total_count > 0

    @property
    def mean_ns(self) -> float | None:
        if self.kind == "calls" and self.calls:
            return self.busy_ns / self.calls
        return float(self.histogram.mean) if self.timed else None

    @property
    def throughput(self) -> float | None:
        """Per second: calls over the rounds' time, completed requests over
        the loads' elapsed time, timed blocks over the time spent in them;
        for capacity searches, the capacity the last one found."""
        if self.kind == "capacity":
            found = self.capacities[-1]["capacity"] if self.capacities else None
            return float(found) if found is not None else None
        if self.kind in ("calls", "load"):
            return self.calls * 1e9 / self.busy_ns if self.busy_ns > 0 else None
        if self.kind == "time" and self.timed and self.histogram.mean > 0:
            return 1e9 / float(self.histogram.mean)
        return None

    @property
    def rss_peak(self) -> int | None:
        return max((p.peak_rss for p in self.profiles), default=None)

    @property
    def cpu_percent(self) -> float | None:
        """The profiles' mean CPU %, weighted by their durations."""
        parts = [(p.mean_cpu_percent, p.duration) for p in self.profiles
                 if p.mean_cpu_percent is not None and p.duration > 0]
        total = sum(d for _, d in parts)
        if not parts or total <= 0:
            return None
        return sum(c * d for c, d in parts) / total

    def measurement(self) -> Measurement:
        return Measurement(
            histogram=self.histogram.copy() if self.timed else None, count=self.count,
            errors=self.errors, throughput=self.throughput, rss_peak=self.rss_peak,
            cpu_percent=self.cpu_percent)

    # -- recording
    def add_round(self, elapsed_ns: int, loops: int) -> None:
        self.rounds.append((elapsed_ns, loops))
        record_clamped(self.histogram, round(elapsed_ns / loops), loops)
        self.calls += loops
        self.busy_ns += elapsed_ns

    def add_load(self, result: OpenLoopResult) -> None:
        behind = result.schedule_note()
        if behind is not None:
            self.notes.append(behind)
        self.histogram.add(result.latency)
        if self.uncorrected is None:
            self.uncorrected = latency_histogram()
        self.uncorrected.add(result.latency_uncorrected)
        if self.lateness is None:
            self.lateness = latency_histogram()
        self.lateness.add(result.send_jitter)
        self.calls += result.completed
        self.errors += result.failed
        self.requests += result.requests
        self.dropped += result.dropped
        self.planned += result.planned
        self.busy_ns += result.elapsed_ns
        _add_counts(self.error_kinds, result.errors)
        if isinstance(result, NetworkResult):
            _add_counts(self.status_classes, result.status_classes)
            if self.connect_time is None:
                self.connect_time = latency_histogram()
            self.connect_time.add(result.connect_time)
        for iv in result.intervals:
            self.intervals.append({
                "start_ns": iv.start_ns, "end_ns": iv.end_ns, "sent": iv.sent,
                "completed": iv.completed, "failed": iv.failed, "dropped": iv.dropped,
                "latency": iv.latency.encode()})

    def add_capacity(self, result: CapacityResult) -> None:
        self.capacities.append(result.to_dict())
        for step in result.steps:
            self.calls += step.completed
            self.errors += step.failed
            self.requests += step.requests
            self.dropped += step.dropped

    # -- merging and the xdist payload
    def merge(self, other: _Series) -> None:
        if other.kind != self.kind and "resources" not in (self.kind, other.kind):
            raise ValueError(f"measurement {self.key!r} holds {self.kind} results in one "
                             f"process and {other.kind} results in another")
        if self.kind == "resources":
            self.kind = other.kind
        self.histogram.add(other.histogram)
        if other.uncorrected is not None:
            if self.uncorrected is None:
                self.uncorrected = latency_histogram()
            self.uncorrected.add(other.uncorrected)
        if other.lateness is not None:
            if self.lateness is None:
                self.lateness = latency_histogram()
            self.lateness.add(other.lateness)
        self.calls += other.calls
        self.errors += other.errors
        self.requests += other.requests
        self.dropped += other.dropped
        self.planned += other.planned
        self.busy_ns += other.busy_ns
        self.rounds += other.rounds
        self.intervals += other.intervals
        self.notes += other.notes
        self.config = self.config or dict(other.config)
        self.profiles += other.profiles
        for metric, value in other.grades.items():
            self.grades[metric] = _worse_grade(self.grades.get(metric), value)
        _add_counts(self.error_kinds, other.error_kinds)
        _add_counts(self.status_classes, other.status_classes)
        if other.connect_time is not None:
            if self.connect_time is None:
                self.connect_time = latency_histogram()
            self.connect_time.add(other.connect_time)
        self.capacities += other.capacities

    # The series' part of the xdist payload (_session._PAYLOAD_FORMAT: bump
    # it when these fields change).
    def to_payload(self) -> dict[str, Any]:
        return {
            "test": self.test, "name": self.name, "kind": self.kind,
            "histogram": self.histogram.encode(),
            "uncorrected": self.uncorrected.encode() if self.uncorrected is not None else None,
            "lateness": self.lateness.encode() if self.lateness is not None else None,
            "calls": self.calls, "errors": self.errors, "requests": self.requests,
            "dropped": self.dropped, "planned": self.planned, "busy_ns": self.busy_ns,
            "rounds": [list(r) for r in self.rounds], "intervals": list(self.intervals),
            "config": dict(self.config), "profiles": [p.as_dict() for p in self.profiles],
            "grades": dict(self.grades), "notes": list(self.notes),
            "error_kinds": dict(self.error_kinds), "status_classes": dict(self.status_classes),
            "connect_time": self.connect_time.encode() if self.connect_time is not None
            else None,
            "capacities": list(self.capacities),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> _Series:
        from ._sampling import ResourceProfile

        s = cls(str(data["test"]), str(data["name"]), str(data["kind"]))
        s.histogram = Histogram.decode(data["histogram"])
        if data.get("uncorrected") is not None:
            s.uncorrected = Histogram.decode(data["uncorrected"])
        if data.get("lateness") is not None:
            s.lateness = Histogram.decode(data["lateness"])
        for field in ("calls", "errors", "requests", "dropped", "planned", "busy_ns"):
            setattr(s, field, int(data[field]))
        s.rounds = [(int(t), int(n)) for t, n in data["rounds"]]
        s.notes = [str(n) for n in data["notes"]]
        s.intervals = [dict(iv) for iv in data["intervals"]]
        s.config = dict(data["config"])
        s.profiles = [ResourceProfile.from_dict(p) for p in data["profiles"]]
        s.grades = {str(k): str(v) for k, v in data["grades"].items()}
        s.error_kinds = {str(k): int(v) for k, v in data["error_kinds"].items()}
        s.status_classes = {str(k): int(v) for k, v in data["status_classes"].items()}
        if data.get("connect_time") is not None:
            s.connect_time = Histogram.decode(data["connect_time"])
        s.capacities = [dict(c) for c in data["capacities"]]
        return s


def _add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v


def _worse_grade(a: str | None, b: str) -> str:
    """The worse of two grades' values (a series keeps them as strings)."""
    if a is None:
        return b
    return max(Grade(a), Grade(b), key=lambda g: g.rank).value


# -- the argument checks a Meter adds to _checks --------------------------------------------

def _check_name(name: object, what: str = "a measurement name") -> str:
    if not isinstance(name, str):
        raise ArgumentTypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name or name != name.strip() or "\n" in name:
        raise ArgumentError(f"{what} must be a non-empty str without surrounding spaces or "
                            f"newlines, got {name!r}")
    return name


def _name_of(fn: object) -> str:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name else type(fn).__name__


def _time_round(fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any],
                loops: int) -> int:
    repeat = itertools.repeat(None, loops)
    start = now_ns()
    for _ in repeat:
        fn(*args, **kwargs)
    return now_ns() - start


def _target_kind(target: object) -> str:
    from ._targets import target_kind
    return target_kind(target, "meter.load")


class Meter:
    """Measurements of one test (the ``meter`` fixture) or of the session
    (``meter_session``), by name.

    * ``with meter.time(name):`` times a block into an HDR histogram (the
      core's :class:`~caxton_meter.Timer`: two clock reads in compiled code);
      ``meter.time(name)`` also decorates a function, plain or async.
    * ``meter(fn, *args, **kwargs)`` calls ``fn`` in calibrated rounds and
      returns its result; :meth:`call` takes the rounds and round time.
    * ``meter.load(target, rate=..., duration=...)`` drives a target in an
      open loop (corrected for coordinated omission) and samples the
      process's memory and CPU meanwhile; :meth:`load_async` in async tests.
    * ``with meter.resources(name):`` samples memory and CPU around a block.
    * :meth:`check` asserts threshold expressions; :meth:`grade` grades
      against the guide's targets table; :meth:`measurement` reads back.

    When disabled (``--meter-disable``) the code still runs, once, without
    timing; nothing is recorded and thresholds are not checked.
    """

    METRICS: ClassVar[Mapping[str, MetricSpec]] = METRICS
    """The metrics a Meter produces, each declared with its kind and direction."""
    THRESHOLD_METRICS: ClassVar[MetricSet] = PLUGIN_METRICS
    """The metric set of :meth:`check` and the marker's threshold expressions."""

    def __init__(self, test: str = "", *, disabled: bool = False) -> None:
        if not isinstance(test, str):
            raise ArgumentTypeError(f"Meter: test must be a str, not {type(test).__name__}")
        self.test = test
        self.disabled = _checks.flag(disabled, "Meter: disabled")
        self._series: dict[str, _Series] = {}
        self._scratch = latency_histogram()       # a disabled Timer's target

    def __repr__(self) -> str:
        state = " disabled" if self.disabled else ""
        names = ", ".join(self._series) or "nothing measured"
        return f"<Meter {self.test or '?'}{state}: {names}>"

    @property
    def names(self) -> tuple[str, ...]:
        """The names measured so far, in first-use order."""
        return tuple(self._series)

    def _get(self, name: str, kind: str) -> _Series:
        series = self._series.get(_check_name(name))
        if series is None:
            series = self._series[name] = _Series(self.test, name, kind)
        elif kind != "resources" and series.kind != kind:
            if series.kind != "resources":
                raise ArgumentError(f"measurement {name!r} already holds {series.kind} "
                                    f"results; record {_kind_text(kind)} under another name")
            series.kind = kind
        return series

    # -- timing
    def time(self, name: str = "default") -> Timer:
        """A :class:`~caxton_meter.Timer` recording into ``name``'s histogram
        (ns): ``with meter.time("parse"): ...`` or as a decorator.  A block
        that raises is timed too."""
        if self.disabled:
            return Timer(self._scratch)
        return Timer(self._get(name, "time").histogram)

    def __call__(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``fn(*args, **kwargs)`` timed in calibrated rounds under fn's name;
        returns fn's result (of the first call).  See :meth:`call`."""
        return self.call(fn, args, kwargs)

    def call(self, fn: Callable[..., _R], args: Sequence[Any] = (),
             kwargs: Mapping[str, Any] | None = None, *, name: str | None = None,
             rounds: int = _DEFAULT_ROUNDS, min_time: float | str = _DEFAULT_MIN_TIME) -> _R:
        """Call ``fn(*args, **kwargs)`` in ``rounds`` calibrated rounds and
        return the result of the first call.

        The first call warms up.  Calibration then doubles (at least) the
        calls per round until a round lasts ``min_time`` (seconds, or a time
        such as "5ms"), so that the clock's resolution and the loop's cost
        are small beside it.  Each of the ``rounds`` rounds is one trial of
        the result (its ``time_per_call`` and ``throughput``); its per-call
        time (round time / calls) goes into the histogram once per call, so
        percentiles are of round means when a round holds several calls,
        and of single calls when fn is slower than ``min_time``."""
        if not callable(fn):
            raise ArgumentTypeError(f"meter.call: fn must be callable, not {type(fn).__name__}")
        call_args = tuple(args)
        call_kwargs = dict(kwargs or {})
        if self.disabled:
            return fn(*call_args, **call_kwargs)
        rounds = _checks.integer(rounds, "meter.call: rounds", low=1)
        min_ns = round(_checks.seconds(min_time, "meter.call: min_time") * 1e9)
        series = self._get(_name_of(fn) if name is None else name, "calls")
        start = now_ns()
        result = fn(*call_args, **call_kwargs)
        elapsed = now_ns() - start
        loops = 1
        while elapsed < min_ns and loops < _MAX_LOOPS:
            grow = math.ceil(loops * min_ns * 1.2 / elapsed) if elapsed > 0 else loops * 10
            loops = min(_MAX_LOOPS, max(loops * 2, grow))
            elapsed = _time_round(fn, call_args, call_kwargs, loops)
        for _ in range(rounds):
            series.add_round(_time_round(fn, call_args, call_kwargs, loops), loops)
        return result

    # -- load
    def load(self, target: object, *, rate: float | str | None = None,
             duration: float | str | None = None,
             stages: Iterable[tuple[float | str, float | str]] | None = None,
             name: str = "load", payload: bytes | None = None, args: Sequence[Any] = (),
             concurrency: int = 100, start_rate: float | str | None = None,
             max_lateness: float | str | None = None, interval: float | str = 1.0,
             resources: bool = True, cluster: object = None,
             workers: int | None = None) -> OpenLoopResult:
        """Drive ``target`` at ``rate`` arrivals per second for ``duration``
        seconds (or through k6-like ``stages`` [(rate, seconds), ...]; rates
        and times may carry their units: "2K/s", "500ms") and
        record the result under ``name``: latencies from each arrival's
        intended start, completed requests per second, errors, and (when
        ``resources``) the process's memory and CPU.  Returns the loop's
        result (the core's OpenLoopResult).

        The target is a callable (called with ``args``, by the compiled open
        loop, one call at a time), a coroutine function (``concurrency`` at a
        time on an event loop of its own), or an object with a
        ``request(payload)`` method, plain or async (caxton_meter.Target,
        AsyncTarget: driven between its setup() and teardown()), or an
        HttpTarget / TcpTarget (the core's network loop, load_network:
        the result is a NetworkResult, and its status classes, failures by
        kind and connect times are recorded with the load).  In an async
        test use :meth:`load_async`.

        ``cluster`` (a Dask scheduler address or distributed.Client) runs
        the load on ``workers`` of its workers (default: all) with
        :func:`caxton_meter.run_distributed`, each taking its stripe of the
        schedule; the merged result is recorded, each worker's trouble (lost,
        fell behind) in the notes.  The target must then travel to the
        workers: a network target, a "module:function", or a picklable one."""
        plan = self._plan(target, rate, duration, stages, name, payload, args, concurrency,
                          start_rate, max_lateness, interval, resources,
                          remote=cluster is not None)
        if cluster is not None and plan.series is not None:
            return plan.finish(plan.run_distributed(cluster, workers))
        if plan.kind in ("coroutine function", "async target"):
            import asyncio

            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                raise RuntimeError("meter.load: an event loop is running in this thread (an "
                                   "async test); use `await meter.load_async(...)`")
            return plan.finish(asyncio.run(plan.run_async()))
        return plan.finish(plan.run_sync())

    async def load_async(self, target: object, *, rate: float | str | None = None,
                         duration: float | str | None = None,
                         stages: Iterable[tuple[float | str, float | str]] | None = None,
                         name: str = "load", payload: bytes | None = None,
                         args: Sequence[Any] = (), concurrency: int = 100,
                         start_rate: float | str | None = None,
                         max_lateness: float | str | None = None, interval: float | str = 1.0,
                         resources: bool = True, cluster: object = None,
                         workers: int | None = None) -> OpenLoopResult:
        """:meth:`load` for async tests: a coroutine target runs on the
        test's event loop (a plain one blocks it while the load runs); with
        ``cluster`` the load runs on the cluster from a thread, the test's
        event loop free meanwhile."""
        plan = self._plan(target, rate, duration, stages, name, payload, args, concurrency,
                          start_rate, max_lateness, interval, resources,
                          remote=cluster is not None)
        if cluster is not None and plan.series is not None:
            import asyncio
            return plan.finish(await asyncio.to_thread(plan.run_distributed, cluster, workers))
        if plan.kind in ("coroutine function", "async target"):
            return plan.finish(await plan.run_async())
        return plan.finish(plan.run_sync())

    # -- capacity
    def capacity(self, target: object, *, slo: str | Iterable[str], name: str = "capacity",
                 **options: Any) -> CapacityResult:
        """Search the highest arrival rate at which ``target`` keeps ``slo``
        (:func:`caxton_meter.find_capacity`, whose keyword arguments
        ``options`` are: start_rate, max_rate, factor, precision,
        max_steps, budget, min_step, tail_samples, max_error_rate,
        knee_factor, payload, args, concurrency, agents, max_queue,
        on_step) and record it under ``name``: ``capacity``, ``knee`` (both
        per second, more is better) and ``capacity_steps`` in the run's
        result, one trial per search, the verdict in its notes; the
        capacity is the measurement's ``throughput`` for :meth:`check`.
        Returns the CapacityResult.  When measurement is disabled nothing
        is sent and the result has no steps (``stopped == "disabled"``)."""
        from ._capacity import find_capacity, result_of

        name = _check_name(name, "meter.capacity: name")
        if self.disabled:
            from ._capacity import _slo_expressions, _search_percentile
            expressions = _slo_expressions(slo, "meter.capacity")
            return result_of([], stopped="disabled", low=None, high=None, elapsed=0.0,
                             target=repr(target), slo=tuple(e.text for e in expressions),
                             percentile=_search_percentile(expressions), precision=0.05,
                             knee_factor=2.0)
        series = self._get(name, "capacity")
        result = find_capacity(target, slo=slo, **options)
        series.add_capacity(result)
        if not series.config:
            series.config = {"target": result.target, "slo": list(result.slo),
                             "precision": result.precision}
        return result

    def _plan(self, target: object, rate: float | str | None, duration: float | str | None,
              stages: Iterable[tuple[float | str, float | str]] | None, name: str,
              payload: bytes | None, args: Sequence[Any], concurrency: int,
              start_rate: float | str | None, max_lateness: float | str | None,
              interval: float | str, resources: bool, remote: bool = False) -> _LoadPlan:
        if remote and isinstance(target, str):       # "module:function", for the workers
            module_name, sep, function = target.partition(":")
            if not (sep and module_name and function):
                raise ArgumentError(f"meter.load: a target given as a str must be "
                                    f"'module:function', got {target!r}")
            kind = "callable"
        else:
            kind = _target_kind(target)
        plan_stages, first_rate, _ = _checks.stages("meter.load", stages, rate, duration,
                                                    start_rate)
        name = _check_name(name, "meter.load: name")
        concurrency = _checks.integer(concurrency, "meter.load: concurrency", low=1)
        lateness = _checks.optional(_checks.seconds)(max_lateness, "meter.load: max_lateness",
                                                     allow_zero=True)
        every = _checks.seconds(interval, "meter.load: interval")
        sample = _checks.flag(resources, "meter.load: resources")
        if payload is not None and not isinstance(payload, (bytes, bytearray, memoryview)):
            raise ArgumentTypeError(f"meter.load: payload must be bytes, not "
                                    f"{type(payload).__name__}")
        if kind == "network target":
            if args or payload is not None or max_lateness is not None:
                raise ArgumentTypeError("meter.load: args=, payload= and max_lateness= are not "
                                        "for a network target (its request is set when it is "
                                        "made; a request due while every connection is busy "
                                        "waits, its wait in its latency)")
        elif kind in ("target", "async target"):
            if args:
                raise ArgumentTypeError("meter.load: args= is for a callable target; a "
                                        "Target's request() takes payload=")
        elif payload is not None:
            raise ArgumentTypeError("meter.load: payload= is for a Target's request(payload); "
                                    "pass args=(...) to a callable")
        config: dict[str, Any] = {"target": kind, "stages": [list(s) for s in plan_stages]}
        if kind in ("coroutine function", "async target"):
            config["concurrency"] = concurrency
        if kind == "network target":
            config["network_target"] = repr(target)
        if self.disabled:
            # one arrival: the target runs once, its result is not recorded
            return _LoadPlan(kind, target, [(1000.0, 0.001)], payload, tuple(args), concurrency,
                             None, None, every, None, False, config)
        series = self._get(name, "load")
        if not series.config:
            series.config = config
        return _LoadPlan(kind, target, plan_stages, payload, tuple(args), concurrency,
                         first_rate, lateness, every, series, sample, config)

    # -- resources
    @contextlib.contextmanager
    def resources(self, name: str = "default", *,
                  interval: float | str = _SAMPLE_INTERVAL) -> Iterator[None]:
        """Sample the process's memory (RSS) and CPU every ``interval``
        seconds while the block runs; the profile goes to ``name`` (its
        ``rss`` peak and mean ``cpu`` % are then in :meth:`measurement`, the
        summary and the thresholds)."""
        every = _checks.seconds(interval, "meter.resources: interval")
        if self.disabled:
            yield
            return
        series = self._get(name, "resources")
        from ._sampling import ResourceSampler

        sampler = ResourceSampler(every, uss=False)
        sampler.start()
        try:
            yield
        finally:
            series.profiles.append(sampler.stop())

    # -- reading back, checking, grading
    def measurement(self, name: str | None = None) -> Measurement:
        """What ``name`` measured so far (a copy); ``name`` may be left out
        when one name was measured.  ValueError naming the measured ones
        otherwise.  An empty Measurement when measurement is disabled."""
        if self.disabled:
            return Measurement()
        return self._one(name, "meter.measurement").measurement()

    def _one(self, name: str | None, what: str) -> _Series:
        if name is None:
            if len(self._series) == 1:
                return next(iter(self._series.values()))
            if not self._series:
                raise ArgumentError(f"{what}: nothing was measured"
                                    + (" (measurement is disabled)" if self.disabled else ""))
            raise ArgumentError(f"{what}: several names were measured "
                                f"({', '.join(self._series)}); pass name=")
        series = self._series.get(name)
        if series is None:
            raise ArgumentError(f"{what}: no measurement {name!r}"
                                f"{_checks.did_you_mean(name, self._series)}; measured: "
                                f"{', '.join(self._series) or 'nothing'}")
        return series

    def check(self, *expressions: str | ThresholdExpression,
              name: str | None = None) -> tuple[Evaluation, ...]:
        """Assert threshold expressions (``"p(99) < 10ms"``, ``"throughput >
        50K/s"``...) against ``name``, or, without a name, against every
        measurement that has the metric.  AssertionError, one line per
        failure: ``threshold 'p(99) < 10ms' failed for parse: p(99) = 12.3
        ms``; ThresholdExpressionError for a malformed expression.  Returns
        the evaluations.  Does nothing when measurement is disabled."""
        __tracebackhide__ = True
        parsed = [e if isinstance(e, ThresholdExpression) else parse_threshold(e)
                  for e in expressions]
        if self.disabled:
            return ()
        evaluations, failures = self._evaluate([(name, e) for e in parsed])
        if failures:
            raise AssertionError("\n".join(failures))
        return tuple(evaluations)

    def _evaluate(self, checks: Sequence[tuple[str | None, ThresholdExpression]]
                  ) -> tuple[list[Evaluation], list[str]]:
        evaluations: list[Evaluation] = []
        failures: list[str] = []
        for name, expr in checks:
            if name is not None:
                targets = [self._series[name]] if name in self._series else []
                if not targets:
                    failures.append(f"threshold {expr.text!r} failed for {name}: nothing was "
                                    f"measured under that name (measured: "
                                    f"{', '.join(self._series) or 'nothing'})")
                    continue
            else:
                targets = list(self._series.values())
                if not targets:
                    failures.append(f"threshold {expr.text!r} failed: nothing was measured "
                                    "(use meter.time, meter(fn), meter.load or meter.resources)")
                    continue
            missing: list[str] = []
            for series in targets:
                try:
                    ev = expr.evaluate(series.measurement())
                except MissingMeasurementError as e:
                    missing.append(f"{series.name} ({e})")
                    continue
                evaluations.append(ev)
                if not ev.passed:
                    failures.append(ev.describe(series.name))
            if missing and (name is not None or len(missing) == len(targets)):
                failures.append(f"threshold {expr.text!r} failed: {expr.label} was not measured "
                                f"for {', '.join(missing)}{_hint(expr)}")
        return evaluations, failures

    def grade(self, name: str | None = None, *,
              thresholds: Mapping[str, Threshold] | None = None) -> dict[str, Grade]:
        """Grade ``name`` against the guide's targets table
        (:data:`caxton_meter.DEFAULT_THRESHOLDS`, with ``thresholds``
        overriding rows): ``latency_p50`` and ``latency_p99`` from its
        histogram and ``throughput`` (calls per second, read against the
        table's throughput row), those it has.  The grades are also written into
        the run's result.  Empty when disabled."""
        from ._model import resolve_thresholds

        limits = resolve_thresholds(thresholds)
        if self.disabled:
            return {}
        series = self._one(name, "meter.grade")
        values: dict[str, float] = {}
        if series.timed:
            for metric, p in _PERCENTILES:
                values[metric] = float(series.histogram.value_at_percentile(p))
        if series.throughput is not None:
            values["throughput"] = series.throughput
        grades: dict[str, Grade] = {}
        for spec in _GRADED:
            if spec.name in values:
                g = spec.graded(values[spec.name], limits).grade
                assert g is not None
                grades[spec.name] = g
                series.grades[spec.name] = g.value
        return grades


def _hint(expr: ThresholdExpression) -> str:
    if expr.metric in ("rss", "cpu"):
        return " (sample it with `with meter.resources(name):` or meter.load)"
    if expr.metric == "throughput":
        return " (time calls with meter(fn) or meter.load)"
    return ""


def _kind_text(kind: str) -> str:
    return {"time": "timed blocks", "calls": "calibrated calls", "load": "a load",
            "capacity": "a capacity search", "resources": "resources"}[kind]





@dataclasses.dataclass
class _LoadPlan:
    """A load ready to run (validated), and where its result goes."""
    kind: str
    target: Any
    stages: list[tuple[float, float]]
    payload: bytes | None
    args: tuple[Any, ...]
    concurrency: int
    start_rate: float | None
    max_lateness: float | None
    interval: float
    series: _Series | None           # None: measurement disabled
    sample: bool
    config: dict[str, Any]
    _sampler: Any = None

    def _start(self) -> None:
        if self.series is not None and self.sample:
            from ._sampling import ResourceSampler

            self._sampler = ResourceSampler(_SAMPLE_INTERVAL, uss=False)
            self._sampler.start()

    def _stop(self) -> None:
        if self._sampler is not None and self.series is not None:
            self.series.profiles.append(self._sampler.stop())
            self._sampler = None

    def run_sync(self) -> OpenLoopResult:
        from ._core import open_loop_call
        from ._targets import drive

        self._start()
        try:
            if self.kind == "network target":
                from ._network import load_network
                return load_network(self.target, self.stages, start_rate=self.start_rate,
                                    interval=self.interval)
            if self.kind == "target":
                return drive(self.target, self.stages, payload=self.payload or b"",
                             start_rate=self.start_rate, max_lateness=self.max_lateness,
                             interval=self.interval)
            return open_loop_call(self.target, self.stages, args=self.args,
                                  start_rate=self.start_rate, max_lateness=self.max_lateness,
                                  interval=self.interval)
        finally:
            self._stop()

    def run_distributed(self, cluster: object, workers: int | None) -> OpenLoopResult:
        """The load on a Dask cluster's workers; their trouble in the notes.
        This process's memory and CPU are not the load's: not sampled."""
        from ._distributed import run_distributed

        run = run_distributed(self.target, self.stages, start_rate=self.start_rate,
                              cluster=cluster, workers=workers, payload=self.payload or b"",
                              args=self.args, concurrency=self.concurrency,
                              interval=self.interval)
        self.config["workers"] = len(run.workers)
        if self.series is not None:
            self.series.notes.extend(w.note for w in run.workers if w.note)
        return run.result

    async def run_async(self) -> OpenLoopResult:
        from ._aioload import open_loop_async
        from ._targets import drive_async

        self._start()
        try:
            if self.kind == "async target":
                return await drive_async(self.target, self.stages, payload=self.payload or b"",
                                         concurrency=self.concurrency,
                                         start_rate=self.start_rate, interval=self.interval)
            fn: Callable[..., Awaitable[object]] = self.target
            return await open_loop_async(fn, self.stages, args=self.args,
                                         concurrency=self.concurrency,
                                         start_rate=self.start_rate, interval=self.interval)
        finally:
            self._stop()

    def finish(self, result: OpenLoopResult) -> OpenLoopResult:
        if self.series is not None:
            self.series.add_load(result)
        return result


# -- the run's result ------------------------------------------------------------------------

def _build_run(series: Iterable[_Series], metadata: dict[str, Any]) -> RunResult:
    """The run of a session: each series is the scenario ``"<test>::<name>"``."""
    from ._results import RunResult

    return RunResult(metadata, tuple(_trials(s) for s in sorted(series, key=lambda s: s.key)))


def _trials(s: _Series) -> Trials:
    """A series as the trials of its scenario: one per round for calibrated
    calls, one for timed blocks, loads and resource profiles."""
    from ._results import Trials

    def metric(name: str, value: float) -> Metric:
        g = s.grades.get(name)
        return METRICS[name](value, Grade(g) if g is not None else None)

    def percentiles(h: Histogram) -> list[Metric]:
        if not h.total_count:
            return []
        return [metric(name, h.value_at_percentile(p)) for name, p in _PERCENTILES]

    resources = max(s.profiles, key=lambda p: p.peak_rss) if s.profiles else None
    notes: list[str] = list(s.notes)
    if len(s.profiles) > 1:
        notes.append(f"{len(s.profiles)} resource profiles were taken; the one with the "
                     "highest RSS peak is kept")
    if s.histogram.overflow_count:
        notes.append(f"{s.histogram.overflow_count} values above one hour were counted, "
                     "not recorded")
    config = dict(s.config)
    results: list[ScenarioResult] = []
    if s.kind == "calls":
        for i, (elapsed, loops) in enumerate(s.rounds):
            h = latency_histogram()
            record_clamped(h, round(elapsed / loops), loops)
            results.append(ScenarioResult(
                s.key, config,
                (metric("time_per_call", elapsed / loops),
                 metric("throughput", loops * 1e9 / elapsed if elapsed > 0 else math.nan),
                 metric("calls", loops)),
                {"latency": h.encode()}, resources=resources if i == 0 else None,
                notes=tuple(notes) if i == 0 else ()))
    elif s.kind == "load":
        h = s.histogram
        throughput = s.throughput
        ended = s.calls + s.errors
        metrics = percentiles(h) + [
            metric("throughput", throughput if throughput is not None else math.nan),
            metric("requests", s.requests), metric("completed", s.calls),
            metric("failed", s.errors), metric("dropped", s.dropped),
            metric("error_rate", s.errors / ended if ended else 0.0)]
        histograms = {"latency": h.encode()}
        if s.uncorrected is not None:
            histograms["latency_uncorrected"] = s.uncorrected.encode()
        if s.lateness is not None:
            histograms["send_lateness"] = s.lateness.encode()
        if s.connect_time is not None:
            histograms["connect_time"] = s.connect_time.encode()
        if any(s.status_classes.values()):
            notes.append("HTTP status classes: " + ", ".join(
                f"{k} {v:,}" for k, v in sorted(s.status_classes.items()) if v))
        if s.error_kinds:
            notes.append("failures by kind: " + ", ".join(
                f"{k} {v:,}" for k, v in sorted(s.error_kinds.items(), key=lambda kv: -kv[1])))
        intervals = tuple(Interval(**iv) for iv in s.intervals)
        results.append(ScenarioResult(s.key, config, tuple(metrics), histograms, intervals,
                                      resources, notes=tuple(notes)))
    elif s.kind == "capacity":
        for i, found in enumerate(s.capacities):
            searched = [metric("capacity_steps", len(found["steps"]))]
            for field in ("capacity", "knee"):
                if found[field] is not None:
                    searched.insert(-1, metric(field, float(found[field])))
            results.append(ScenarioResult(
                s.key, config, tuple(searched), {},
                notes=(tuple(notes) if i == 0 else ()) + (str(found["verdict"]),)))
    else:
        metrics = percentiles(s.histogram)
        if s.kind == "time":
            metrics.append(metric("count", s.count))
        histograms = {"latency": s.histogram.encode()} if s.kind == "time" else {}
        results.append(ScenarioResult(s.key, config, tuple(metrics), histograms,
                                      resources=resources, notes=tuple(notes)))
    return Trials(s.key, config, tuple(results))
