"""caxton_meter's pytest plugin (registered through the ``pytest11`` entry
point, so it is active wherever caxton_meter is installed).

The ``meter`` fixture measures code under test into HDR histograms::

    def test_parse(meter):
        with meter.time("parse"):            # timed in compiled code (the core's Timer)
            parse(document)
        meter(parse, document)               # calibrated rounds, as pytest-benchmark
        meter.load(client, rate=2000, duration=2.0)     # an open loop; async targets too
        meter.check("p(99) < 10ms", name="parse")

    @pytest.mark.meter(thresholds=["p(99) < 10ms", "error_rate < 1%"])
    def test_service(meter): ...

Thresholds are k6-like expressions (:mod:`caxton_meter._expressions`); a
malformed one in a marker fails the collection, with a caret under the
error.  At the end of the session a table lists every measurement; with
``--meter-save-baseline NAME`` the run is saved as a caxton_meter result,
with ``--meter-baseline NAME`` it is compared with a saved one and a
regression (by :func:`caxton_meter._compare.compare`'s statistical rule)
fails the session.  Under pytest-xdist every worker sends its measurements
to the controller, which merges the histograms of equal names.

Each measurement becomes a scenario ``"<test nodeid>::<name>"`` of the
run (``"session::<name>"`` for the session-wide ``meter_session``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pytest

from ._core import Histogram, OpenLoopResult, Timer, latency_histogram, now_ns
from ._expressions import (
    Evaluation,
    Measurement,
    MissingMeasurementError,
    ThresholdExpression,
    ThresholdExpressionError,
    format_value,
    parse_threshold,
)

if TYPE_CHECKING:
    from ._aioload import AsyncLoadResult
    from ._compare import Comparison
    from ._results import RunResult, Trials
    from ._sampling import ResourceProfile
    from ._scenarios import Grade, Threshold

__all__ = ["Meter"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_MAX_LOOPS = 100_000_000
_DEFAULT_ROUNDS = 10
_DEFAULT_MIN_TIME = 0.002           # seconds a calibrated round lasts at least
_SAMPLE_INTERVAL = 0.05             # seconds between resource samples
_PAYLOAD_FORMAT = 1                 # the xdist payload (workeroutput["caxton_meter"])
_SESSION_TEST = "session"           # the "test" of meter_session's measurements


def _record(h: Histogram, value_ns: int, count: int = 1) -> None:
    if value_ns > h.highest_recordable_value:
        h.record_overflow(count)
    else:
        h.record(max(value_ns, 1), count)


# -- one measurement -----------------------------------------------------------------------

class _Series:
    """What was recorded under one name of one test (mutable while the test
    runs; merged across tests of meter_session and across xdist workers).

    kind: "time" (timed blocks), "calls" (calibrated rounds), "load" (open
    loops) or "resources" (only a resource profile so far)."""

    def __init__(self, test: str, name: str, kind: str) -> None:
        self.test = test
        self.name = name
        self.kind = kind
        self.histogram = latency_histogram()        # ns: blocks, per-call times, latencies
        self.uncorrected: Histogram | None = None    # load: from real start times
        self.calls = 0           # calls: calls made; load: requests completed
        self.errors = 0          # load: requests failed
        self.requests = 0        # load: requests started
        self.dropped = 0         # load: arrivals dropped
        self.planned = 0         # load: arrivals the schedules held
        self.busy_ns = 0         # calls: the rounds' time; load: the runs' elapsed time
        self.rounds: list[tuple[int, int]] = []       # calls: (round ns, loops)
        self.intervals: list[dict[str, Any]] = []     # load: _scenarios.Interval fields
        self.config: dict[str, Any] = {}
        self.profiles: list[ResourceProfile] = []
        self.grades: dict[str, str] = {}              # metric -> Grade value

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
        the loads' elapsed time, timed blocks over the time spent in them."""
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
        _record(self.histogram, round(elapsed_ns / loops), loops)
        self.calls += loops
        self.busy_ns += elapsed_ns

    def add_load(self, result: OpenLoopResult | AsyncLoadResult) -> None:
        self.histogram.add(result.latency)
        if self.uncorrected is None:
            self.uncorrected = latency_histogram()
        self.uncorrected.add(result.latency_uncorrected)
        self.calls += result.completed
        self.errors += result.failed
        self.requests += result.requests
        self.dropped += result.dropped
        self.planned += result.planned
        self.busy_ns += result.elapsed_ns
        for iv in result.intervals:
            self.intervals.append({
                "start_ns": iv.start_ns, "end_ns": iv.end_ns, "sent": iv.sent,
                "completed": iv.completed, "failed": iv.failed, "dropped": iv.dropped,
                "latency": iv.latency.encode()})

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
        self.calls += other.calls
        self.errors += other.errors
        self.requests += other.requests
        self.dropped += other.dropped
        self.planned += other.planned
        self.busy_ns += other.busy_ns
        self.rounds += other.rounds
        self.intervals += other.intervals
        self.config = self.config or dict(other.config)
        self.profiles += other.profiles
        for metric, value in other.grades.items():
            self.grades[metric] = _worse_grade(self.grades.get(metric), value)

    def to_payload(self) -> dict[str, Any]:
        return {
            "test": self.test, "name": self.name, "kind": self.kind,
            "histogram": self.histogram.encode(),
            "uncorrected": self.uncorrected.encode() if self.uncorrected is not None else None,
            "calls": self.calls, "errors": self.errors, "requests": self.requests,
            "dropped": self.dropped, "planned": self.planned, "busy_ns": self.busy_ns,
            "rounds": [list(r) for r in self.rounds], "intervals": list(self.intervals),
            "config": dict(self.config), "profiles": [p.as_dict() for p in self.profiles],
            "grades": dict(self.grades),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> _Series:
        from ._sampling import ResourceProfile

        s = cls(str(data["test"]), str(data["name"]), str(data["kind"]))
        s.histogram = Histogram.decode(data["histogram"])
        if data.get("uncorrected") is not None:
            s.uncorrected = Histogram.decode(data["uncorrected"])
        for field in ("calls", "errors", "requests", "dropped", "planned", "busy_ns"):
            setattr(s, field, int(data[field]))
        s.rounds = [(int(t), int(n)) for t, n in data["rounds"]]
        s.intervals = [dict(iv) for iv in data["intervals"]]
        s.config = dict(data["config"])
        s.profiles = [ResourceProfile.from_dict(p) for p in data["profiles"]]
        s.grades = {str(k): str(v) for k, v in data["grades"].items()}
        return s


def _worse_grade(a: str | None, b: str) -> str:
    order = ("target", "acceptable", "critical", "failed")
    if a is None or a not in order or b not in order:
        return b
    return max(a, b, key=order.index)


# -- the fixture's class -------------------------------------------------------------------

def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or name != name.strip() or "\n" in name:
        raise ValueError(f"a measurement name must be a non-empty str without surrounding "
                         f"spaces or newlines, got {name!r}")
    return name


def _seconds(value: object, what: str) -> float:
    """A number of seconds, or a time written with a unit ("2s", "500ms")."""
    if isinstance(value, str):
        from ._units import parse_quantity

        seconds = parse_quantity(value, "time") / 1e9
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or a time such as '2s', "
                        f"not {type(value).__name__}")
    else:
        seconds = float(value)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{what} must be > 0 seconds, got {value!r}")
    return seconds


