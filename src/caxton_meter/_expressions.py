"""The one threshold grammar, in k6's style: ``"p(99) < 10ms"``, ``"avg < 2ms"``,
``"throughput >= 50K/s"``, ``"error_rate < 1%"``, ``"memory_per_agent < 10MB"``.

An expression is ``<metric> <operator> <quantity>``:

* the metric is a name of a :class:`MetricSet` -- each user of the grammar
  has its own: the pytest plugin :data:`PLUGIN_METRICS`, the monitor
  (``caxton_meter._monitor.MONITOR_METRICS``), a run's scenario results
  (:func:`scenario_metrics`).  In a set that has percentiles, ``p(N)`` is
  the N-th percentile, 0 <= N <= 100, also written ``pN``: ``p99``,
  ``p99.9``, ``p(99.9)``.  The digits are the percentile as written, in
  every set: ``p999`` is refused ("write p99.9 or p(99.9)"), not read as
  99.9, so that no spelling means one thing here and another there;
* the operator is one of ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``: the
  condition that must hold (k6's ``===`` is read as ``==``);
* the quantity is read by :func:`caxton_meter._units.parse_quantity` in the
  metric's kind of quantity (``10ms`` for a time, ``50K/s`` for a rate,
  ``1%`` for a ratio, ``512MB`` for a size, ``50%`` for CPU); counts are
  plain numbers.  A time written without a unit is in milliseconds, as k6
  reads it (``p(95)<200`` is 200 ms), so that a threshold copied from k6
  keeps its meaning.

:meth:`MetricSet.parse` (for the plugin, :func:`parse_threshold`) turns
the text into an immutable :class:`ThresholdExpression` whose value is in
base units (ns, per second, bytes, percent, a fraction, a count);
:class:`ThresholdExpressionError` shows the expression with a caret under
what is wrong and, for an unknown metric or unit, lists the valid ones.
:meth:`ThresholdExpression.evaluate` checks it against what its set
measures: for the plugin a :class:`Measurement` (a histogram of latencies
in ns and counts), for scenarios a :class:`~caxton_meter._model.ScenarioResult`,
for the monitor a ``Snapshot``; or, for any set, a mapping of metric labels
(``"p(99)"``, ``"avg"``, ``"latency_p99"``...) to values.
"""
from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Union

from ._checks import ArgumentError, ArgumentTypeError, did_you_mean
from ._core import CaxtonMeterError, Histogram
from ._units import BASE_UNITS, KINDS, UnitError, format_quantity, parse_quantity

if TYPE_CHECKING:
    from ._model import Kind, Metric, MetricSpec

__all__ = [
    "METRICS",
    "OPERATORS",
    "PLUGIN_METRICS",
    "QUANTITY_KINDS",
    "Evaluation",
    "Measurement",
    "MetricSet",
    "MissingMeasurementError",
    "ThresholdExpression",
    "ThresholdExpressionError",
    "ThresholdMetric",
    "format_value",
    "parse_threshold",
    "read_mapping",
    "scenario_metrics",
]

QUANTITY_KINDS = ("time", "rate", "size", "percent", "ratio", "count")
"""The kinds of quantity a metric takes: those of :data:`caxton_meter._units.KINDS`
and ``count``, a plain number."""

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
"""The comparison operators."""

_OPERATOR_LIST = ", ".join(OPERATORS)
_UNITS = dict(KINDS, count="a plain number (1000, 1.5e3)")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A metric's name; a point of a series after an "@" ("throughput@100").
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:@[A-Za-z0-9_.]+)?")
_SHORT_PERCENTILE = re.compile(r"p([0-9]+(?:\.[0-9]+)?)(?![A-Za-z0-9_.@])")


class ThresholdExpressionError(CaxtonMeterError, ValueError):
    """A threshold expression that cannot be read.  The message names the
    problem, shows the expression with carets under the bad part, and says
    what would be valid.  ``expression``, ``position`` (0-based) and
    ``problem`` are kept for callers that format their own message."""

    def __init__(self, expression: str, position: int, problem: str, *, length: int = 1,
                 hint: str | None = None) -> None:
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        self.problem = problem
        self.hint = hint
        caret = " " * self.position + "^" * max(1, length)
        lines = [f"invalid threshold expression: {problem}", f"    {expression}",
                 f"    {caret}"]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class MissingMeasurementError(CaxtonMeterError, LookupError):
    """The measurement has no value for the expression's metric (nothing
    recorded, no resource profile for ``rss``/``cpu``, a metric the result
    does not hold)."""


