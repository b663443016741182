"""Production monitoring: interval snapshots, threshold alerts, Prometheus exposition.

A :class:`Monitor` watches latency :class:`~caxton_meter.Recorder` objects
(values in ns) and, optionally, cumulative request and error counters.  Every
``interval`` seconds (10 by default; or whenever :meth:`Monitor.poll` is
called) it swaps out each recorder's interval histogram, summarises it in an
immutable :class:`Snapshot`, checks the thresholds and tells the alert
callbacks about every change of state::

    monitor = Monitor(interval=10.0)
    monitor.watch("api", recorder, errors=lambda: failed, requests=lambda: served)
    monitor.threshold("api", "p99 < 10ms")             # k6-like: what must hold
    monitor.threshold("api", "error_rate", "<", 0.01, clear_after=3)
    monitor.threshold("api", "avg != 0")
    monitor.on_alert(lambda alert: print(alert.state, alert.expression, alert.value))
    with monitor:                                      # a daemon thread polls
        serve()

Recording stays in the compiled core: writers keep calling
``recorder.record()`` and never see the monitor, which only reads (the
Recorder's lock-free writer-reader swap, recycling the previous interval's
histogram).  A monitor becomes the reader of the recorders it watches: values
recorded before :meth:`Monitor.watch` are discarded there, and another reader
of the same recorder would take intervals away from it.

Thresholds are written in the one threshold grammar
(:mod:`caxton_meter._expressions`) over the monitor's metric set,
:data:`MONITOR_METRICS`: percentiles (``p99``, ``p99.9``, ``p(99.95)``),
``max``, ``mean`` (``avg``), ``error_rate`` and ``throughput``, with the
operators ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``.

Alerts have hysteresis.  A threshold states what must hold (``"p99 < 10ms"``);
its alert fires once, when a snapshot breaks it, stays quiet while later
snapshots still break it, and resolves after ``clear_after`` consecutive
snapshots in which it holds.  An interval without data for the metric (no
latency recorded, no requests for an error rate) changes nothing.

The current metrics are exposed in the Prometheus text format 0.0.4:
:meth:`Monitor.exposition` writes it without any dependency, and
:meth:`Monitor.register` adds a collector to a prometheus_client registry
(``pip install 'caxton_meter[prometheus]'``); both give the same samples.
Gauges describe the latest interval; counters and the summary's ``_count``
and ``_sum`` count since the watch began.

User code -- alert and snapshot callbacks, counter callables -- that raises
does not stop monitoring: the error is logged (logger
``"caxton_meter.monitor"``) and kept in :attr:`Monitor.callback_errors`.
"""
from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Literal, Mapping, TypeVar

from ._checks import ArgumentError
from ._core import Histogram, Recorder
from ._expressions import (
    OPERATORS,
    MetricSet,
    MissingMeasurementError,
    ThresholdExpression,
    ThresholdMetric,
    read_mapping,
)

if TYPE_CHECKING:
    from prometheus_client.registry import Collector, CollectorRegistry

__all__ = [
    "CONTENT_TYPE",
    "MONITOR_METRICS",
    "OPS",
    "Alert",
    "AlertRule",
    "CallbackError",
    "Monitor",
    "Snapshot",
]

logger = logging.getLogger("caxton_meter.monitor")

_T = TypeVar("_T")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :meth:`Monitor.exposition`'s text, for an HTTP reply."""

OPS = tuple(OPERATORS)
"""Threshold operators; a threshold states the condition that must hold."""

MAX_INTERVAL = 3600.0     # seconds; a longer interval is surely a unit mistake
MAX_CALLBACK_ERRORS = 100  # kept in callback_errors (all are logged)

# Percentiles every snapshot carries (its p50, p90, p99 and p999 fields).
_STANDARD_PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_QUANTILE_LABELS = ("0.5", "0.9", "0.99", "0.999")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


