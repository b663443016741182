"""Threshold expressions in k6's style: ``"p(99) < 10ms"``, ``"avg < 2ms"``,
``"throughput > 50K/s"``, ``"error_rate < 1%"``, ``"rss < 512MB"``.

An expression is ``<metric> <operator> <quantity>``:

* the metric is one of :data:`METRICS` (a latency aggregation such as
  ``p(99)``, ``avg``, ``max``; a count; a rate; a resource figure);
  ``p(N)`` takes a percentile 0 <= N <= 100, also written ``pN`` (``p99``,
  ``p99.9``);
* the operator is one of ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``;
* the quantity is read by :func:`caxton_meter._units.parse_quantity` in the
  metric's kind (``10ms`` for a time, ``50K/s`` for a rate, ``1%`` for a
  ratio, ``512MB`` for a size, ``50%`` for CPU); counts are plain numbers.

:func:`parse_threshold` turns the text into an immutable
:class:`ThresholdExpression` whose value is in base units (ns, per second,
bytes, percent, a fraction); :class:`ThresholdExpressionError` shows the
expression with a caret under what is wrong and, for an unknown metric or
unit, lists the valid ones.  :meth:`ThresholdExpression.evaluate` checks it
against a :class:`Measurement` (a histogram of latencies in ns and counts)
or a mapping of metric labels (``"p(99)"``, ``"avg"``, ``"throughput"``...)
to values in base units.
"""
from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._core import Histogram
from ._units import KINDS, UnitError, parse_quantity

__all__ = [
    "METRICS",
    "OPERATORS",
    "Evaluation",
    "Measurement",
    "MissingMeasurementError",
    "ThresholdExpression",
    "ThresholdExpressionError",
    "format_value",
    "parse_threshold",
]


@dataclass(frozen=True)
class _MetricSpec:
    kind: str           # a kind of _units.KINDS, or "count"
    help: str


METRICS: Mapping[str, _MetricSpec] = {
    "p": _MetricSpec("time", "p(N): the N-th percentile of the latencies, 0 <= N <= 100"),
    "avg": _MetricSpec("time", "the mean latency"),
    "med": _MetricSpec("time", "the median latency, p(50)"),
    "min": _MetricSpec("time", "the smallest latency"),
    "max": _MetricSpec("time", "the largest latency"),
    "stdev": _MetricSpec("time", "the standard deviation of the latencies"),
    "count": _MetricSpec("count", "calls timed, or requests completed"),
    "throughput": _MetricSpec("rate", "calls (or completed requests) per second"),
    "errors": _MetricSpec("count", "calls or requests that raised"),
    "error_rate": _MetricSpec("ratio", "errors / (count + errors)"),
    "rss": _MetricSpec("size", "the peak resident memory of the process"),
    "cpu": _MetricSpec("percent", "the mean CPU of the process (100% is one core)"),
}
"""The metrics an expression may name, with their kind of quantity."""

_ALIASES = {"mean": "avg", "median": "med", "average": "avg"}

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
"""The comparison operators, longest first where one is a prefix of another."""

_OPERATOR_LIST = ", ".join(OPERATORS)
_UNITS = dict(KINDS, count="a plain number (1000, 1.5e3)")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHORT_PERCENTILE = re.compile(r"p([0-9]+(?:\.[0-9]+)?)(?![A-Za-z0-9_.])")


def _metric_list() -> str:
    return ", ".join("p(N)" if name == "p" else name for name in METRICS)


class ThresholdExpressionError(ValueError):
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


class MissingMeasurementError(LookupError):
    """The measurement has no value for the expression's metric (nothing
    recorded, or no resource profile for ``rss``/``cpu``)."""