# -- metric sets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdMetric:
    """A metric an expression may name in one :class:`MetricSet`.

    name: the canonical name, the same in every set for the same figure
        (``"avg"`` is the mean latency wherever it is offered); ``"p"`` is
        the percentiles, written ``p(N)``.
    kind: its kind of quantity, one of :data:`QUANTITY_KINDS`.
    help: what it is, in a few words.
    aliases: other spellings (``"mean"`` for ``avg``).
    label: what the set's measurements call it (a mapping's key, the
        metric in an alert); the name by default.
    unit: the base unit its values are written in (``format_quantity``);
        by default the kind's (``ns``, ``/s``, ``bytes``...), or a unit of
        the same kind, such as ``msg/s``.
    scale: what a measured value is multiplied by to be in the kind's base
        unit (1e9 for a duration measured in seconds).
    """
    name: str
    kind: str
    help: str = ""
    aliases: tuple[str, ...] = ()
    label: str | None = None
    unit: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ArgumentError(f"ThresholdMetric: name must be a word (letters, digits, _; "
                                f"a series point after @), got {self.name!r}")
        if self.kind not in QUANTITY_KINDS:
            raise ArgumentError(f"ThresholdMetric {self.name!r}: kind must be one of "
                                f"{', '.join(QUANTITY_KINDS)}, got {self.kind!r}"
                                f"{did_you_mean(str(self.kind), QUANTITY_KINDS)}")
        for alias in self.aliases:
            if not isinstance(alias, str) or not _NAME.fullmatch(alias):
                raise ArgumentError(f"ThresholdMetric {self.name!r}: alias {alias!r} is not "
                                    "a word")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) \
                or not (math.isfinite(self.scale) and self.scale > 0):
            raise ArgumentError(f"ThresholdMetric {self.name!r}: scale must be a finite "
                                f"number > 0, got {self.scale!r}")
        if self.label is None:
            object.__setattr__(self, "label", self.name)
        if self.unit is None:
            object.__setattr__(self, "unit", BASE_UNITS[self.kind])


Reader = Callable[["ThresholdExpression", Any], float]


def _parenthesised(percentile: float) -> str:
    return f"p({percentile:g})"