def _rate(value: object) -> float:
    """Arrivals per second, or a rate written with a unit ("2K/s")."""
    if isinstance(value, str):
        from ._units import parse_quantity

        rate = parse_quantity(value, "rate")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"rate must be a number per second or a rate such as '2K/s', "
                        f"not {type(value).__name__}")
    else:
        rate = float(value)
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be > 0 per second, got {value!r}")
    return rate


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
    request = getattr(target, "request", None)
    if request is not None and callable(request) and not inspect.isroutine(target):
        return "async target" if inspect.iscoroutinefunction(request) else "target"
    if inspect.iscoroutinefunction(target):
        return "coroutine function"
    if callable(target):
        return "callable"
    raise TypeError(f"meter.load: the target must be a callable, a coroutine function or an "
                    f"object with a request(payload) method (caxton_meter.Target or "
                    f"AsyncTarget), not {type(target).__name__}")


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

    def __init__(self, test: str = "", *, disabled: bool = False) -> None:
        self.test = test
        self.disabled = bool(disabled)
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
                raise ValueError(f"measurement {name!r} already holds {series.kind} results; "
                                 f"record {_kind_text(kind)} under another name")
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
            raise TypeError(f"meter.call: fn must be callable, not {type(fn).__name__}")
        call_args = tuple(args)
        call_kwargs = dict(kwargs or {})
        if self.disabled:
            return fn(*call_args, **call_kwargs)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"meter.call: rounds must be an int >= 1, got {rounds!r}")
        min_ns = round(_seconds(min_time, "meter.call: min_time") * 1e9)
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
             stages: Iterable[tuple[float, float]] | None = None, name: str = "load",
             payload: bytes | None = None, args: Sequence[Any] = (), concurrency: int = 100,
             start_rate: float | None = None, max_lateness: float | None = None,
             interval: float = 1.0, resources: bool = True) -> OpenLoopResult | AsyncLoadResult:
        """Drive ``target`` at ``rate`` arrivals per second for ``duration``
        seconds (or through k6-like ``stages`` [(rate, seconds), ...]) and
        record the result under ``name``: latencies from each arrival's
        intended start, completed requests per second, errors, and (when
        ``resources``) the process's memory and CPU.  Returns the loop's
        result (the core's OpenLoopResult, or AsyncLoadResult).

        The target is a callable (called with ``args``, by the compiled open
        loop, one call at a time), a coroutine function (``concurrency`` at a
        time on an event loop of its own), or an object with a
        ``request(payload)`` method, plain or async (caxton_meter.Target,
        AsyncTarget: driven between its setup() and teardown()).  In an
        async test use :meth:`load_async`."""
        plan = self._plan(target, rate, duration, stages, name, payload, args, concurrency,
                          start_rate, max_lateness, interval, resources)
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
                         stages: Iterable[tuple[float, float]] | None = None,
                         name: str = "load", payload: bytes | None = None,
                         args: Sequence[Any] = (), concurrency: int = 100,
                         start_rate: float | None = None, max_lateness: float | None = None,
                         interval: float = 1.0,
                         resources: bool = True) -> OpenLoopResult | AsyncLoadResult:
        """:meth:`load` for async tests: a coroutine target runs on the
        test's event loop (a plain one blocks it while the load runs)."""
        plan = self._plan(target, rate, duration, stages, name, payload, args, concurrency,
                          start_rate, max_lateness, interval, resources)
        if plan.kind in ("coroutine function", "async target"):
            return plan.finish(await plan.run_async())
        return plan.finish(plan.run_sync())

    def _plan(self, target: object, rate: float | str | None, duration: float | str | None,
              stages: Iterable[tuple[float, float]] | None, name: str, payload: bytes | None,
              args: Sequence[Any], concurrency: int, start_rate: float | None,
              max_lateness: float | None, interval: float, resources: bool) -> _LoadPlan:
        kind = _target_kind(target)
        if stages is not None:
            if rate is not None or duration is not None:
                raise ValueError("meter.load: give either rate and duration or stages, not both")
            plan_stages = [(float(r), float(d)) for r, d in stages]
            if not plan_stages:
                raise ValueError("meter.load: stages is empty")
        else:
            if rate is None or duration is None:
                raise ValueError("meter.load: give rate= (arrivals per second) and duration= "
                                 "(seconds), or stages=[(rate, seconds), ...]")
            plan_stages = [(_rate(rate), _seconds(duration, "meter.load: duration"))]
        if kind in ("target", "async target"):
            if args:
                raise TypeError("meter.load: args= is for a callable target; a Target's "
                                "request() takes payload=")
        elif payload is not None:
            raise TypeError("meter.load: payload= is for a Target's request(payload); "
                            "pass args=(...) to a callable")
        config: dict[str, Any] = {"target": kind, "stages": [list(s) for s in plan_stages]}
        if kind in ("coroutine function", "async target"):
            config["concurrency"] = concurrency
        if self.disabled:
            # one arrival: the target runs once, its result is not recorded
            return _LoadPlan(kind, target, [(1000.0, 0.001)], payload, tuple(args), concurrency,
                             None, None, interval, None, False, config)
        series = self._get(name, "load")
        if not series.config:
            series.config = config
        return _LoadPlan(kind, target, plan_stages, payload, tuple(args), concurrency,
                         start_rate, max_lateness, interval, series, resources, config)

    # -- resources
    @contextlib.contextmanager
    def resources(self, name: str = "default", *,
                  interval: float = _SAMPLE_INTERVAL) -> Iterator[None]:
        """Sample the process's memory (RSS) and CPU every ``interval``
        seconds while the block runs; the profile goes to ``name`` (its
        ``rss`` peak and mean ``cpu`` % are then in :meth:`measurement`, the
        summary and the thresholds)."""
        if self.disabled:
            yield
            return
        series = self._get(name, "resources")
        from ._sampling import ResourceSampler

        sampler = ResourceSampler(interval, uss=False)
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
                raise ValueError(f"{what}: nothing was measured"
                                 + (" (measurement is disabled)" if self.disabled else ""))
            raise ValueError(f"{what}: several names were measured ({', '.join(self._series)}); "
                             "pass name=")
        series = self._series.get(name)
        if series is None:
            raise ValueError(f"{what}: no measurement {name!r}; measured: "
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
        histogram and ``throughput`` (per second), those it has.  The grades
        are also written into the run's result.  Empty when disabled."""
        from ._scenarios import grade as grade_value, resolve_thresholds

        limits = resolve_thresholds(thresholds)
        if self.disabled:
            return {}
        series = self._one(name, "meter.grade")
        values: dict[str, float] = {}
        if series.timed:
            values["latency_p50"] = float(series.histogram.value_at_percentile(50.0))
            values["latency_p99"] = float(series.histogram.value_at_percentile(99.0))
        if series.throughput is not None:
            values["throughput"] = series.throughput
        grades = {metric: grade_value(limits[metric], value) for metric, value in values.items()}
        for metric, g in grades.items():
            series.grades[metric] = g.value
        return grades


def _hint(expr: ThresholdExpression) -> str:
    if expr.metric in ("rss", "cpu"):
        return " (sample it with `with meter.resources(name):` or meter.load)"
    if expr.metric == "throughput":
        return " (time calls with meter(fn) or meter.load)"
    return ""


def _kind_text(kind: str) -> str:
    return {"time": "timed blocks", "calls": "calibrated calls", "load": "a load",
            "resources": "resources"}[kind]


_LoadResultT = TypeVar("_LoadResultT", OpenLoopResult, "AsyncLoadResult")


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
            if self.kind == "target":
                return drive(self.target, self.stages, payload=self.payload or b"",
                             start_rate=self.start_rate, max_lateness=self.max_lateness,
                             interval=self.interval)
            return open_loop_call(self.target, self.stages, args=self.args,
                                  start_rate=self.start_rate, max_lateness=self.max_lateness,
                                  interval=self.interval)
        finally:
            self._stop()

    async def run_async(self) -> AsyncLoadResult:
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

    def finish(self, result: _LoadResultT) -> _LoadResultT:
        if self.series is not None:
            self.series.add_load(result)
        return result


# -- the run's result ------------------------------------------------------------------------

def _build_run(series: Iterable[_Series], metadata: dict[str, Any]) -> RunResult:
    from ._results import RunResult

    return RunResult(metadata, tuple(_trials(s) for s in sorted(series, key=lambda s: s.key)))


def _trials(s: _Series) -> Trials:
    from ._results import Trials
    from ._scenarios import Grade, Interval, Metric, ScenarioResult

    def metric(name: str, value: float, unit: str) -> Metric:
        g = s.grades.get(name)
        return Metric(name, value, unit, Grade(g) if g is not None else None)

    def percentiles(h: Histogram) -> list[Metric]:
        if not h.total_count:
            return []
        return [metric("latency_p50", h.value_at_percentile(50.0), "ns"),
                metric("latency_p90", h.value_at_percentile(90.0), "ns"),
                metric("latency_p99", h.value_at_percentile(99.0), "ns")]

    resources = max(s.profiles, key=lambda p: p.peak_rss) if s.profiles else None
    notes: list[str] = []
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
            _record(h, round(elapsed / loops), loops)
            results.append(ScenarioResult(
                s.key, config,
                (metric("time_per_call", elapsed / loops, "ns"),
                 metric("throughput", loops * 1e9 / elapsed if elapsed > 0 else math.nan,
                        "msg/s"),
                 metric("calls", loops, "count")),
                {"latency": h.encode()}, resources=resources if i == 0 else None,
                notes=tuple(notes) if i == 0 else ()))
    elif s.kind == "load":
        h = s.histogram
        throughput = s.throughput
        metrics = percentiles(h) + [
            metric("throughput", throughput if throughput is not None else math.nan, "msg/s"),
            metric("requests", s.requests, "count"), metric("completed", s.calls, "count"),
            metric("failed", s.errors, "count"), metric("dropped", s.dropped, "count"),
            metric("error_rate", s.errors / (s.calls + s.errors) if s.calls + s.errors else 0.0,
                   "ratio")]
        histograms = {"latency": h.encode()}
        if s.uncorrected is not None:
            histograms["latency_uncorrected"] = s.uncorrected.encode()
        intervals = tuple(Interval(**iv) for iv in s.intervals)
        results.append(ScenarioResult(s.key, config, tuple(metrics), histograms, intervals,
                                      resources, notes=tuple(notes)))
    else:
        metrics = percentiles(s.histogram)
        if s.kind == "time":
            metrics.append(metric("count", s.count, "count"))
        histograms = {"latency": s.histogram.encode()} if s.kind == "time" else {}
        results.append(ScenarioResult(s.key, config, tuple(metrics), histograms,
                                      resources=resources, notes=tuple(notes)))
    return Trials(s.key, config, tuple(results))


# -- the session -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Options:
    disabled: bool
    save_baseline: str | None
    baseline: str | None
    reports: tuple[str, ...]
    output: Path | None
    baseline_dir: Path


_STATE = pytest.StashKey["_MeterSession"]()
_THRESHOLDS = pytest.StashKey[tuple[tuple[str | None, ThresholdExpression], ...]]()


class _MeterSession:
    """The session's measurements and the hooks that check, save, compare
    and report them (one per pytest config)."""

    def __init__(self, config: pytest.Config, options: _Options) -> None:
        self.config = config
        self.options = options
        self.worker = hasattr(config, "workerinput")
        self.series: dict[str, _Series] = {}
        self.baseline: RunResult | None = None
        self.comparison: Comparison | None = None
        self.lines: list[tuple[str, dict[str, bool]]] = []     # for the terminal summary
        self.workers = 0

    # -- gathering
    def absorb(self, meter: Meter) -> None:
        for s in meter._series.values():
            self.add(s)

    def add(self, s: _Series) -> None:
        if s.empty:
            return
        mine = self.series.get(s.key)
        if mine is None:
            self.series[s.key] = s
        else:
            mine.merge(s)

    def merge_payload(self, payload: Mapping[str, Any]) -> None:
        if payload.get("format") != _PAYLOAD_FORMAT:
            raise ValueError(f"caxton_meter: a worker sent payload format "
                             f"{payload.get('format')!r}; this one reads {_PAYLOAD_FORMAT}")
        for data in payload["series"]:
            self.add(_Series.from_payload(data))
        self.workers += 1

    # -- hooks
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        # A bad marker is reported as a collection error of its test (which
        # is then not run): unlike a UsageError it reaches the controller
        # intact from xdist workers.
        bad: list[pytest.Item] = []
        for item in items:
            try:
                checks = _marker_thresholds(item)
            except _MarkerError as e:
                bad.append(item)
                config.hook.pytest_collectreport(report=pytest.CollectReport(
                    item.nodeid, "failed", str(e), []))
                continue
            if checks:
                item.stash[_THRESHOLDS] = checks
        if bad:
            items[:] = [item for item in items if item not in bad]

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        checks = item.stash.get(_THRESHOLDS, None)
        if not checks or self.options.disabled:
            return
        meter = getattr(item, "funcargs", {}).get("meter")
        if not isinstance(meter, Meter):
            return
        _, failures = meter._evaluate(checks)
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.worker:
            workeroutput: dict[str, Any] = getattr(self.config, "workeroutput")
            workeroutput["caxton_meter"] = {
                "format": _PAYLOAD_FORMAT,
                "series": [s.to_payload() for s in self.series.values()]}
            return
        if self.options.disabled:
            self.lines.append(("measurement disabled (--meter-disable): nothing was timed, "
                               "thresholds were not checked", {"yellow": True}))
            return
        if not self.series:
            if self.options.baseline or self.options.save_baseline or self.options.reports:
                self.lines.append(("nothing was measured: no baseline saved or compared, no "
                                   "report written", {"yellow": True}))
            return
        try:
            failed = self._finish()
        except (OSError, ValueError) as e:
            self.lines.append((f"error: {e}", {"red": True}))
            failed = True
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finish(self) -> bool:
        """Save, compare and report; True when the session should fail."""
        from ._results import BaselineStore, collect_metadata, write_atomic

        opts = self.options
        if not (opts.save_baseline or opts.baseline or opts.reports or opts.output):
            return False
        metadata = collect_metadata(cwd=str(self.config.rootpath))
        metadata["profile"] = "pytest"
        metadata["pytest"] = {"version": pytest.__version__,
                              "args": list(self.config.invocation_params.args),
                              "xdist_workers": self.workers}
        run = _build_run(self.series.values(), metadata)
        failed = False
        store = BaselineStore(opts.baseline_dir)
        if self.baseline is not None:
            from ._compare import compare

            self.comparison = compare(self.baseline, run, lenient=True)
            failed = bool(self.comparison.regressions)
        if opts.save_baseline:
            path = store.save(opts.save_baseline, run)
            self.lines.append((f"saved baseline {opts.save_baseline!r}: {path}", {}))
        if opts.output is not None:
            path = write_atomic(opts.output / "result.json", run.to_json())
            self.lines.append((f"wrote the result: {path}", {}))
        if opts.reports:
            from ._reports import write_reports

            directory = opts.output if opts.output is not None else _default_output(self.config)
            paths = write_reports(run, self.comparison, opts.reports, directory)
            self.lines.append((f"wrote {len(paths)} report file(s) to {directory}: "
                               + ", ".join(p.name for p in paths[:6])
                               + (" ..." if len(paths) > 6 else ""), {}))
        return failed

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, exitstatus: int,
                                config: pytest.Config) -> None:
        if self.worker or not (self.series or self.lines):
            return
        terminalreporter.write_sep("-", "caxton_meter")
        if self.series:
            for line in _summary_table(self.series.values()):
                terminalreporter.write_line(line)
        if self.comparison is not None:
            for text, markup in _comparison_lines(self.comparison, self.options.baseline or ""):
                terminalreporter.write_line(text, **markup)
        for text, markup in self.lines:
            terminalreporter.write_line(f"caxton_meter: {text}", **markup)


