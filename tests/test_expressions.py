"""Threshold expressions: one grammar over the metric sets of the plugin,
the monitor and scenario results; parsed into immutable objects in base
units, errors shown with a caret, evaluated against measurements."""
import dataclasses
import math

import pytest
from hypothesis import given, strategies as st

from caxton_meter import Histogram
from caxton_meter._core import CaxtonMeterError
from caxton_meter._expressions import (
    METRICS,
    PLUGIN_METRICS,
    Measurement,
    MetricSet,
    MissingMeasurementError,
    ThresholdExpression,
    ThresholdExpressionError,
    ThresholdMetric,
    format_value,
    parse_threshold,
    read_mapping,
    scenario_metrics,
)
from caxton_meter._model import GRADED, Kind, MetricSpec, ScenarioResult
from caxton_meter._monitor import MONITOR_METRICS


@pytest.mark.parametrize("text, metric, percentile, op, value", [
    ("p(99) < 10ms", "p", 99.0, "<", 10e6),
    ("p(50) <= 1ms", "p", 50.0, "<=", 1e6),
    ("p(99.9)<250us", "p", 99.9, "<", 250e3),
    ("p99 < 10ms", "p", 99.0, "<", 10e6),
    ("p99.99 < 1s", "p", 99.99, "<", 1e9),
    ("avg < 2ms", "avg", None, "<", 2e6),
    ("mean < 2ms", "avg", None, "<", 2e6),
    ("med < 500", "med", None, "<", 500e6),           # a bare time is ms, as in k6
    ("p(95)<200", "p", 95.0, "<", 200e6),
    ("avg===2ms", "avg", None, "==", 2e6),              # k6's strict equality
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
    ("p99.9.1 < 1ms", "unknown metric 'p99.9.1'", 0, 7),
    ("p999 < 1ms", "percentile 999 is out of range: it must be from 0 to 100; write p99.9 "
                   "or p(99.9)", 1, 3),
    ("p(9999) < 1ms", "percentile 9999 is out of range: it must be from 0 to 100; write "
                      "p99.99 or p(99.99)", 2, 4),
    ("p(99) =< 1ms", "'=<' is not an operator; write '<='", 6, 2),
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
    assert isinstance(info.value, ValueError) and isinstance(info.value, CaxtonMeterError)


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
    assert issubclass(MissingMeasurementError, CaxtonMeterError)
    assert issubclass(MissingMeasurementError, LookupError)


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
    (12_345_678.0, "time", "12.3 ms"), (850.0, "time", "850 ns"), (1500.0, "time", "1.5 µs"),
    (2.5e9, "time", "2.5 s"), (52_100.0, "rate", "52.1K/s"), (12.0, "rate", "12/s"),
    (0.005, "ratio", "0.5 %"), (128e6, "size", "128 MB"), (512.0, "size", "512 B"),
    (42.25, "percent", "42.2 %"), (1000.0, "count", "1,000"), (math.nan, "time", "—"),
])
def test_values_are_formatted_for_people(value, kind, text):
    assert format_value(value, kind) == text


def test_an_unknown_kind_is_not_formatted():
    with pytest.raises(ValueError, match=r"unknown kind of quantity 'tme'; kinds: time, rate, "
                                         r"size, percent, ratio, count \(did you mean 'time'\?\)"):
        format_value(1.0, "tme")