class MetricSet:
    """The metrics one user of the grammar offers, and how a value is read
    from that user's measurement.

    name: what the set is for ("plugin", "monitor", "scenario"), in messages.
    metrics: the :class:`ThresholdMetric` entries, in the order messages
        list them; one named ``"p"`` gives the set percentiles.
    read: ``read(expression, measurement)`` -> the metric's value in base
        units (NaN when the measurement has no data for it, where that
        is not an error); MissingMeasurementError when the measurement
        lacks it; TypeError for a measurement of the wrong type.
    percentile_label: a percentile's label (``p(99)`` by default).

    ArgumentError for a name or alias given twice."""

    def __init__(self, name: str, metrics: Iterable[ThresholdMetric], *, read: Reader,
                 percentile_label: Callable[[float], str] = _parenthesised) -> None:
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"MetricSet: name must be a non-empty str, got {name!r}")
        if not callable(read) or not callable(percentile_label):
            raise ArgumentTypeError(f"MetricSet {name!r}: read and percentile_label must be "
                                    "callable")
        self.name = name
        self._metrics: dict[str, ThresholdMetric] = {}
        self._spellings: dict[str, str] = {}
        for m in metrics:
            if not isinstance(m, ThresholdMetric):
                raise ArgumentTypeError(f"MetricSet {name!r}: metrics must be ThresholdMetric "
                                        f"entries, not {type(m).__name__}")
            for spelling in (m.name, *m.aliases):
                if spelling in self._spellings:
                    raise ArgumentError(f"MetricSet {name!r}: {spelling!r} names both "
                                        f"{self._spellings[spelling]!r} and {m.name!r}")
                self._spellings[spelling] = m.name
            self._metrics[m.name] = m
        if not self._metrics:
            raise ArgumentError(f"MetricSet {name!r}: no metrics")
        self._read = read
        self._percentile_label = percentile_label

    # -- the metrics ---------------------------------------------------------------------

    @property
    def metrics(self) -> Mapping[str, ThresholdMetric]:
        """The entries by canonical name."""
        return MappingProxyType(self._metrics)

    @property
    def percentiles(self) -> bool:
        """Whether ``p(N)`` may be named."""
        return "p" in self._metrics

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def __getitem__(self, name: str) -> ThresholdMetric:
        try:
            return self._metrics[name]
        except KeyError:
            raise KeyError(f"no metric {name!r} in the {self.name} set"
                           f"{did_you_mean(name, self._spellings)}; metrics: "
                           f"{self.listing()}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._metrics)

    def __len__(self) -> int:
        return len(self._metrics)

    def __repr__(self) -> str:
        return f"<MetricSet {self.name}: {self.listing()}>"

    def listing(self) -> str:
        """The metrics as messages list them: ``p(N), avg, max...``."""
        return ", ".join("p(N)" if name == "p" else name for name in self._metrics)

    def label(self, metric: str, percentile: float | None = None) -> str:
        """How this set shows ``metric`` (a canonical name), and looks it up
        in a measurement: ``p(99)``, ``avg``, ``latency_p99``."""
        if metric == "p":
            if percentile is None:
                raise ArgumentError("the metric 'p' needs a percentile")
            return self._percentile_label(percentile)
        return self[metric].label  # type: ignore[return-value]

    # -- reading -------------------------------------------------------------------------

    def parse(self, text: str) -> ThresholdExpression:
        """Read ``text`` (``"p(99) < 10ms"``) into a :class:`ThresholdExpression`
        of this set.  ThresholdExpressionError, with a caret under the bad
        part, for anything else; TypeError for a non-str."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"a threshold expression must be a str, "
                                    f"not {type(text).__name__}")
        cur = _Cursor(text)
        cur.skip_space()
        if cur.at_end():
            raise cur.error("the expression is empty", hint=self._grammar_hint())
        metric, percentile = self._metric(cur)
        cur.skip_space()
        op = self._operator(cur)
        cur.skip_space()
        value = self._quantity(cur, metric, percentile, op)
        return ThresholdExpression(text, metric, percentile, op, value, metric_set=self)

    def metric(self, text: str) -> tuple[str, float | None]:
        """Read a metric alone (``"p99"``, ``"mean"``): (canonical name,
        percentile or None).  ThresholdExpressionError as :meth:`parse`."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"a metric must be a str, not {type(text).__name__}")
        cur = _Cursor(text)
        cur.skip_space()
        if cur.at_end():
            raise cur.error("expected a metric", hint=f"metrics: {self.listing()}")
        metric, percentile = self._metric(cur)
        cur.skip_space()
        if not cur.at_end():
            raise cur.error(f"unexpected {cur.text[cur.pos:].rstrip()!r} after the metric",
                            length=len(cur.text[cur.pos:].rstrip()),
                            hint=f"give the metric alone, as '{self._example_metric()}'")
        return metric, percentile

    def build(self, metric: str, op: str, value: float | str) -> ThresholdExpression:
        """The expression ``metric op value`` from its parts: ``metric`` as
        :meth:`metric` reads it, ``op`` one of :data:`OPERATORS`, ``value``
        a quantity string ("10ms") or a number in base units.  Its text is
        the canonical one (:attr:`ThresholdExpression.canonical`)."""
        name, percentile = self.metric(metric)
        if not isinstance(op, str) or op not in OPERATORS:
            hint = did_you_mean(op, OPERATORS) if isinstance(op, str) else ""
            raise ArgumentError(f"unknown operator {op!r}; operators: {_OPERATOR_LIST}{hint}")
        entry = self._metrics[name]
        label = self.label(name, percentile)
        if isinstance(value, str):
            cur = _Cursor(value)
            cur.skip_space()
            bound = self._quantity(cur, name, percentile, op)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            bound = float(value)
            if not (math.isfinite(bound) and bound >= 0):
                raise ArgumentError(f"threshold {label} {op}: the value must be a finite "
                                    f"number >= 0 (in {_base_name(entry.kind)}), got {value!r}")
        else:
            raise ArgumentTypeError(f"threshold {label} {op}: the value must be a number in "
                                    f"{_base_name(entry.kind)} or a string with a unit, "
                                    f"not {type(value).__name__}")
        text = f"{label} {op} {format_quantity(bound, entry.unit or '', exact=True)}"
        return ThresholdExpression(text, name, percentile, op, bound, metric_set=self)

    def read(self, expression: ThresholdExpression, measurement: Any) -> float:
        """The value of ``expression``'s metric in ``measurement``, in base
        units (the set's reader)."""
        return float(self._read(expression, measurement))

    # -- the parser's parts --------------------------------------------------------------

    def _grammar_hint(self) -> str:
        return (f"expected <metric> <operator> <value>, as '{self._example_metric()} < 10ms'; "
                f"metrics: {self.listing()}; operators: {_OPERATOR_LIST}")

    def _example_metric(self) -> str:
        return "p(99)" if self.percentiles else next(iter(self._metrics))

    def _metric(self, cur: _Cursor) -> tuple[str, float | None]:
        start = cur.pos
        short = _SHORT_PERCENTILE.match(cur.text, start) if self.percentiles else None
        if short:
            cur.pos = short.end()
            return "p", _percentile(cur, short.group(1), start + 1)
        m = _NAME.match(cur.text, start)
        if m is None:
            end = start
            while end < len(cur.text) and not cur.text[end].isspace() \
                    and cur.text[end] not in "<>=!":
                end += 1
            raise cur.error("expected a metric", start, length=max(1, end - start),
                            hint=f"metrics: {self.listing()}")
        word = m.group(0)
        name = self._spellings.get(word) or self._spellings.get(word.lower())
        if name is None and word == "rate":
            raise cur.error(
                "k6's 'rate' depends on the metric it is set on, which an expression here "
                "does not name", start, length=4,
                hint="for a k6 Rate (http_req_failed: rate<0.01) write error_rate < 0.01; "
                     "for a Counter's count per second (http_reqs: rate>100) write "
                     "throughput > 100/s")
        if name is None:
            end = m.end()        # the whole token: "p98.5.1", not "p98"
            while end < len(cur.text) and not cur.text[end].isspace() \
                    and cur.text[end] not in "<>=!(":
                end += 1
            word = cur.text[start:end]
            raise cur.error(f"unknown metric {word!r}{self._suggest(word)}", start,
                            length=len(word), hint=f"metrics: {self.listing()}")
        cur.pos = m.end()
        cur.skip_space()
        has_paren = not cur.at_end() and cur.text[cur.pos] == "("
        if name != "p":
            if has_paren:
                only = " (only p(N) does)" if self.percentiles else ""
                raise cur.error(f"{name} takes no argument{only}")
            return name, None
        if not has_paren:
            raise cur.error("p needs a percentile in parentheses, as p(99)",
                            cur.pos if not cur.at_end() else len(cur.text))
        cur.pos += 1
        cur.skip_space()
        num = _NUMBER.match(cur.text, cur.pos)
        if num is None:
            raise cur.error("expected a percentile (a number from 0 to 100)")
        number_at = cur.pos
        cur.pos = num.end()
        percentile = _percentile(cur, num.group(0), number_at)
        cur.skip_space()
        if cur.at_end() or cur.text[cur.pos] != ")":
            raise cur.error("expected ')' after the percentile")
        cur.pos += 1
        return "p", percentile

    def _suggest(self, word: str) -> str:
        # A scenario names its percentiles (latency_p99): point "p99" there.
        ends = [n for n in self._metrics if n.endswith("_" + word.lower())]
        if ends:
            return f" (did you mean {ends[0]!r}?)"
        return did_you_mean(word, self._spellings)

    def _operator(self, cur: _Cursor) -> str:
        if cur.at_end():
            raise cur.error(f"expected a comparison operator ({_OPERATOR_LIST}) after the "
                            "metric", hint=self._grammar_hint())
        for op in ("<=", ">=", "==", "!=", "<", ">"):
            if cur.text.startswith(op, cur.pos):
                if op == "==" and cur.text.startswith("===", cur.pos):
                    cur.pos += 3                  # k6's strict equality: the same here
                    return op
                cur.pos += len(op)
                return op
        if cur.text.startswith("=<", cur.pos) or cur.text.startswith("=>", cur.pos):
            raise cur.error(f"{cur.text[cur.pos:cur.pos + 2]!r} is not an operator; write "
                            f"{cur.text[cur.pos + 1] + '='!r}", length=2)
        if cur.text.startswith("=", cur.pos):
            raise cur.error("'=' is not an operator; write '==' to compare for equality")
        end = cur.pos
        while end < len(cur.text) and not cur.text[end].isspace():
            end += 1
        raise cur.error(f"expected a comparison operator ({_OPERATOR_LIST})",
                        length=end - cur.pos, hint=self._grammar_hint())

    def _quantity(self, cur: _Cursor, metric: str, percentile: float | None, op: str) -> float:
        kind = self._metrics[metric].kind
        label = self.label(metric, percentile)
        start = cur.pos
        body = cur.text[start:].rstrip()
        if not body:
            raise cur.error(f"expected a value after {op!r}",
                            hint=f"{label} is a {_kind_name(kind)}: {_UNITS[kind]}")
        num = _NUMBER.match(body)
        if num is None:
            word = body.split()[0]
            raise cur.error(f"expected a number after {op!r}, got {word!r}", start,
                            length=len(word),
                            hint=f"{label} is a {_kind_name(kind)}: {_UNITS[kind]}")
        unit_at = start + num.end()
        unit = body[num.end():]
        unit_offset = len(unit) - len(unit.lstrip())
        if kind == "count":
            if unit.strip():
                raise cur.error(f"{label} is a count: it takes no unit, got {unit.strip()!r}",
                                unit_at + unit_offset, length=len(unit.strip()))
            return float(num.group(0))
        if kind == "time" and not unit.strip():
            # k6 reads a bare number on a time as milliseconds ("p(95)<200"
            # is 200 ms): a threshold pasted from k6 means what it meant there
            return float(num.group(0)) * 1e6
        try:
            return parse_quantity(body, kind)
        except UnitError:
            raise cur.error(f"unknown unit {unit.strip()!r} for {label}, a {_kind_name(kind)}",
                            unit_at + unit_offset, length=len(unit.strip()),
                            hint=f"valid: {_UNITS[kind]}") from None


def _percentile(cur: _Cursor, digits: str, at: int) -> float:
    value = float(digits)
    if not 0.0 <= value <= 100.0:
        problem = f"percentile {digits} is out of range: it must be from 0 to 100"
        if "." not in digits and digits.startswith("99"):
            # p999 is p99.9 in some tools and p(999) elsewhere: refused, not guessed.
            meant = f"{digits[:2]}.{digits[2:]}"
            problem += f"; write p{meant} or p({meant})"
        raise cur.error(problem, at, length=len(digits))
    return value


def _kind_name(kind: str) -> str:
    return {"time": "time", "rate": "rate", "size": "size", "percent": "percentage of CPU",
            "ratio": "ratio", "count": "count"}[kind]


def _base_name(kind: str) -> str:
    return {"time": "ns", "rate": "events per second", "size": "bytes", "percent": "percent",
            "ratio": "a fraction", "count": "a count"}[kind]


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def error(self, problem: str, position: int | None = None, *, length: int = 1,
              hint: str | None = None) -> ThresholdExpressionError:
        return ThresholdExpressionError(self.text, self.pos if position is None else position,
                                        problem, length=length, hint=hint)


# -- expressions -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluation:
    """The outcome of one expression against one measurement."""
    expression: ThresholdExpression
    actual: float
    passed: bool

    def describe(self, name: str) -> str:
        """``threshold 'p(99) < 10ms' failed for <name>: p(99) = 12.3 ms``
        (``passed`` instead of ``failed`` when it passed)."""
        verdict = "passed" if self.passed else "failed"
        e = self.expression
        return (f"threshold {e.text!r} {verdict} for {name}: "
                f"{e.label} = {format_quantity(self.actual, e.unit)}")


@dataclass(frozen=True)
class ThresholdExpression:
    """A parsed threshold: ``metric`` (a canonical name of its set; aliases
    resolved; ``"p"`` for a percentile), ``percentile`` (for ``p`` only),
    ``operator`` (a key of :data:`OPERATORS`) and ``value`` in the metric's
    base unit (ns, per second, bytes, percent, a fraction, a count).
    ``text`` is the expression as written; ``metric_set`` the set it was
    read in (the plugin's by default)."""
    text: str
    metric: str
    percentile: float | None
    operator: str
    value: float
    metric_set: MetricSet = field(default_factory=lambda: PLUGIN_METRICS, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.metric_set, MetricSet):
            raise ArgumentTypeError(f"metric_set must be a MetricSet, "
                                    f"not {type(self.metric_set).__name__}")
        if self.metric not in self.metric_set:
            raise ArgumentError(f"unknown metric {self.metric!r}"
                                f"{did_you_mean(str(self.metric), self.metric_set)}; "
                                f"metrics: {self.metric_set.listing()}")
        if (self.metric == "p") != (self.percentile is not None):
            raise ArgumentError("a percentile is given with metric 'p' and only with it")
        if self.operator not in OPERATORS:
            raise ArgumentError(f"unknown operator {self.operator!r}; operators: "
                                f"{_OPERATOR_LIST}")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise ArgumentTypeError(f"value must be a number, not {type(self.value).__name__}")

    @property
    def kind(self) -> str:
        """The metric's kind of quantity: time, rate, size, percent, ratio or count."""
        return self.metric_set[self.metric].kind

    @property
    def unit(self) -> str:
        """The base unit of the value (``ns``, ``/s``, ``msg/s``, ``bytes``...)."""
        return self.metric_set[self.metric].unit or ""

    @property
    def label(self) -> str:
        """The metric as shown in messages and looked up in a mapping: ``p(99)``."""
        return self.metric_set.label(self.metric, self.percentile)

    @property
    def canonical(self) -> str:
        """The expression in its set's words, exactly: ``p99 < 10ms``, the
        same for every spelling of it (``p(99)<1e7ns``, ``p99 < 10``)."""
        return f"{self.label} {self.operator} {format_quantity(self.value, self.unit, exact=True)}"

    def measure(self, measurement: Any) -> float:
        """The metric's value in ``measurement``, in base units, read by the
        set's reader.  MissingMeasurementError when the measurement does
        not have it."""
        return self.metric_set.read(self, measurement)

    def holds(self, actual: float) -> bool:
        """Whether ``actual`` (in base units) satisfies the expression; NaN never does."""
        return not math.isnan(actual) and OPERATORS[self.operator](actual, self.value)

    def evaluate(self, measurement: Any) -> Evaluation:
        """Whether the measurement satisfies the expression (NaN never
        does).  MissingMeasurementError when the metric was not measured."""
        actual = self.measure(measurement)
        return Evaluation(self, actual, self.holds(actual))

    def __str__(self) -> str:
        return self.text


def read_mapping(expression: ThresholdExpression, values: Mapping[str, float],
                 *also: str) -> float:
    """The value under the expression's label (or one of ``also``) in
    ``values``, times the metric's scale.  MissingMeasurementError listing
    the keys there are; TypeError for a value that is not a number."""
    for key in (expression.label, *also):
        if key in values:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentTypeError(f"measurement[{key!r}] must be a number, "
                                        f"not {type(value).__name__}")
            return float(value) * expression.metric_set[expression.metric].scale
    raise MissingMeasurementError(f"{expression.label}: not in the measurement (it has "
                                  f"{', '.join(map(repr, values)) or 'nothing'})")


# -- the pytest plugin's set -----------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    """What a threshold of the pytest plugin is checked against.

    histogram: latencies (or per-call times) in ns; None when no time was
        recorded (a resources-only measurement).
    count: values recorded: calls timed or requests completed.
    errors: calls or requests that raised.
    throughput: calls or completed requests per second; None if unknown.
    rss_peak: the peak resident set size in bytes, when resources were sampled.
    cpu_percent: the mean CPU % (100 is one core), when resources were sampled.
    """
    histogram: Histogram | None = None
    count: int = 0
    errors: int = 0
    throughput: float | None = None
    rss_peak: int | None = None
    cpu_percent: float | None = None

    @property
    def error_rate(self) -> float:
        ended = self.count + self.errors
        return self.errors / ended if ended else 0.0


def _read_measurement(expr: ThresholdExpression,
                      measurement: Measurement | Mapping[str, float]) -> float:
    if isinstance(measurement, Mapping):
        return read_mapping(expr, measurement, *(["p(50)"] if expr.metric == "med" else []))
    if not isinstance(measurement, Measurement):
        raise ArgumentTypeError(f"measurement must be a Measurement or a mapping of metric "
                                f"labels to values, not {type(measurement).__name__}")
    m = measurement
    metric = expr.metric
    if expr.kind == "time":
        h = m.histogram
        if h is None or h.total_count == 0:
            raise MissingMeasurementError(f"{expr.label}: no time was recorded")
        if metric == "p":
            assert expr.percentile is not None
            return float(h.value_at_percentile(expr.percentile))
        if metric == "med":
            return float(h.value_at_percentile(50.0))
        return float({"avg": h.mean, "min": h.min, "max": h.max, "stdev": h.stdev}[metric])
    if metric == "count":
        return float(m.count)
    if metric == "errors":
        return float(m.errors)
    if metric == "error_rate":
        return m.error_rate
    if metric == "throughput":
        if m.throughput is None:
            raise MissingMeasurementError("throughput: no rate was measured")
        return float(m.throughput)
    if metric == "rss":
        if m.rss_peak is None:
            raise MissingMeasurementError("rss: resources were not sampled")
        return float(m.rss_peak)
    if m.cpu_percent is None:
        raise MissingMeasurementError("cpu: resources were not sampled (or the window "
                                      "was too short for a CPU figure)")
    return float(m.cpu_percent)


PLUGIN_METRICS: MetricSet = MetricSet("plugin", (
    ThresholdMetric("p", "time", "p(N): the N-th percentile of the latencies, 0 <= N <= 100"),
    ThresholdMetric("avg", "time", "the mean latency", aliases=("mean", "average")),
    ThresholdMetric("med", "time", "the median latency, p(50)", aliases=("median",)),
    ThresholdMetric("min", "time", "the smallest latency"),
    ThresholdMetric("max", "time", "the largest latency"),
    ThresholdMetric("stdev", "time", "the standard deviation of the latencies"),
    ThresholdMetric("count", "count", "calls timed, or requests completed"),
    ThresholdMetric("throughput", "rate", "calls (or completed requests) per second"),
    ThresholdMetric("errors", "count", "calls or requests that raised"),
    ThresholdMetric("error_rate", "ratio", "errors / (count + errors)"),
    ThresholdMetric("rss", "size", "the peak resident memory of the process"),
    ThresholdMetric("cpu", "percent", "the mean CPU of the process (100% is one core)"),
), read=_read_measurement)
"""The pytest plugin's metrics, read from a :class:`Measurement` (or a
mapping of labels: ``"p(99)"``, ``"avg"``...)."""

METRICS: Mapping[str, ThresholdMetric] = PLUGIN_METRICS.metrics
"""The plugin's metrics by canonical name, with their kind of quantity."""