class _XdistController:
    """Registered on the xdist controller only: merges the workers'
    measurements as each worker finishes."""

    def __init__(self, state: _MeterSession) -> None:
        self.state = state

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        payload = getattr(node, "workeroutput", {}).get("caxton_meter")
        if payload is not None:
            self.state.merge_payload(payload)


def _default_output(config: pytest.Config) -> Path:
    return config.rootpath / ".caxton_meter" / "reports"


class _MarkerError(Exception):
    """A @pytest.mark.meter that cannot be used: reported as a collection error."""


def _marker_thresholds(item: pytest.Item) -> tuple[tuple[str | None, ThresholdExpression], ...]:
    checks: list[tuple[str | None, ThresholdExpression]] = []
    markers = list(item.iter_markers("meter"))
    for marker in markers:
        unknown = sorted(set(marker.kwargs) - {"thresholds", "name"})
        if unknown:
            raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter got unknown argument(s) "
                                    f"{', '.join(unknown)}; it takes thresholds= and name=")
        spec: Any = list(marker.args) + _as_list(marker.kwargs.get("thresholds", []), item)
        name = marker.kwargs.get("name")
        if name is not None and not isinstance(name, str):
            raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter name= must be a str, "
                                    f"got {name!r}")
        by_name: list[tuple[str | None, Any]] = []
        for entry in spec:
            if isinstance(entry, Mapping):
                for key, texts in entry.items():
                    by_name += [(str(key), t) for t in _as_list(texts, item)]
            else:
                by_name.append((name, entry))
        for target, text in by_name:
            if not isinstance(text, str):
                raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter thresholds must be "
                                        f"strings such as 'p(99) < 10ms', got {text!r}")
            try:
                checks.append((target, parse_threshold(text)))
            except ThresholdExpressionError as e:
                raise _MarkerError(f"{item.nodeid}: bad threshold in @pytest.mark.meter:\n"
                                        f"{e}") from None
    if checks and "meter" not in getattr(item, "fixturenames", ()):
        raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter thresholds are checked "
                                "against the test's `meter` fixture, which it does not use; "
                                "add `meter` to its arguments")
    return tuple(checks)


