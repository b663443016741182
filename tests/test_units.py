"""Quantities written by people, read into base units."""
import pytest

from caxton_meter._units import UnitError, kind_of_unit, parse_quantity


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