def parse_threshold(text: str, metrics: MetricSet = PLUGIN_METRICS) -> ThresholdExpression:
    """Read ``text`` (``"p(99) < 10ms"``) into a :class:`ThresholdExpression`
    of ``metrics`` (the pytest plugin's set by default).
    ThresholdExpressionError, with a caret under the bad part, for anything
    else; TypeError for a non-str."""
    if not isinstance(metrics, MetricSet):
        raise ArgumentTypeError(f"metrics must be a MetricSet, not {type(metrics).__name__}")
    return metrics.parse(text)


def format_value(value: float, kind: str) -> str:
    """``value`` (in the base unit of ``kind``, one of :data:`QUANTITY_KINDS`)
    for a message: ``12.3 ms``, ``52.1K/s``, ``0.5 %``, ``128 MB``,
    ``1,000``.  :func:`caxton_meter._units.format_quantity` with the kind's
    base unit."""
    if kind not in BASE_UNITS:
        raise ArgumentError(f"unknown kind of quantity {kind!r}; kinds: "
                            f"{', '.join(QUANTITY_KINDS)}{did_you_mean(str(kind), BASE_UNITS)}")
    return format_quantity(value, BASE_UNITS[kind])


# -- scenario results ------------------------------------------------------------------------

# The kind of quantity of a metric's unit, and the factor to its base unit.
_UNIT_QUANTITY: Mapping[str, tuple[str, float]] = {
    "ns": ("time", 1.0), "us": ("time", 1e3), "µs": ("time", 1e3), "ms": ("time", 1e6),
    "s": ("time", 1e9), "bytes": ("size", 1.0), "percent": ("percent", 1.0),
    "%": ("percent", 1.0), "ratio": ("ratio", 1.0),
}