def _as_list(value: Any, item: pytest.Item) -> list[Any]:
    if isinstance(value, (str, Mapping)):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise _MarkerError(f"{item.nodeid}: @pytest.mark.meter thresholds must be a string, a "
                            f"list of strings or a mapping of name to strings, got {value!r}")


# -- the terminal summary --------------------------------------------------------------------

def _summary_table(series: Iterable[_Series]) -> list[str]:
    headers = ["test / name", "kind", "count", "errors", "p50", "p99", "mean", "throughput",
               "rss peak", "cpu"]
    rows = []
    for s in sorted(series, key=lambda s: s.key):
        h = s.histogram
        timed = s.timed
        mean = s.mean_ns
        rate = s.throughput
        rss = s.rss_peak
        cpu = s.cpu_percent
        rows.append([
            f"{s.test} / {s.name}", s.kind, f"{s.count:,}" if s.kind != "resources" else "-",
            f"{s.errors:,}" if s.kind == "load" else "-",
            format_value(h.value_at_percentile(50.0), "time") if timed else "-",
            format_value(h.value_at_percentile(99.0), "time") if timed else "-",
            format_value(mean, "time") if mean is not None else "-",
            format_value(rate, "rate") if rate is not None else "-",
            format_value(rss, "size") if rss is not None else "-",
            format_value(cpu, "percent") if cpu is not None else "-"])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def _unit_kind(unit: str) -> str:
    from ._units import kind_of_unit

    return kind_of_unit(unit)