# -- values ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Snapshot:
    """One interval of one watch.  Immutable.

    name: the watch.  start, end: the interval, in the monitor's clock
        (seconds; ``time.monotonic`` by default).
    count: latencies recorded in the interval; overflow: values above the
        recorder's range (counted, not in the percentiles).
    requests: requests in the interval (the ``requests`` counter's increase,
        or count + overflow without one); errors: the ``errors`` counter's
        increase (0 without one).
    throughput: requests per second over the interval (NaN for an empty
        span or a failed counter read).
    error_rate: errors / requests (NaN without an errors counter, without
        requests or after a failed read; 1.0 at most).
    p50, p90, p99, p999 (the 99.9th percentile), max: latency in ns; mean:
        ns.  All 0 when count is 0 (``value()`` gives NaN then).
    percentiles: (percentile, ns) pairs: the four above and any a threshold
        of this watch asks for.
    histogram: the interval's histogram, encoded (``Histogram.decode``).
    """
    name: str
    start: float
    end: float
    count: int
    overflow: int
    requests: int
    errors: int
    throughput: float
    error_rate: float
    p50: int
    p90: int
    p99: int
    p999: int
    max: int
    mean: float
    percentiles: tuple[tuple[float, int], ...]
    histogram: str

    @property
    def duration(self) -> float:
        return self.end - self.start

    def value(self, metric: str) -> float:
        """The value of ``metric`` (a metric of :data:`MONITOR_METRICS`:
        ``"p99"``, ``"p(99.9)"``, ``"mean"``...) in base units (ns, a ratio,
        per second); NaN when the interval has no data for it.
        ThresholdExpressionError (a ValueError) for an unknown metric,
        ValueError for a percentile not computed."""
        name, percent = MONITOR_METRICS.metric(metric)
        value = _snapshot_value(self, name, percent)
        if value is None:
            raise ArgumentError(f"{MONITOR_METRICS.label(name, percent)!r} was not computed for "
                                "this snapshot; computed: "
                                + ", ".join(_percentile_name(p) for p, _ in self.percentiles))
        return value


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A threshold on one watch: ``metric op threshold`` must hold.

    metric: the label in :data:`MONITOR_METRICS` (``"p99"``, ``"p(99.9)"``,
    ``"mean"``, ``"error_rate"``...); op: one of :data:`OPS`; threshold: in
    base units (ns, a ratio, per second); clear_after: good intervals in a
    row that resolve the alert."""
    name: str
    metric: str
    op: str
    threshold: float
    clear_after: int = 1

    @property
    def expression(self) -> str:
        """The condition in words, e.g. ``"p99 < 10ms"``: the same for every
        spelling of it, so that it names the rule."""
        return _expression(self.metric, self.op, self.threshold)

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the rule (NaN never does)."""
        return not math.isnan(value) and OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True, slots=True)
class Alert:
    """A change of an alert's state, given to the alert callbacks.

    name, metric, op, threshold: the rule (see :class:`AlertRule`); value:
    the metric in the snapshot that changed the state; state: "firing" when
    the rule broke, "resolved" when it holds again; time: the snapshot's
    end, in the monitor's clock."""
    name: str
    metric: str
    op: str
    threshold: float
    value: float
    state: Literal["firing", "resolved"]
    time: float

    @property
    def expression(self) -> str:
        return _expression(self.metric, self.op, self.threshold)


@dataclass(frozen=True, slots=True)
class CallbackError:
    """User code that raised while monitoring: which (``callback``, its
    qualified name or repr, or the counter), the exception's type name and
    message, the alert being delivered (None for a snapshot callback or a
    counter) and when (the monitor's clock)."""
    callback: str
    error_type: str
    message: str
    alert: Alert | None
    time: float


# -- thresholds --------------------------------------------------------------------------

def _percentile_name(percent: float) -> str:
    if percent == int(percent):
        return f"p{int(percent)}"
    return f"p({percent:.15g})"


def _snapshot_value(s: Snapshot, metric: str, percent: float | None) -> float | None:
    """``metric`` of the monitor's set in snapshot ``s``, in base units:
    NaN for a latency figure of an empty interval; None for a percentile
    the snapshot did not compute."""
    if metric in ("p", "avg", "max"):
        if metric == "p":
            found = [ns for p, ns in s.percentiles if p == percent]
            if not found:
                return None
            value = float(found[0])
        else:
            value = float(s.mean if metric == "avg" else s.max)
        return math.nan if s.count == 0 else value
    return float(s.error_rate if metric == "error_rate" else s.throughput)