def _quantity_of(name: str, unit: str, kind: Kind | None) -> tuple[str, float, str]:
    """(kind of quantity, scale to its base unit, base unit to write it in)
    for a metric in ``unit`` declared as ``kind``; ArgumentError when the
    two disagree (a latency in msg/s)."""
    if not isinstance(unit, str):
        raise ArgumentTypeError(f"metric {name!r}: unit must be a str, not {type(unit).__name__}")
    if unit in _UNIT_QUANTITY:
        quantity, scale = _UNIT_QUANTITY[unit]
        base = BASE_UNITS[quantity]
    elif unit.endswith("/s"):          # msg/s, tasks/s, bytes/s: read as "50K/s"
        quantity, scale, base = "rate", 1.0, unit
    else:                              # messages, agents, bool, "": a plain number
        quantity, scale, base = "count", 1.0, ""
    if kind is not None:
        from ._model import Kind
        fits = {Kind.THROUGHPUT: ("rate",), Kind.LATENCY: ("time",), Kind.DURATION: ("time",),
                Kind.MEMORY: ("size", "rate"), Kind.CPU: ("percent",),
                Kind.RATIO: ("ratio", "percent"), Kind.COUNT: QUANTITY_KINDS,
                Kind.FLAG: ("count",)}[kind]
        if quantity not in fits:
            raise ArgumentError(f"metric {name!r}: a {kind.value} in {unit!r} has no kind of "
                                f"quantity a threshold can read (its unit reads as a "
                                f"{quantity}; a {kind.value} is a {' or '.join(fits)})")
    return quantity, scale, base