def _comparison_lines(comparison: Comparison, name: str) -> list[tuple[str, dict[str, bool]]]:
    regressions = comparison.regressions
    out: list[tuple[str, dict[str, bool]]] = [(
        f"compared with baseline {name!r}: {len(comparison.metrics)} metric(s), "
        f"{len(regressions)} regression(s), {len(comparison.improvements)} improvement(s), "
        f"{len(comparison.missing)} without a baseline counterpart", {})]
    for m in regressions:
        c = m.change
        kind = _unit_kind(m.unit)
        p = f", p={c.p_value:.2g}" if c.p_value is not None else ""
        out.append((f"  REGRESSED {m.scenario}: {m.metric} {format_value(c.baseline, kind)} -> "
                    f"{format_value(c.current, kind)} ({c.change:+.1%}; {c.method}{p})",
                    {"red": True, "bold": True}))
    for m in comparison.improvements:
        c = m.change
        kind = _unit_kind(m.unit)
        out.append((f"  improved {m.scenario}: {m.metric} {format_value(c.baseline, kind)} -> "
                    f"{format_value(c.current, kind)} ({c.change:+.1%})", {"green": True}))
    for w in comparison.warnings[:5]:
        out.append((f"  warning: {w}", {"yellow": True}))
    if len(comparison.warnings) > 5:
        out.append((f"  ... and {len(comparison.warnings) - 5} more warning(s)",
                    {"yellow": True}))
    if regressions:
        out.append((f"caxton_meter: {len(regressions)} performance regression(s) against "
                    f"baseline {name!r}: the session fails", {"red": True, "bold": True}))
    return out