@dataclass(frozen=True)
class Measurement:
    """What a threshold is checked against.

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
        return (f"threshold {self.expression.text!r} {verdict} for {name}: "
                f"{self.expression.label} = {format_value(self.actual, self.expression.kind)}")


@dataclass(frozen=True)
class ThresholdExpression:
    """A parsed threshold: ``metric`` (a key of :data:`METRICS`; aliases
    resolved), ``percentile`` (for ``p`` only), ``operator`` (a key of
    :data:`OPERATORS`) and ``value`` in the metric's base unit (ns, per
    second, bytes, percent, a fraction, a count).  ``text`` is the
    expression as written."""
    text: str
    metric: str
    percentile: float | None
    operator: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; metrics: {_metric_list()}")
        if (self.metric == "p") != (self.percentile is not None):
            raise ValueError("a percentile is given with metric 'p' and only with it")
        if self.operator not in OPERATORS:
            raise ValueError(f"unknown operator {self.operator!r}; operators: {_OPERATOR_LIST}")

    @property
    def kind(self) -> str:
        """The metric's kind of quantity: time, rate, size, percent, ratio or count."""
        return METRICS[self.metric].kind

    @property
    def label(self) -> str:
        """The metric as shown in messages and looked up in a mapping: ``p(99)``."""
        if self.percentile is not None:
            return f"p({self.percentile:g})"
        return self.metric

    def measure(self, measurement: Measurement | Mapping[str, float]) -> float:
        """The metric's value in ``measurement``, in base units.
        MissingMeasurementError when the measurement does not have it."""
        if isinstance(measurement, Mapping):
            return self._from_mapping(measurement)
        if not isinstance(measurement, Measurement):
            raise TypeError(f"measurement must be a Measurement or a mapping of metric "
                            f"labels to values, not {type(measurement).__name__}")
        m = measurement
        if self.kind == "time":
            h = m.histogram
            if h is None or h.total_count == 0:
                raise MissingMeasurementError(f"{self.label}: no time was recorded")
            if self.metric == "p":
                assert self.percentile is not None
                return float(h.value_at_percentile(self.percentile))
            if self.metric == "med":
                return float(h.value_at_percentile(50.0))
            if self.metric == "avg":
                return float(h.mean)
            if self.metric == "min":
                return float(h.min)
            if self.metric == "max":
                return float(h.max)
            return float(h.stdev)
        if self.metric == "count":
            return float(m.count)
        if self.metric == "errors":
            return float(m.errors)
        if self.metric == "error_rate":
            return m.error_rate
        if self.metric == "throughput":
            if m.throughput is None:
                raise MissingMeasurementError("throughput: no rate was measured")
            return float(m.throughput)
        if self.metric == "rss":
            if m.rss_peak is None:
                raise MissingMeasurementError("rss: resources were not sampled")
            return float(m.rss_peak)
        if m.cpu_percent is None:
            raise MissingMeasurementError("cpu: resources were not sampled (or the window "
                                          "was too short for a CPU figure)")
        return float(m.cpu_percent)

    def _from_mapping(self, values: Mapping[str, float]) -> float:
        keys = [self.label] + (["p(50)"] if self.metric == "med" else [])
        for key in keys:
            if key in values:
                value = values[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"measurement[{key!r}] must be a number, "
                                    f"not {type(value).__name__}")
                return float(value)
        raise MissingMeasurementError(f"{self.label}: not in the measurement (it has "
                                      f"{', '.join(map(repr, values)) or 'nothing'})")

    def evaluate(self, measurement: Measurement | Mapping[str, float]) -> Evaluation:
        """Whether the measurement satisfies the expression (NaN never
        does).  MissingMeasurementError when the metric was not measured."""
        actual = self.measure(measurement)
        passed = not math.isnan(actual) and OPERATORS[self.operator](actual, self.value)
        return Evaluation(self, actual, passed)

    def __str__(self) -> str:
        return self.text


def format_value(value: float, kind: str) -> str:
    """``value`` (in the base unit of ``kind``) for a message: ``12.3 ms``,
    ``52.1K/s``, ``0.5%``, ``128 MB``, ``1,000``."""
    if math.isnan(value):
        return "nan"
    if kind == "time":
        for factor, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
            if abs(value) >= factor:
                return f"{_digits(value / factor)} {unit}"
        return f"{_digits(value)} ns"
    if kind == "rate":
        for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= factor:
                return f"{_digits(value / factor)}{unit}/s"
        return f"{_digits(value)}/s"
    if kind == "size":
        for factor, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
            if abs(value) >= factor:
                return f"{_digits(value / factor)} {unit}"
        return f"{value:.0f} B"
    if kind == "percent":
        return f"{_digits(value)}%"
    if kind == "ratio":
        return f"{_digits(value * 100)}%"
    if value == int(value):
        return f"{int(value):,}"
    return _digits(value)


def _digits(x: float) -> str:
    """Three significant digits, no exponent, trailing zeros dropped."""
    a = abs(x)
    text = f"{x:.0f}" if a >= 99.95 else f"{x:.1f}" if a >= 9.995 else f"{x:.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# -- parsing -------------------------------------------------------------------------------

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