def _read_snapshot(expr: ThresholdExpression, measurement: Any) -> float:
    if isinstance(measurement, Mapping):
        return read_mapping(expr, measurement)
    if not isinstance(measurement, Snapshot):
        raise TypeError(f"measurement must be a Snapshot or a mapping of metric labels to "
                        f"values, not {type(measurement).__name__}")
    value = _snapshot_value(measurement, expr.metric, expr.percentile)
    if value is None:
        raise MissingMeasurementError(f"{expr.label} was not computed for this snapshot "
                                      f"(a threshold of the watch asks for a percentile)")
    return value


MONITOR_METRICS: MetricSet = MetricSet("monitor", (
    ThresholdMetric("p", "time", "p(N): the N-th percentile of the interval's latencies"),
    ThresholdMetric("avg", "time", "the mean latency of the interval",
                    aliases=("mean", "average"), label="mean"),
    ThresholdMetric("max", "time", "the largest latency of the interval"),
    ThresholdMetric("error_rate", "ratio", "errors / requests over the interval"),
    ThresholdMetric("throughput", "rate", "requests per second over the interval"),
), read=_read_snapshot, percentile_label=_percentile_name)
"""The metrics a monitor's threshold may check, read from a
:class:`Snapshot`.  Percentiles are labelled as the snapshot's fields
(``p99``; ``p(99.9)`` when not whole); ``avg`` as ``mean``."""


@functools.lru_cache(maxsize=1024)
def _expression(metric: str, op: str, threshold: float) -> str:
    # Called for every rule at every scrape (the alert_firing label).
    return MONITOR_METRICS.build(metric, op, threshold).canonical


# -- the monitor -------------------------------------------------------------------------

class _Watch:
    """A watched recorder and its running state (guarded by the monitor's lock)."""
    __slots__ = ("name", "recorder", "errors", "requests", "spare", "start", "errors_base",
                 "requests_base", "percentiles", "total_count", "total_overflow",
                 "total_sum_ns", "total_requests", "total_errors")

    def __init__(self, name: str, recorder: Recorder, errors: Callable[[], int] | None,
                 requests: Callable[[], int] | None, start: float) -> None:
        self.name = name
        self.recorder = recorder
        self.errors = errors
        self.requests = requests
        self.errors_base = None if errors is None else _counter_value(errors(), "errors", name)
        self.requests_base = (None if requests is None
                              else _counter_value(requests(), "requests", name))
        # The first interval starts now; the histogram becomes the spare.
        self.spare: Histogram = recorder.interval_histogram()
        self.start = start
        self.percentiles: tuple[float, ...] = _STANDARD_PERCENTILES
        self.total_count = 0
        self.total_overflow = 0
        self.total_sum_ns = 0.0
        self.total_requests = 0
        self.total_errors = 0


class _RuleState:
    __slots__ = ("rule", "expression", "firing", "good")

    def __init__(self, rule: AlertRule, expression: ThresholdExpression) -> None:
        self.rule = rule
        self.expression = expression
        self.firing = False
        self.good = 0       # good intervals in a row while firing


def _counter_value(value: object, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"the {what} counter of {name!r} returned {type(value).__name__}; "
                        "expected an int")
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise ValueError(f"the {what} counter of {name!r} returned {value!r}; expected a "
                         "whole number >= 0")
    return int(value)


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else repr(fn)


# (name without _total, type, help, samples (sample name, labels, value))
_Family = tuple[str, str, str, list[tuple[str, dict[str, str], float]]]
_Failure = tuple[str, BaseException, Alert | None, float]


