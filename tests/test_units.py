"""Quantities written by people, read into base units, and written back for them."""
import math

import pytest
from hypothesis import given, strategies as st

from caxton_meter._units import (
    BASE_UNITS,
    UnitError,
    format_quantity,
    kind_of_unit,
    parse_quantity,
)


@pytest.mark.parametrize("text, kind, value", [
    ("10ms", "time", 10e6), ("10 ms", "time", 10e6), ("850ns", "time", 850.0),
    ("1.5us", "time", 1500.0), ("2µs", "time", 2000.0), ("2s", "time", 2e9),
    ("1m", "time", 60e9), ("1h", "time", 3600e9), ("250", "time", 250.0),
    ("50K/s", "rate", 50e3), ("1.5M msg/s", "rate", 1.5e6), ("100k", "rate", 1e5),
    ("2000 rps", "rate", 2000.0), ("10", "rate", 10.0),
    ("512MB", "size", 512e6), ("1KiB", "size", 1024.0), ("10 mb", "size", 10e6),
    ("5%", "percent", 5.0), ("5", "percent", 5.0),
    ("1%", "ratio", 0.01), ("0.25", "ratio", 0.25),
    (".5s", "time", 0.5e9), ("1e3ns", "time", 1000.0),
])
def test_quantities_are_read_in_base_units(text, kind, value):
    assert parse_quantity(text, kind) == pytest.approx(value)


@pytest.mark.parametrize("text, kind, value", [
    ("1.1ms", "time", 1_100_000.0), ("99.9%", "ratio", 0.999), ("0.7%", "ratio", 0.007),
    ("2.3K/s", "rate", 2300.0), ("1.1MB", "size", 1_100_000.0), ("4.35 s", "time", 4.35e9),
])
def test_scaled_quantities_are_the_nearest_float_to_what_is_written(text, kind, value):
    assert parse_quantity(text, kind) == value


def test_numbers_are_taken_as_base_units():
    assert parse_quantity(1500, "time") == 1500.0
    assert parse_quantity(0.5, "ratio") == 0.5


@pytest.mark.parametrize("text, kind, message", [
    ("10 parsecs", "time", "unknown unit 'parsecs' for a time; valid: ns, us, ms"),
    ("fast", "time", "'fast' does not start with a number"),
    ("10ms", "rate", "unknown unit 'ms' for a rate"),
    ("5 apples", "size", "unknown unit 'apples' for a size; valid: B, KB"),
    ("5 ms", "percent", "unknown unit 'ms' for a percent"),
    (True, "time", "not a bool"),
    (float("inf"), "time", "must be finite"),
    (-3, "time", "must be finite and >= 0"),
])
def test_bad_quantities_say_what_was_wrong(text, kind, message):
    with pytest.raises(UnitError, match=message):
        parse_quantity(text, kind)


def test_an_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="unknown kind of quantity 'speed'; kinds: time, rate"):
        parse_quantity("1", "speed")


def test_units_map_to_kinds():
    assert kind_of_unit("ns") == "time" and kind_of_unit("msg/s") == "rate"
    assert kind_of_unit("bytes") == "size" and kind_of_unit("percent") == "percent"
    assert kind_of_unit("messages") == "count"


# -- writing quantities ------------------------------------------------------------------

@pytest.mark.parametrize("value, unit, text", [
    # times, in ns (or s): three significant digits, the scale chosen after rounding
    (812, "ns", "812 ns"), (52_800, "ns", "52.8 µs"), (27_100_000, "ns", "27.1 ms"),
    (1.5e9, "ns", "1.5 s"), (1_234_567, "ns", "1.23 ms"), (999.7, "ns", "1 µs"),
    (0, "ns", "0 ns"), (0.5, "ns", "0.5 ns"), (-1500, "ns", "-1.5 µs"),
    (-0.001, "ns", "0 ns"), (0.0025, "s", "2.5 ms"), (90, "s", "90 s"),
    # bytes, decimal like the guide's MB
    (512, "bytes", "512 B"), (12_300, "bytes", "12.3 KB"), (1.1e6, "bytes", "1.1 MB"),
    (3e9, "bytes", "3 GB"), (2.5e12, "bytes", "2.5 TB"), (-12_300, "bytes", "-12.3 KB"),
    (-0.3, "bytes", "0 B"), (2e6, "bytes/s", "2 MB/s"),
    # rates: one decimal once scaled
    (3_600_000, "msg/s", "3.6M msg/s"), (123_400, "msg/s", "123.4K msg/s"),
    (850, "msg/s", "850 msg/s"), (999_990, "msg/s", "1.0M msg/s"), (5e3, "tasks/s", "5.0K tasks/s"),
    (2e3, "req/s", "2.0K req/s"), (52_100, "/s", "52.1K/s"), (12, "/s", "12/s"),
    (-1500, "/s", "-1.5K/s"),
    # percent and ratios (a fraction, written as a percentage)
    (4.2, "percent", "4.2 %"), (42.25, "percent", "42.2 %"), (0, "percent", "0.0 %"),
    (0.012, "ratio", "1.2 %"), (0.995, "ratio", "99.5 %"), (0.00012, "ratio", "0.012 %"),
    (-0.05, "ratio", "-5.0 %"),
    # flags and counts
    (1.0, "bool", "yes"), (0.0, "bool", "no"), (1234, "", "1,234"),
    (1000, "requests", "1,000 requests"), (2.5, "agents", "2.5 agents"), (-3, "", "-3"),
    # no value
    (math.nan, "ns", "—"), (math.nan, "msg/s", "—"), (math.inf, "ns", "∞"),
    (-math.inf, "bytes", "-∞"),
])
def test_values_are_written_for_people(value, unit, text):
    assert format_quantity(value, unit) == text