def _read_result(expr: ThresholdExpression, measurement: Any) -> float:
    from ._model import Metric, ScenarioResult
    if isinstance(measurement, ScenarioResult):
        values: Mapping[str, float] = {m.name: m.value for m in measurement.metrics}
        try:
            return read_mapping(expr, values)
        except MissingMeasurementError:
            raise MissingMeasurementError(
                f"{expr.label}: not in the result of {measurement.scenario!r} (it has "
                f"{', '.join(values) or 'no metrics'})") from None
    if isinstance(measurement, Mapping):
        return read_mapping(expr, measurement)
    if isinstance(measurement, Iterable) and not isinstance(measurement, (str, bytes)):
        metrics = list(measurement)
        if all(isinstance(m, Metric) for m in metrics):
            return read_mapping(expr, {m.name: m.value for m in metrics})
    raise ArgumentTypeError(f"measurement must be a ScenarioResult, metrics, or a mapping of "
                            f"metric names to values, not {type(measurement).__name__}")


MetricDeclaration = Union["MetricSpec", "Metric", tuple[str, str]]


def scenario_metrics(metrics: Iterable[MetricDeclaration] | None = None, *,
                     name: str = "scenario") -> MetricSet:
    """The metric set of scenario results: one metric per name a run
    produced (``latency_p99``, ``throughput``, ``memory_per_agent``,
    ``throughput@100``...), each taking the kind of quantity of its unit
    (``ns`` or ``s``: a time, ``msg/s``: a rate, ``bytes``: a size,
    ``percent``, ``ratio``; other units are counts), checked against its
    declared :class:`~caxton_meter._model.Kind` when it has one.

    ``metrics``: :class:`~caxton_meter._model.MetricSpec` or
    :class:`~caxton_meter._model.Metric` objects, or (name, unit) pairs; a
    name may come more than once (several trials) with the same unit.
    None: the rows of the targets table (:data:`caxton_meter._model.GRADED`).
    Values are read from a ``ScenarioResult``, an iterable of ``Metric``,
    or a mapping of names to values in each metric's own unit (a
    duration in ``s`` is compared in seconds times 1e9, so ``< 500ms``
    works).  ArgumentError for a name given with two units, or a unit
    that contradicts the kind."""
    from ._model import GRADED, Metric, MetricSpec

    if metrics is None:
        metrics = GRADED.values()
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Iterable):
        raise ArgumentTypeError(f"scenario_metrics: metrics must be an iterable of "
                                f"MetricSpec, Metric or (name, unit), not "
                                f"{type(metrics).__name__}")
    seen: dict[str, tuple[str, Kind | None]] = {}
    for item in metrics:
        if isinstance(item, (MetricSpec, Metric)):
            metric_name, unit, kind = item.name, item.unit, item.kind
        elif isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str)
                                                                for x in item):
            (metric_name, unit), kind = item, None
        else:
            raise ArgumentTypeError(f"scenario_metrics: expected a MetricSpec, a Metric or a "
                                    f"(name, unit) pair, got {item!r}")
        if metric_name in seen and seen[metric_name][0] != unit:
            raise ArgumentError(f"scenario_metrics: metric {metric_name!r} is given in "
                                f"{seen[metric_name][0]!r} and in {unit!r}")
        if metric_name not in seen or seen[metric_name][1] is None:
            seen[metric_name] = (unit, kind)
    entries = []
    for metric_name, (unit, kind) in seen.items():
        quantity, scale, base = _quantity_of(metric_name, unit, kind)
        entries.append(ThresholdMetric(metric_name, quantity, f"in {unit}" if unit else "",
                                       unit=base, scale=scale))
    if not entries:
        raise ArgumentError("scenario_metrics: no metrics (the run produced none?)")
    return MetricSet(name, entries, read=_read_result)