# -- hooks and fixtures --------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("caxton_meter", "caxton_meter performance measurement")
    group.addoption("--meter-save-baseline", metavar="NAME", default=None,
                    help="save the session's measurements as baseline NAME")
    group.addoption("--meter-baseline", metavar="NAME", default=None,
                    help="compare the session's measurements with baseline NAME; a "
                         "regression fails the session")
    group.addoption("--meter-baseline-dir", metavar="DIR", default=None,
                    help="where baselines are kept (default: .caxton_meter/baselines under "
                         "the rootdir)")
    group.addoption("--meter-report", metavar="FORMATS", action="append", default=[],
                    help="write reports in these formats (md, html, json; a comma list)")
    group.addoption("--meter-output", metavar="DIR", default=None,
                    help="write the session's result (result.json) and the reports to DIR "
                         "(reports default to .caxton_meter/reports under the rootdir)")
    group.addoption("--meter-disable", action="store_true", default=False,
                    help="run measured code once without timing; do not check thresholds")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "meter(thresholds=[...], name=None): threshold expressions (as 'p(99) < 10ms') "
        "checked against the test's `meter` measurements after the test")
    options = _read_options(config)
    state = _MeterSession(config, options)
    if not options.disabled and options.baseline and not state.worker:
        from ._results import BaselineNotFoundError, BaselineStore, ResultFormatError

        try:
            state.baseline = BaselineStore(options.baseline_dir).load(options.baseline)
        except (BaselineNotFoundError, ResultFormatError) as e:
            raise pytest.UsageError(f"--meter-baseline: {e}") from None
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "caxton_meter-session")
    if config.pluginmanager.hasplugin("xdist") and not state.worker:
        config.pluginmanager.register(_XdistController(state), "caxton_meter-xdist")


