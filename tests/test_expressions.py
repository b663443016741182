"""Threshold expressions: parsed into immutable objects in base units,
errors shown with a caret, evaluated against measurements."""
import dataclasses
import math

import pytest
from hypothesis import given, strategies as st

from caxton_meter import Histogram
from caxton_meter._expressions import (
    METRICS,
    Measurement,
    MissingMeasurementError,
    ThresholdExpression,
    ThresholdExpressionError,
    format_value,
    parse_threshold,
)


@pytest.mark.parametrize("text, metric, percentile, op, value", [
    ("p(99) < 10ms", "p", 99.0, "<", 10e6),
    ("p(50) <= 1ms", "p", 50.0, "<=", 1e6),
    ("p(99.9)<250us", "p", 99.9, "<", 250e3),
    ("p99 < 10ms", "p", 99.0, "<", 10e6),
    ("p99.99 < 1s", "p", 99.99, "<", 1e9),
    ("avg < 2ms", "avg", None, "<", 2e6),
    ("mean < 2ms", "avg", None, "<", 2e6),
    ("med < 500", "med", None, "<", 500.0),
    ("min >= 10ns", "min", None, ">=", 10.0),
    ("max < 50ms", "max", None, "<", 50e6),
    ("stdev < 1ms", "stdev", None, "<", 1e6),
    ("throughput > 50K/s", "throughput", None, ">", 50e3),
    ("throughput >= 1.5M msg/s", "throughput", None, ">=", 1.5e6),
    ("error_rate < 1%", "error_rate", None, "<", 0.01),
    ("error_rate <= 0.05", "error_rate", None, "<=", 0.05),
    ("errors == 0", "errors", None, "==", 0.0),
    ("count != 3", "count", None, "!=", 3.0),
    ("rss < 512MB", "rss", None, "<", 512e6),
    ("rss < 1GiB", "rss", None, "<", 1024.0 ** 3),
    ("cpu < 50%", "cpu", None, "<", 50.0),
    ("  AVG   <   2 ms  ", "avg", None, "<", 2e6),
])
def test_expressions_are_read_into_base_units(text, metric, percentile, op, value):
    e = parse_threshold(text)
    assert (e.metric, e.percentile, e.operator) == (metric, percentile, op)
    assert e.value == pytest.approx(value)
    assert e.text == text and str(e) == text
    assert e.kind == METRICS[metric].kind


def test_an_expression_is_immutable_and_labelled():
    e = parse_threshold("p99.9 < 3ms")
    assert e.label == "p(99.9)"
    assert parse_threshold("mean < 1ms").label == "avg"
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.value = 1.0  # type: ignore[misc]
    assert e == parse_threshold("p99.9 < 3ms")


def _caret_column(message: str, expression: str) -> tuple[int, int]:
    """(column, width) of the carets under ``expression`` in ``message``."""
    lines = message.splitlines()
    shown = lines.index(f"    {expression}")
    carets = lines[shown + 1]
    start = len(carets) - len(carets.lstrip())
    return start - 4, len(carets.strip())


@pytest.mark.parametrize("text, problem, column, width", [
    ("p99x < 1ms", "unknown metric 'p99x'", 0, 4),
    ("latency < 1ms", "unknown metric 'latency'", 0, 7),
    ("p(99 < 10ms", "expected ')' after the percentile", 5, 1),
    ("p(101) < 1ms", "percentile 101 is out of range", 2, 3),
    ("p < 4ms", "p needs a percentile in parentheses", 2, 1),
    ("avg(3) < 1ms", "avg takes no argument", 3, 1),
    ("p(99) = 10ms", "'=' is not an operator; write '=='", 6, 1),
    ("p(99) 10ms", "expected a comparison operator", 6, 4),
    ("p(99) <", "expected a value after '<'", 7, 1),
    ("p(99) < 10MB", "unknown unit 'MB' for p(99), a time", 10, 2),
    ("rss < 5 parsecs", "unknown unit 'parsecs' for rss, a size", 8, 7),
    ("throughput > fast", "expected a number after '>', got 'fast'", 13, 4),
    ("count < 5ms", "count is a count: it takes no unit", 9, 2),
    ("< 5ms", "expected a metric", 0, 1),
])
def test_errors_point_at_the_bad_part(text, problem, column, width):
    with pytest.raises(ThresholdExpressionError) as info:
        parse_threshold(text)
    message = str(info.value)
    assert message.startswith(f"invalid threshold expression: {problem}")
    assert _caret_column(message, text) == (column, width)
    assert info.value.position == column and info.value.expression == text
    assert isinstance(info.value, ValueError)


def test_unknown_metrics_and_units_list_the_valid_ones():
    with pytest.raises(ThresholdExpressionError) as info:
        parse_threshold("latncy < 1ms")
    assert "metrics: p(N), avg, med, min, max, stdev, count, throughput, errors, " \
           "error_rate, rss, cpu" in str(info.value)
    with pytest.raises(ThresholdExpressionError, match=r"did you mean 'error_rate'"):
        parse_threshold("error_rat < 1%")
    with pytest.raises(ThresholdExpressionError, match=r"valid: ns, us, ms, s, m, h"):
        parse_threshold("max < 3 fortnights")
    with pytest.raises(ThresholdExpressionError, match=r"valid: a number with an optional K/M/G"):
        parse_threshold("throughput > 5 ms")
    with pytest.raises(ThresholdExpressionError, match=r"valid: a number with an optional %"):
        parse_threshold("cpu < 5 MB")


def test_an_empty_expression_and_a_non_string_are_refused():
    with pytest.raises(ThresholdExpressionError, match="the expression is empty"):
        parse_threshold("   ")
    with pytest.raises(TypeError, match="must be a str, not int"):
        parse_threshold(5)  # type: ignore[arg-type]