@pytest.mark.parametrize("value, unit, text", [
    (1500, "ns", "+1.5 µs"), (-1500, "ns", "-1.5 µs"), (12_300, "bytes", "+12.3 KB"),
    (0, "bytes", "0 B"), (0.001, "ns", "0 ns"), (0.05, "ratio", "+5.0 %"),
    (math.inf, "ns", "+∞"), (math.nan, "ns", "—"),
])
def test_a_difference_carries_its_sign(value, unit, text):
    assert format_quantity(value, unit, sign=True) == text


@pytest.mark.parametrize("value, unit, text", [
    (10_000_000, "ns", "10ms"), (12_345_678, "ns", "12.345678ms"), (250_000, "ns", "250us"),
    (850, "ns", "850ns"), (1.5, "s", "1.5s"), (512e6, "bytes", "512MB"), (3e12, "bytes", "3000GB"),
    (50_000, "/s", "50K/s"), (1_500_000, "msg/s", "1.5M msg/s"), (12, "/s", "12/s"),
    (5, "percent", "5%"), (0.01, "ratio", "1%"), (0.07, "ratio", "7%"), (1234, "", "1234"),
    (1.0, "bool", "1"), (math.nan, "ns", "nan"), (math.inf, "ns", "inf"),
])
def test_exact_text_is_what_an_expression_writes(value, unit, text):
    assert format_quantity(value, unit, exact=True) == text


_KIND_OF_BASE = {"ns": "time", "/s": "rate", "msg/s": "rate", "bytes": "size",
                 "percent": "percent", "ratio": "ratio"}


@given(st.sampled_from(sorted(_KIND_OF_BASE)),
       st.floats(0, 1e15, allow_nan=False, allow_infinity=False))
def test_exact_text_reads_back_as_the_same_value(unit, value):
    text = format_quantity(value, unit, exact=True)
    assert parse_quantity(text, _KIND_OF_BASE[unit]) == pytest.approx(value, rel=1e-13, abs=1e-300)


def test_every_kind_has_a_base_unit():
    assert BASE_UNITS == {"time": "ns", "rate": "/s", "size": "bytes", "percent": "percent",
                          "ratio": "ratio", "count": ""}


def test_numpy_numbers_are_written_like_python_ones():
    np = pytest.importorskip("numpy")
    assert format_quantity(np.int64(1500), "ns") == "1.5 µs"
    assert format_quantity(np.float64(0.012), "ratio") == "1.2 %"


def test_only_numbers_are_written():
    with pytest.raises(TypeError, match="value must be a number, not str"):
        format_quantity("12", "ns")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be a number, not bool"):
        format_quantity(True, "ns")
    with pytest.raises(TypeError, match="unit must be a str, not NoneType"):
        format_quantity(1.0, None)  # type: ignore[arg-type]


def test_a_change_far_beyond_tenfold_reads_as_a_factor():
    from caxton_meter._units import format_change
    assert format_change(0.123) == "+12.3 %"
    assert format_change(-0.5) == "-50.0 %"
    assert format_change(8.0) == "+800.0 %"
    assert format_change(11.5) == "12.5× the baseline"
    assert format_change(33239.0) == "33,240× the baseline"
    assert format_change(-0.95) == "1/20.0 of the baseline"
    assert format_change(-1 + 1 / 20800) == "1/20,800 of the baseline"
    assert format_change(float("nan")) == "—" and format_change(float("inf")) == "+∞"