@given(st.floats(0, 100, allow_nan=False).map(lambda p: round(p, 3)),
       st.integers(0, 10**12), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
def test_percentile_expressions_round_trip(p, ns, op):
    e = parse_threshold(f"p({p:g}) {op} {ns}ns")
    assert e.percentile == float(f"{p:g}") and e.operator == op and e.value == ns


# -- one grammar, several metric sets ----------------------------------------------------

SHARED = ["p99 < 10ms", "p(99.9) <= 2s", "p99.9 > 250us", "avg < 1ms", "mean == 3ms",
          "error_rate < 1%", "throughput >= 50K/s", "max != 0"]


@pytest.mark.parametrize("text", SHARED)
def test_an_expression_means_the_same_in_the_plugin_and_the_monitor(text):
    plugin, monitor = PLUGIN_METRICS.parse(text), MONITOR_METRICS.parse(text)
    assert (plugin.metric, plugin.percentile, plugin.operator, plugin.value) == \
        (monitor.metric, monitor.percentile, monitor.operator, monitor.value)
    assert plugin.kind == monitor.kind
    assert plugin.metric_set is PLUGIN_METRICS and monitor.metric_set is MONITOR_METRICS


def test_each_set_labels_its_metrics_as_its_measurements_do():
    assert PLUGIN_METRICS.parse("p99 < 1ms").label == "p(99)"
    assert MONITOR_METRICS.parse("p(99) < 1ms").label == "p99"          # the Snapshot's field
    assert MONITOR_METRICS.parse("p99.9 < 1ms").label == "p(99.9)"
    assert PLUGIN_METRICS.parse("mean < 1ms").label == "avg"
    assert MONITOR_METRICS.parse("avg < 1ms").label == "mean"


def test_the_canonical_text_is_one_for_every_spelling():
    spellings = ["p(99) < 10ms", "p99<10000us", "  p( 99 )  <  10  ", "p(99)<1e7ns"]
    assert {PLUGIN_METRICS.parse(t).canonical for t in spellings} == {"p(99) < 10ms"}
    assert {MONITOR_METRICS.parse(t).canonical for t in spellings} == {"p99 < 10ms"}
    assert parse_threshold("error_rate <= 0.005").canonical == "error_rate <= 0.5%"
    assert parse_threshold("throughput > 1500").canonical == "throughput > 1.5K/s"


def test_a_metric_outside_a_set_is_refused_with_that_sets_names():
    with pytest.raises(ThresholdExpressionError) as info:
        MONITOR_METRICS.parse("rss < 1GB")
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid threshold expression: unknown metric 'rss'"
    assert lines[-1] == "metrics: p(N), avg, max, error_rate, throughput"
    with pytest.raises(ThresholdExpressionError, match=r"unknown metric 'erors' \(did you mean "
                                                       r"'errors'\?\)"):
        PLUGIN_METRICS.parse("erors == 0")


def test_parts_build_the_same_expression_as_the_text():
    built = MONITOR_METRICS.build("p(99.9)", "<=", "2s")
    assert built == MONITOR_METRICS.parse("p(99.9) <= 2s").__class__(
        "p(99.9) <= 2s", "p", 99.9, "<=", 2e9, metric_set=MONITOR_METRICS)
    assert MONITOR_METRICS.build("mean", "!=", 1_500_000).text == "mean != 1.5ms"
    assert PLUGIN_METRICS.build("count", "==", 3).text == "count == 3"
    assert PLUGIN_METRICS.metric(" p99.9 ") == ("p", 99.9)
    assert PLUGIN_METRICS.metric("MEDIAN") == ("med", None)


@pytest.mark.parametrize("args, error, match", [
    (("p99 < 1ms", "<", 1), ThresholdExpressionError, r"unexpected '< 1ms' after the metric"),
    (("", "<", 1), ThresholdExpressionError, "expected a metric"),
    (("p99", "=~", 1), ValueError, r"unknown operator '=~'; operators: <, <=, >, >=, ==, !="),
    (("p99", "<", -1.0), ValueError, r"the value must be a finite number >= 0 \(in ns\)"),
    (("p99", "<", math.nan), ValueError, r"finite number >= 0"),
    (("p99", "<", True), TypeError, "not bool"),
    (("p99", "<", "fast"), ThresholdExpressionError, r"expected a number after '<', got 'fast'"),
    ((3, "<", 1), TypeError, "a metric must be a str, not int"),
])
def test_bad_parts_say_what_is_wrong(args, error, match):
    with pytest.raises(error, match=match) as info:
        PLUGIN_METRICS.build(*args)
    assert isinstance(info.value, CaxtonMeterError)


# -- scenario results ------------------------------------------------------------------------

LATENCY_P99 = MetricSpec("latency_p99", "ns", Kind.LATENCY)
THROUGHPUT = MetricSpec("throughput", "msg/s", Kind.THROUGHPUT)
MEMORY = MetricSpec("memory_per_agent", "bytes", Kind.MEMORY)
SPAWN = MetricSpec("spawn_seconds", "s", Kind.DURATION)
SUCCESS = MetricSpec("success_rate", "ratio", Kind.RATIO, direction=GRADED["throughput"].direction)
DEAD = MetricSpec("dead_letters", "messages", Kind.COUNT)
POINT = MetricSpec("throughput", "msg/s", Kind.THROUGHPUT).at(100)


def _result() -> ScenarioResult:
    return ScenarioResult("burst", {}, (LATENCY_P99(8e6), THROUGHPUT(52_100.0), MEMORY(12e6),
                                        SPAWN(0.25), SUCCESS(0.999), DEAD(0), POINT(9e4)), {})


@pytest.mark.parametrize("text, passed", [
    ("latency_p99 < 10ms", True), ("throughput >= 50K/s", True),
    ("throughput >= 50K msg/s", True), ("memory_per_agent < 10MB", False),
    ("spawn_seconds < 500ms", True), ("spawn_seconds <= 0.2s", False),
    ("success_rate >= 99.9%", True), ("dead_letters == 0", True),
    ("throughput@100 > 100K/s", False), ("LATENCY_P99 != 8ms", False),
])
def test_a_scenario_set_reads_a_runs_metrics(text, passed):
    metrics = scenario_metrics([LATENCY_P99, THROUGHPUT, MEMORY, SPAWN, SUCCESS, DEAD, POINT])
    evaluation = metrics.parse(text).evaluate(_result())
    assert evaluation.passed is passed


def test_a_scenario_metric_takes_the_kind_of_its_unit():
    metrics = scenario_metrics([LATENCY_P99, THROUGHPUT, MEMORY, SPAWN, SUCCESS, DEAD])
    assert {n: m.kind for n, m in metrics.metrics.items()} == {
        "latency_p99": "time", "throughput": "rate", "memory_per_agent": "size",
        "spawn_seconds": "time", "success_rate": "ratio", "dead_letters": "count"}
    assert metrics.parse("spawn_seconds < 500ms").value == 500e6       # compared in ns
    assert metrics.parse("spawn_seconds < 500ms").measure({"spawn_seconds": 0.25}) == 0.25e9
    with pytest.raises(ThresholdExpressionError, match="unknown unit 'ms' for throughput, a rate"):
        metrics.parse("throughput > 5ms")
    with pytest.raises(ThresholdExpressionError, match="dead_letters is a count: it takes no unit"):
        metrics.parse("dead_letters < 5%")


def test_a_scenario_set_from_names_and_units_or_the_targets_table():
    pairs = scenario_metrics([("latency_p50", "ns"), ("rss_slope", "bytes/s"),
                              ("cpu_router", "percent"), ("completed", "requests"),
                              ("latency_p50", "ns")])
    assert [m.kind for m in pairs.metrics.values()] == ["time", "rate", "percent", "count"]
    assert pairs.parse("rss_slope < 1K/s").evaluate({"rss_slope": 512.0}).passed
    graded = scenario_metrics()
    assert list(graded) == list(GRADED)
    assert graded.parse("cpu_per_agent < 5%").kind == "percent"
    assert graded.parse("recovery_time < 30s").value == 30e9


def test_a_scenario_evaluation_describes_itself_in_the_metrics_unit():
    metrics = scenario_metrics([THROUGHPUT, MEMORY])
    ev = metrics.parse("throughput >= 100K/s").evaluate(_result())
    assert ev.describe("burst") == ("threshold 'throughput >= 100K/s' failed for burst: "
                                    "throughput = 52.1K msg/s")
    ev = metrics.parse("memory_per_agent < 10MB").evaluate([MEMORY(12_345_678)])
    assert ev.describe("burst").endswith("memory_per_agent = 12.3 MB")


def test_a_scenario_set_names_what_it_lacks():
    metrics = scenario_metrics([LATENCY_P99, THROUGHPUT])
    with pytest.raises(ThresholdExpressionError) as info:
        metrics.parse("p99 < 10ms")
    assert str(info.value).splitlines()[0] == \
        "invalid threshold expression: unknown metric 'p99' (did you mean 'latency_p99'?)"
    assert str(info.value).splitlines()[-1] == "metrics: latency_p99, throughput"
    with pytest.raises(ThresholdExpressionError, match=r"did you mean 'throughput'"):
        metrics.parse("thruput > 1K/s")
    with pytest.raises(MissingMeasurementError,
                       match=r"latency_p99: not in the result of 'burst' \(it has throughput\)"):
        metrics.parse("latency_p99 < 1ms").evaluate(
            ScenarioResult("burst", {}, (THROUGHPUT(1.0),), {}))
    with pytest.raises(TypeError, match="must be a ScenarioResult, metrics, or a mapping"):
        metrics.parse("latency_p99 < 1ms").evaluate(3)


@pytest.mark.parametrize("metrics, error, match", [
    ([MetricSpec("latency_p99", "msg/s", Kind.LATENCY)], ValueError,
     r"metric 'latency_p99': a latency in 'msg/s' has no kind of quantity a threshold can "
     r"read \(its unit reads as a rate; a latency is a time\)"),
    ([("x", "ns"), ("x", "s")], ValueError, r"metric 'x' is given in 'ns' and in 's'"),
    ([("cpu-router", "percent")], ValueError, r"name must be a word"),
    (["latency_p99"], TypeError, r"expected a MetricSpec, a Metric or a \(name, unit\) pair"),
    ([], ValueError, "no metrics"),
    ("latency_p99", TypeError, "must be an iterable"),
])
def test_bad_scenario_declarations(metrics, error, match):
    with pytest.raises(error, match=match):
        scenario_metrics(metrics)


# -- metric sets of one's own ----------------------------------------------------------------

def test_a_metric_set_of_ones_own():
    queue = MetricSet("queue", [ThresholdMetric("depth", "count", "messages waiting",
                                                aliases=("backlog",)),
                                ThresholdMetric("age", "time", label="oldest_ns")],
                      read=read_mapping)
    assert queue.parse("backlog <= 10").evaluate({"depth": 7}).passed
    assert not queue.parse("age < 1ms").evaluate({"oldest_ns": 2e6}).passed
    assert not queue.percentiles and len(queue) == 2 and "depth" in queue
    with pytest.raises(ThresholdExpressionError, match="unknown metric 'p'"):
        queue.parse("p(99) < 1ms")
    with pytest.raises(KeyError, match="no metric 'size' in the queue set"):
        queue["size"]
    assert repr(queue) == "<MetricSet queue: depth, age>"


def test_bad_metric_sets():
    with pytest.raises(ValueError, match="'mean' names both 'avg' and 'mean'"):
        MetricSet("x", [ThresholdMetric("avg", "time", aliases=("mean",)),
                        ThresholdMetric("mean", "time")], read=read_mapping)
    with pytest.raises(ValueError, match=r"kind must be one of time, rate, size, percent, "
                                         r"ratio, count, got 'times' \(did you mean 'time'\?\)"):
        ThresholdMetric("x", "times")
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        ThresholdMetric("x", "time", scale=0)
    with pytest.raises(TypeError, match="read and percentile_label must be callable"):
        MetricSet("x", [ThresholdMetric("x", "time")], read=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics must be a MetricSet, not str"):
        parse_threshold("p99 < 1ms", "monitor")  # type: ignore[arg-type]


def test_k6_thresholds_keep_their_meaning_or_are_refused_saying_why():
    # k6: http_req_duration: ['p(95)<200'] is 200 ms
    assert parse_threshold("p(95)<200").value == 200e6
    assert parse_threshold("p(95)<200").canonical == "p(95) < 200ms"
    assert parse_threshold("max===0.5").operator == "=="
    assert MONITOR_METRICS.parse("p(99) < 5").value == 5e6
    with pytest.raises(ThresholdExpressionError) as info:
        parse_threshold("rate<0.01")
    message = str(info.value)
    assert "k6's 'rate' depends on the metric it is set on" in message
    assert "write error_rate < 0.01" in message and "throughput > 100/s" in message