def parse_threshold(text: str) -> ThresholdExpression:
    """Read ``text`` (``"p(99) < 10ms"``) into a :class:`ThresholdExpression`.
    ThresholdExpressionError, with a caret under the bad part, for anything
    else; TypeError for a non-str."""
    if not isinstance(text, str):
        raise TypeError(f"a threshold expression must be a str, not {type(text).__name__}")
    cur = _Cursor(text)
    cur.skip_space()
    if cur.at_end():
        raise cur.error("the expression is empty", hint=_grammar_hint())
    metric, percentile = _metric(cur)
    cur.skip_space()
    op = _operator(cur)
    cur.skip_space()
    value = _quantity(cur, metric, percentile, op)
    return ThresholdExpression(text, metric, percentile, op, value)


def _grammar_hint() -> str:
    return (f"expected <metric> <operator> <value>, as 'p(99) < 10ms'; metrics: "
            f"{_metric_list()}; operators: {_OPERATOR_LIST}")


def _metric(cur: _Cursor) -> tuple[str, float | None]:
    start = cur.pos
    short = _SHORT_PERCENTILE.match(cur.text, start)
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
                        hint=f"metrics: {_metric_list()}")
    word = m.group(0)
    name = _ALIASES.get(word.lower(), word.lower())
    if name not in METRICS:
        close = difflib.get_close_matches(word.lower(), list(METRICS) + list(_ALIASES), n=1)
        suggestion = f" (did you mean {_ALIASES.get(close[0], close[0])!r}?)" if close else ""
        raise cur.error(f"unknown metric {word!r}{suggestion}", start, length=len(word),
                        hint=f"metrics: {_metric_list()}")
    cur.pos = m.end()
    cur.skip_space()
    has_paren = not cur.at_end() and cur.text[cur.pos] == "("
    if name != "p":
        if has_paren:
            raise cur.error(f"{name} takes no argument (only p(N) does)")
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


def _percentile(cur: _Cursor, digits: str, at: int) -> float:
    value = float(digits)
    if not 0.0 <= value <= 100.0:
        raise cur.error(f"percentile {digits} is out of range: it must be from 0 to 100", at,
                        length=len(digits))
    return value


def _operator(cur: _Cursor) -> str:
    if cur.at_end():
        raise cur.error(f"expected a comparison operator ({_OPERATOR_LIST}) after the metric",
                        hint=_grammar_hint())
    for op in ("<=", ">=", "==", "!=", "<", ">"):
        if cur.text.startswith(op, cur.pos):
            if cur.text.startswith("===", cur.pos):
                raise cur.error("'===' is not an operator; write '=='", length=3)
            cur.pos += len(op)
            return op
    if cur.text.startswith("=", cur.pos):
        raise cur.error("'=' is not an operator; write '==' to compare for equality")
    if cur.text.startswith("=<", cur.pos) or cur.text.startswith("=>", cur.pos):
        raise cur.error(f"{cur.text[cur.pos:cur.pos + 2]!r} is not an operator", length=2)
    end = cur.pos
    while end < len(cur.text) and not cur.text[end].isspace():
        end += 1
    raise cur.error(f"expected a comparison operator ({_OPERATOR_LIST})",
                    length=end - cur.pos, hint=_grammar_hint())


def _quantity(cur: _Cursor, metric: str, percentile: float | None, op: str) -> float:
    kind = METRICS[metric].kind
    label = f"p({percentile:g})" if percentile is not None else metric
    start = cur.pos
    raw = cur.text[start:]
    body = raw.rstrip()
    if not body:
        raise cur.error(f"expected a value after {op!r}",
                        hint=f"{label} is a {_kind_name(kind)}: {_UNITS[kind]}")
    num = _NUMBER.match(body)
    if num is None:
        length = len(body.split()[0]) if body.split() else 1
        raise cur.error(f"expected a number after {op!r}, got {body.split()[0]!r}", start,
                        length=length,
                        hint=f"{label} is a {_kind_name(kind)}: {_UNITS[kind]}")
    unit_at = start + num.end()
    unit = body[num.end():]
    unit_offset = len(unit) - len(unit.lstrip())
    if kind == "count":
        if unit.strip():
            raise cur.error(f"{label} is a count: it takes no unit, got {unit.strip()!r}",
                            unit_at + unit_offset, length=len(unit.strip()))
        return float(num.group(0))
    try:
        return parse_quantity(body, kind)
    except UnitError:
        raise cur.error(f"unknown unit {unit.strip()!r} for {label}, a {_kind_name(kind)}",
                        unit_at + unit_offset, length=len(unit.strip()),
                        hint=f"valid: {_UNITS[kind]}") from None


def _kind_name(kind: str) -> str:
    return {"time": "time", "rate": "rate", "size": "size", "percent": "percentage of CPU",
            "ratio": "ratio", "count": "count"}[kind]