def _read_options(config: pytest.Config) -> _Options:
    def opt(name: str) -> Any:
        return config.getoption(name)

    here = config.invocation_params.dir
    reports: list[str] = []
    for value in opt("meter_report") or []:
        reports += [f.strip().lower() for f in str(value).split(",") if f.strip()]
    if reports:
        from ._reports import REPORT_FORMATS

        unknown = [f for f in reports if f not in REPORT_FORMATS]
        if unknown:
            raise pytest.UsageError(f"--meter-report: unknown format(s) "
                                    f"{', '.join(map(repr, unknown))}; choose from "
                                    f"{', '.join(REPORT_FORMATS)}")
    baseline_dir = (here / opt("meter_baseline_dir") if opt("meter_baseline_dir")
                    else config.rootpath / ".caxton_meter" / "baselines")
    options = _Options(
        disabled=bool(opt("meter_disable")), save_baseline=opt("meter_save_baseline"),
        baseline=opt("meter_baseline"), reports=tuple(dict.fromkeys(reports)),
        output=here / opt("meter_output") if opt("meter_output") else None,
        baseline_dir=baseline_dir)
    for flag, name in (("--meter-save-baseline", options.save_baseline),
                       ("--meter-baseline", options.baseline)):
        if name is not None:
            from ._results import BaselineStore

            try:
                BaselineStore(baseline_dir).path(name)
            except ValueError as e:
                raise pytest.UsageError(f"{flag}: {e}") from None
    return options


@pytest.fixture
def meter(request: pytest.FixtureRequest) -> Iterator[Meter]:
    """Measurements of this test: ``meter.time(name)``, ``meter(fn, ...)``,
    ``meter.load(target, rate=..., duration=...)``, ``meter.resources(name)``,
    ``meter.check("p(99) < 10ms")``, ``meter.grade()``.  Each name becomes
    the scenario ``"<nodeid>::<name>"`` of the session's result."""
    state = request.config.stash[_STATE]
    m = Meter(request.node.nodeid, disabled=state.options.disabled)
    yield m
    if not m.disabled:
        state.absorb(m)


@pytest.fixture(scope="session")
def meter_session(request: pytest.FixtureRequest) -> Iterator[Meter]:
    """A Meter shared by every test of the session (and merged across xdist
    workers): a name used by several tests gathers all their values, as the
    scenario ``"session::<name>"``."""
    state = request.config.stash[_STATE]
    m = Meter(_SESSION_TEST, disabled=state.options.disabled)
    yield m
    if not m.disabled:
        state.absorb(m)