class Monitor:
    """Snapshots watched Recorders every ``interval`` seconds and alerts on
    thresholds; see the module's documentation.

    interval: seconds between snapshots of the background thread, 0 <
        interval <= 3600 (default 10).  Ticks fall at start + k * interval
        whatever a poll costs, so they do not drift.
    clock: the time stamped on snapshots and alerts (seconds; default
        ``time.monotonic``); the thread is paced on ``time.monotonic``.
    namespace: the prefix of the exposed metric names (default
        ``"caxton_meter"``).

    Thread-safe: ``poll()`` may come from the thread and from the user,
    ``exposition()`` from a server's threads.
    """

    THRESHOLD_METRICS: ClassVar[MetricSet] = MONITOR_METRICS
    """The metric set of :meth:`threshold`'s expressions."""

    def __init__(self, *, interval: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 namespace: str = "caxton_meter") -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"interval must be a number of seconds, not "
                            f"{type(interval).__name__}")
        if not 0 < interval <= MAX_INTERVAL:     # also false for NaN
            raise ValueError(f"interval must be in (0, {MAX_INTERVAL:g}] seconds, "
                             f"got {interval!r}")
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, not "
                            f"{type(clock).__name__}")
        if not isinstance(namespace, str) or not _METRIC_NAME.fullmatch(namespace):
            raise ValueError(f"namespace must match [a-zA-Z_:][a-zA-Z0-9_:]* (a Prometheus "
                             f"metric name prefix), got {namespace!r}")
        self._interval = float(interval)
        self._clock = clock
        self._namespace = namespace
        self._watches: dict[str, _Watch] = {}
        self._rules: list[_RuleState] = []
        self._latest: dict[str, Snapshot] = {}
        self._alert_callbacks: list[Callable[[Alert], object]] = []
        self._snapshot_callbacks: list[Callable[[Mapping[str, Snapshot]], object]] = []
        self._errors: deque[CallbackError] = deque(maxlen=MAX_CALLBACK_ERRORS)
        # _lock guards the state (short holds: a scrape never waits on a
        # callback); _poll_lock orders polls, so that callbacks see alerts
        # in order.  Both re-entrant: a callback may call the monitor.
        self._lock = threading.RLock()
        self._poll_lock = threading.RLock()
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()     # a new one for each thread
        self._thread: threading.Thread | None = None
        self._polling = threading.local()  # .depth: poll() calls running in a thread

    # -- configuration ------------------------------------------------------------------

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def namespace(self) -> str:
        return self._namespace

    def watch(self, name: str, recorder: Recorder, *, errors: Callable[[], int] | None = None,
              requests: Callable[[], int] | None = None) -> None:
        """Watch ``recorder`` (latencies in ns) as ``name``.  ``errors`` and
        ``requests``: callables returning cumulative counts (a decrease is
        read as a counter reset); their increase over each interval gives
        the error rate and the throughput.  Without ``requests``, every
        recorded latency is a request.  The interval starts now: values
        recorded before are discarded."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a watch name must be a non-empty str, got {name!r}")
        if not isinstance(recorder, Recorder):
            raise TypeError(f"watch {name!r}: recorder must be a caxton_meter.Recorder, not "
                            f"{type(recorder).__name__}")
        for what, fn in (("errors", errors), ("requests", requests)):
            if fn is not None and not callable(fn):
                raise TypeError(f"watch {name!r}: {what} must be a callable returning a count, "
                                f"not {type(fn).__name__}")
        with self._lock:
            if name in self._watches:
                raise ValueError(f"a watch named {name!r} exists already; watches: "
                                 f"{', '.join(self._watches)}")
            for other in self._watches.values():
                if other.recorder is recorder:
                    raise ValueError(f"watch {name!r}: this recorder is watched already as "
                                     f"{other.name!r} (a recorder has one reader)")
            self._watches[name] = _Watch(name, recorder, errors, requests,
                                         float(self._clock()))

    def threshold(self, name: str, metric: str, op: str | None = None,
                  value: float | str | None = None, *, clear_after: int = 1) -> AlertRule:
        """Add a threshold on watch ``name``: ``metric op value`` must hold,
        e.g. ``threshold("api", "p99", "<", "10ms")`` or, k6-like,
        ``threshold("api", "p99 < 10ms")``, in the grammar of
        :data:`MONITOR_METRICS`.  ``value``: a number in base units (ns, a
        fraction, per second) or a quantity string ("10ms", "1%", "500/s").
        ``clear_after``: good intervals in a row that resolve a firing
        alert.  Returns the rule.  ThresholdExpressionError (a ValueError)
        for an expression that cannot be read, with a caret under the
        fault."""
        if op is None and value is None:
            expr = MONITOR_METRICS.parse(metric)
        elif op is None or value is None:
            raise TypeError("threshold: give both op and value, or one expression like "
                            "'p99 < 10ms' alone")
        else:
            expr = MONITOR_METRICS.build(metric, op, value)
        if isinstance(clear_after, bool) or not isinstance(clear_after, int):
            raise TypeError(f"clear_after must be an int, not {type(clear_after).__name__}")
        if clear_after < 1:
            raise ValueError(f"clear_after must be >= 1 (good intervals before an alert "
                             f"resolves), got {clear_after}")
        percent = expr.percentile
        rule = AlertRule(name, expr.label, expr.operator, expr.value, clear_after)
        with self._lock:
            watch = self._watches.get(name)
            if watch is None:
                raise ValueError(f"threshold on unknown watch {name!r}; watches: "
                                 f"{', '.join(self._watches) or '(none: call watch() first)'}")
            if expr.metric == "error_rate" and watch.errors is None:
                raise ValueError(f"threshold {rule.expression!r} on {name!r}: the watch has no "
                                 "errors counter; pass errors= to watch()")
            for state in self._rules:
                if (state.rule.name, state.rule.expression) == (name, rule.expression):
                    raise ValueError(f"watch {name!r} has the threshold {rule.expression!r} "
                                     "already")
            if percent is not None and percent not in watch.percentiles:
                watch.percentiles = tuple(sorted(watch.percentiles + (percent,)))
            self._rules.append(_RuleState(rule, expr))
        return rule

    def on_alert(self, callback: Callable[[Alert], object]) -> None:
        """Call ``callback(alert)`` when an alert fires and when it resolves."""
        if not callable(callback):
            raise TypeError(f"on_alert: callback must be callable, not {type(callback).__name__}")
        with self._lock:
            self._alert_callbacks.append(callback)

    def on_snapshot(self, callback: Callable[[Mapping[str, Snapshot]], object]) -> None:
        """Call ``callback(snapshots)`` after every poll, with the new
        snapshots by watch name (to log or ship each interval)."""
        if not callable(callback):
            raise TypeError(f"on_snapshot: callback must be callable, not "
                            f"{type(callback).__name__}")
        with self._lock:
            self._snapshot_callbacks.append(callback)

    # -- state --------------------------------------------------------------------------

    @property
    def latest(self) -> Mapping[str, Snapshot]:
        """The latest snapshot of each watch polled at least once."""
        with self._lock:
            return MappingProxyType(dict(self._latest))

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        with self._lock:
            return tuple(s.rule for s in self._rules)

    @property
    def firing(self) -> tuple[AlertRule, ...]:
        """The rules whose alert is firing."""
        with self._lock:
            return tuple(s.rule for s in self._rules if s.firing)

    @property
    def callback_errors(self) -> tuple[CallbackError, ...]:
        """User code that raised, oldest first (the last 100; all are logged)."""
        with self._lock:
            return tuple(self._errors)

    # -- polling ------------------------------------------------------------------------

    def poll(self) -> Mapping[str, Snapshot]:
        """Take one interval of every watch now, check the thresholds and
        call the callbacks.  Returns the new snapshots by watch name."""
        with self._poll_lock:
            depth = getattr(self._polling, "depth", 0)
            self._polling.depth = depth + 1      # a callback may poll again
            try:
                return self._poll()
            finally:
                self._polling.depth = depth

    def _poll(self) -> Mapping[str, Snapshot]:
        failures: list[_Failure] = []
        with self._lock:
            now = float(self._clock())
            snapshots = {w.name: self._take(w, now, failures) for w in self._watches.values()}
            self._latest.update(snapshots)
            alerts = self._evaluate(snapshots, now)
            alert_callbacks = list(self._alert_callbacks)
            snapshot_callbacks = list(self._snapshot_callbacks)
        result = MappingProxyType(snapshots)
        # User code runs outside the state lock, so that a slow callback does
        # not hold up a scrape; inside the poll lock, so that callbacks see
        # the alerts in order.
        for alert in alerts:
            for callback in alert_callbacks:
                self._call(callback, alert, alert, failures)
        for snapshot_callback in snapshot_callbacks:
            self._call(snapshot_callback, result, None, failures)
        if failures:
            self._report(failures)
        return result

    def _take(self, w: _Watch, now: float, failures: list[_Failure]) -> Snapshot:
        h = w.recorder.interval_histogram(recycle=w.spare)
        w.spare = h          # ours until the next poll recycles it
        count = h.total_count
        overflow = h.overflow_count
        values = h.percentiles(w.percentiles) if count else [0] * len(w.percentiles)
        pairs = tuple(zip(w.percentiles, values))
        by_percent = dict(pairs)
        mean = h.mean if count else 0.0
        w.total_count += count
        w.total_overflow += overflow
        w.total_sum_ns += mean * count

        requests: int | None = count + overflow
        if w.requests is not None:
            requests, w.requests_base = self._delta(w, "requests", w.requests, w.requests_base,
                                                    now, failures)
        errors: int | None = 0
        if w.errors is not None:
            errors, w.errors_base = self._delta(w, "errors", w.errors, w.errors_base, now,
                                                failures)
        duration = now - w.start
        throughput = (requests / duration if requests is not None and duration > 0
                      else math.nan)
        if w.errors is None or errors is None or requests is None:
            error_rate = math.nan
        elif requests > 0:
            error_rate = min(1.0, errors / requests)
        else:
            error_rate = 1.0 if errors > 0 else math.nan
        w.total_requests += requests or 0
        w.total_errors += errors or 0
        snapshot = Snapshot(
            name=w.name, start=w.start, end=now, count=count, overflow=overflow,
            requests=requests or 0, errors=errors or 0, throughput=throughput,
            error_rate=error_rate, p50=by_percent[50.0], p90=by_percent[90.0],
            p99=by_percent[99.0], p999=by_percent[99.9], max=h.max if count else 0, mean=mean,
            percentiles=pairs, histogram=h.encode())
        w.start = now
        return snapshot

    @staticmethod
    def _delta(w: _Watch, what: str, fn: Callable[[], int], base: int | None, now: float,
               failures: list[_Failure]) -> tuple[int | None, int | None]:
        """(increase since base or None if the read failed, the new base).
        A failed read keeps the base: the next good read counts both
        intervals' increase."""
        try:
            value = _counter_value(fn(), what, w.name)
        except Exception as exc:
            failures.append((f"the {what} counter of {w.name!r} ({_callable_name(fn)})",
                             exc, None, now))
            return None, base
        if base is None or value < base:    # a decrease: the counter was reset
            return value, value
        return value - base, value

    def _evaluate(self, snapshots: Mapping[str, Snapshot], now: float) -> list[Alert]:
        alerts = []
        for state in self._rules:
            rule = state.rule
            snapshot = snapshots.get(rule.name)
            if snapshot is None:
                continue
            # The watch computes every percentile its rules ask for.
            value = state.expression.measure(snapshot)
            if math.isnan(value):
                continue         # no data: the state stands
            if not rule.holds(value):
                state.good = 0
                if not state.firing:
                    state.firing = True
                    alerts.append(Alert(rule.name, rule.metric, rule.op, rule.threshold, value,
                                        "firing", now))
            elif state.firing:
                state.good += 1
                if state.good >= rule.clear_after:
                    state.firing = False
                    state.good = 0
                    alerts.append(Alert(rule.name, rule.metric, rule.op, rule.threshold, value,
                                        "resolved", now))
        return alerts

    def _call(self, callback: Callable[[_T], object], arg: _T, alert: Alert | None,
              failures: list[_Failure]) -> None:
        try:
            callback(arg)
        except Exception as exc:
            failures.append((_callable_name(callback), exc, alert,
                             alert.time if alert is not None else self._now()))

    def _now(self) -> float:
        try:
            return float(self._clock())
        except Exception:
            return math.nan

    def _report(self, failures: list[_Failure]) -> None:
        with self._lock:
            for what, exc, alert, when in failures:
                self._errors.append(CallbackError(what, type(exc).__name__, str(exc), alert, when))
        for what, exc, alert, _ in failures:
            context = f" delivering {alert!r}" if alert is not None else ""
            logger.error("%s raised %s: %s%s; monitoring continues", what,
                         type(exc).__name__, exc, context, exc_info=exc)

    # -- the background thread ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start a daemon thread that polls every ``interval`` seconds.
        RuntimeError if already running."""
        with self._thread_lock:
            if self._thread is not None:
                raise RuntimeError("the monitor is already running: stop() it first")
            self._stop = threading.Event()
            thread = threading.Thread(target=self._run, args=(self._stop,),
                                      name="caxton_meter-monitor", daemon=True)
            self._thread = thread
            thread.start()

    def stop(self) -> Mapping[str, Snapshot]:
        """Stop the thread (joined) and take a final snapshot, returned.
        RuntimeError if not running.  From a callback (inside a poll, where
        joining could deadlock) it only tells the thread to end and returns
        the latest snapshots."""
        with self._thread_lock:
            thread = self._thread
            if thread is None:
                raise RuntimeError("the monitor is not running: start() it first")
            self._stop.set()
            self._thread = None
        if getattr(self._polling, "depth", 0):
            return self.latest
        thread.join()
        return self.poll()

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread is not None:
            self.stop()

    def _run(self, stop: threading.Event) -> None:
        interval = self._interval
        t0 = time.monotonic()
        k = 1
        while True:
            # Paced on the intended tick times: a slow poll or a late wake-up
            # does not shift the ticks after it; ticks already past are skipped.
            delay = t0 + k * interval - time.monotonic()
            if stop.wait(delay) if delay > 0 else stop.is_set():
                return
            try:
                self.poll()
            except Exception:
                logger.exception("a monitor poll failed; monitoring continues")
            k = max(k + 1, math.floor((time.monotonic() - t0) / interval) + 1)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        with self._lock:
            names = ", ".join(self._watches)
        return (f"<Monitor interval={self._interval:g}s watches=[{names}] "
                f"rules={len(self._rules)} {state}>")

    # -- exposition ---------------------------------------------------------------------

    def _families(self, with_samples: bool = True) -> list[_Family]:
        """The metric families, from the latest snapshots: the one source of
        both exposition() and the prometheus_client collector."""
        ns = self._namespace
        latency: list[tuple[str, dict[str, str], float]] = []
        latency_max: list[tuple[str, dict[str, str], float]] = []
        requests: list[tuple[str, dict[str, str], float]] = []
        overflow: list[tuple[str, dict[str, str], float]] = []
        errors: list[tuple[str, dict[str, str], float]] = []
        rate: list[tuple[str, dict[str, str], float]] = []
        error_ratio: list[tuple[str, dict[str, str], float]] = []
        firing: list[tuple[str, dict[str, str], float]] = []
        with self._lock:
            for w in self._watches.values() if with_samples else ():
                s = self._latest.get(w.name)
                if s is None:
                    continue            # a watch appears with its first snapshot
                labels = {"name": w.name}
                empty = s.count == 0
                for q, value in zip(_QUANTILE_LABELS, (s.p50, s.p90, s.p99, s.p999)):
                    latency.append((f"{ns}_latency_seconds", {"name": w.name, "quantile": q},
                                    math.nan if empty else value / 1e9))
                latency.append((f"{ns}_latency_seconds_sum", labels, w.total_sum_ns / 1e9))
                latency.append((f"{ns}_latency_seconds_count", labels, float(w.total_count)))
                latency_max.append((f"{ns}_latency_max_seconds", labels,
                                    math.nan if empty else s.max / 1e9))
                requests.append((f"{ns}_requests_total", labels, float(w.total_requests)))
                overflow.append((f"{ns}_latency_overflow_total", labels,
                                 float(w.total_overflow)))
                rate.append((f"{ns}_requests_per_second", labels, s.throughput))
                if w.errors is not None:
                    errors.append((f"{ns}_errors_total", labels, float(w.total_errors)))
                    error_ratio.append((f"{ns}_error_ratio", labels, s.error_rate))
            for state in self._rules if with_samples else ():
                firing.append((f"{ns}_alert_firing",
                               {"name": state.rule.name, "threshold": state.rule.expression},
                               1.0 if state.firing else 0.0))
        families: list[_Family] = [
            (f"{ns}_latency_seconds", "summary",
             "Latency: quantiles over the latest interval; _sum and _count since the watch "
             "began.", latency),
            (f"{ns}_latency_max_seconds", "gauge", "Largest latency in the latest interval.",
             latency_max),
            (f"{ns}_requests", "counter", "Requests since the watch began.", requests),
            (f"{ns}_latency_overflow", "counter",
             "Latencies above the recorder's range since the watch began (not in the "
             "quantiles).", overflow),
            (f"{ns}_errors", "counter", "Errors since the watch began.", errors),
            (f"{ns}_requests_per_second", "gauge", "Requests per second over the latest "
             "interval.", rate),
            (f"{ns}_error_ratio", "gauge", "Errors / requests over the latest interval.",
             error_ratio),
            (f"{ns}_alert_firing", "gauge", "1 while the threshold's alert is firing, else 0.",
             firing),
        ]
        if not with_samples:
            return families
        return [f for f in families if f[3]]

    def exposition(self) -> str:
        """The current metrics in the Prometheus text format 0.0.4 (serve it
        with Content-Type :data:`CONTENT_TYPE`).  The same samples as the
        prometheus_client collector of :meth:`register`."""
        out = []
        for name, kind, help_text, samples in self._families():
            family = name + "_total" if kind == "counter" else name
            out.append(f"# HELP {family} {_escape_help(help_text)}\n")
            out.append(f"# TYPE {family} {kind}\n")
            for sample, labels, value in samples:
                label_text = ",".join(f'{k}="{_escape_label(v)}"'
                                      for k, v in sorted(labels.items()))
                braces = "{" + label_text + "}" if label_text else ""
                out.append(f"{sample}{braces} {_go_float(value)}\n")
        return "".join(out)

    def register(self, registry: CollectorRegistry | None = None) -> Collector:
        """Register a collector of this monitor's metrics on ``registry``
        (prometheus_client's default REGISTRY when None) and return it (to
        unregister).  ImportError when prometheus_client is not installed."""
        try:
            from prometheus_client import REGISTRY
            from prometheus_client.core import (
                CounterMetricFamily,
                GaugeMetricFamily,
                Metric,
                SummaryMetricFamily,
            )
            from prometheus_client.registry import Collector
        except ImportError as e:
            raise ImportError("Monitor.register() needs prometheus_client: "
                              "pip install 'caxton_meter[prometheus]' (or use "
                              "Monitor.exposition(), which needs nothing)") from e
        monitor = self
        classes: dict[str, Callable[[str, str], Metric]] = {"counter": CounterMetricFamily,
                                            "gauge": GaugeMetricFamily,
                                            "summary": SummaryMetricFamily}

        def build(with_samples: bool) -> list[Metric]:
            metrics = []
            for name, kind, help_text, samples in monitor._families(with_samples):
                family = classes[kind](name, help_text)
                for sample, labels, value in samples:
                    family.add_sample(sample, dict(labels), value)
                metrics.append(family)
            return metrics

        class MonitorCollector(Collector):
            """The metrics of a caxton_meter Monitor (its latest snapshots)."""

            def collect(self) -> Iterable[Metric]:
                return build(True)

            def describe(self) -> Iterable[Metric]:
                return build(False)

        collector = MonitorCollector()
        (REGISTRY if registry is None else registry).register(collector)
        return collector


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _go_float(value: float) -> str:
    """A float as Prometheus' text format writes it (Go's formatting, as
    prometheus_client's floatToGoString)."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    s = repr(float(value))
    dot = s.find(".")
    if value > 0 and dot > 6:       # Go switches to an exponent sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s