def test_a_threshold_built_by_hand_is_validated():
    with pytest.raises(ValueError, match="unknown metric 'latency'"):
        ThresholdExpression("x", "latency", None, "<", 1.0)
    with pytest.raises(ValueError, match="unknown operator '=~'"):
        ThresholdExpression("x", "avg", None, "=~", 1.0)
    with pytest.raises(ValueError, match="percentile"):
        ThresholdExpression("x", "p", None, "<", 1.0)


def _histogram(values: list[int]) -> Histogram:
    h = Histogram(1, 3_600_000_000_000, 3)
    for v in values:
        h.record(v)
    return h


def test_latency_aggregations_are_read_from_the_histogram():
    h = _histogram([1000] * 98 + [5_000_000, 20_000_000])
    m = Measurement(histogram=h, count=100)
    assert parse_threshold("p(50) < 2us").evaluate(m).passed
    assert not parse_threshold("p(99) < 1ms").evaluate(m).passed
    assert parse_threshold("p(99) < 6ms").evaluate(m).passed
    assert parse_threshold("max < 21ms").evaluate(m).passed
    assert not parse_threshold("max < 19ms").evaluate(m).passed
    assert parse_threshold("min <= 1001").evaluate(m).passed
    assert parse_threshold("med < 2us").evaluate(m).passed
    avg = parse_threshold("avg < 1ms").evaluate(m)
    assert avg.actual == pytest.approx(h.mean) and avg.passed
    assert parse_threshold("stdev > 1ms").evaluate(m).passed
    assert parse_threshold("count == 100").evaluate(m).passed


def test_operators_at_the_boundary():
    m = {"avg": 1_000_000.0}
    assert not parse_threshold("avg < 1ms").evaluate(m).passed
    assert parse_threshold("avg <= 1ms").evaluate(m).passed
    assert parse_threshold("avg >= 1ms").evaluate(m).passed
    assert not parse_threshold("avg > 1ms").evaluate(m).passed
    assert parse_threshold("avg == 1ms").evaluate(m).passed
    assert not parse_threshold("avg != 1ms").evaluate(m).passed
    assert not parse_threshold("avg < 1ms").evaluate({"avg": math.nan}).passed


def test_counts_rates_and_resources():
    m = Measurement(histogram=_histogram([10]), count=990, errors=10, throughput=60_000.0,
                    rss_peak=300_000_000, cpu_percent=42.0)
    assert m.error_rate == pytest.approx(0.01)
    assert parse_threshold("throughput > 50K/s").evaluate(m).passed
    assert not parse_threshold("error_rate < 1%").evaluate(m).passed
    assert parse_threshold("error_rate <= 1%").evaluate(m).passed
    assert parse_threshold("errors == 10").evaluate(m).passed
    assert parse_threshold("rss < 512MB").evaluate(m).passed
    assert not parse_threshold("cpu < 40%").evaluate(m).passed


def test_a_metric_that_was_not_measured_is_said_so():
    empty = Measurement()
    with pytest.raises(MissingMeasurementError, match="no time was recorded"):
        parse_threshold("p(99) < 1ms").evaluate(empty)
    with pytest.raises(MissingMeasurementError, match="resources were not sampled"):
        parse_threshold("rss < 1GB").evaluate(empty)
    with pytest.raises(MissingMeasurementError, match="no rate was measured"):
        parse_threshold("throughput > 1/s").evaluate(empty)
    with pytest.raises(MissingMeasurementError, match=r"not in the measurement \(it has 'avg'\)"):
        parse_threshold("p(99) < 1ms").evaluate({"avg": 1.0})
    assert Measurement().error_rate == 0.0


def test_a_mapping_is_looked_up_by_label():
    assert parse_threshold("p99 < 10ms").evaluate({"p(99)": 9e6}).passed
    assert parse_threshold("med < 10ms").evaluate({"p(50)": 9e6}).passed
    with pytest.raises(TypeError, match="must be a number"):
        parse_threshold("avg < 1ms").evaluate({"avg": "fast"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must be a Measurement or a mapping"):
        parse_threshold("avg < 1ms").evaluate([1.0])  # type: ignore[arg-type]


def test_an_evaluation_describes_itself():
    ev = parse_threshold("p(99) < 10ms").evaluate({"p(99)": 12_345_678.0})
    assert ev.describe("parse") == "threshold 'p(99) < 10ms' failed for parse: p(99) = 12.3 ms"
    ok = parse_threshold("throughput > 50K/s").evaluate({"throughput": 52_100.0})
    assert ok.describe("load") == "threshold 'throughput > 50K/s' passed for load: " \
                                  "throughput = 52.1K/s"


@pytest.mark.parametrize("value, kind, text", [
    (12_345_678.0, "time", "12.3 ms"), (850.0, "time", "850 ns"), (1500.0, "time", "1.5 us"),
    (2.5e9, "time", "2.5 s"), (52_100.0, "rate", "52.1K/s"), (12.0, "rate", "12/s"),
    (0.005, "ratio", "0.5%"), (128e6, "size", "128 MB"), (512.0, "size", "512 B"),
    (42.25, "percent", "42.2%"), (1000.0, "count", "1,000"), (math.nan, "time", "nan"),
])
def test_values_are_formatted_for_people(value, kind, text):
    assert format_value(value, kind) == text


@given(st.floats(0, 100, allow_nan=False).map(lambda p: round(p, 3)),
       st.integers(0, 10**12), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
def test_percentile_expressions_round_trip(p, ns, op):
    e = parse_threshold(f"p({p:g}) {op} {ns}ns")
    assert e.percentile == float(f"{p:g}") and e.operator == op and e.value == ns
