"""Quantities written by people: "10ms", "50K/s", "1%", "512MB", and read by them.

:func:`parse_quantity` turns such a string into a number in the base unit
caxton_meter measures in (ns for times, msg/s for rates, bytes for sizes,
percent for CPU, a fraction for ratios), given the kind of quantity the
metric is.  Used by the command line's ``--slo`` and ``--threshold`` and by
the threshold expressions.

:func:`format_quantity` goes the other way, from a value in its base unit
to text: the one formatter of messages, alerts, the plugin's summary and
the reports ("27.1 ms", "12.3 KB", "3.6M msg/s", "4.2 %", "1,234"), and,
with ``exact=True``, the text a threshold expression reads back ("10ms").
"""
from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal

from ._core import CaxtonMeterError

__all__ = ["BASE_UNITS", "KINDS", "UnitError", "format_change", "format_quantity",
           "kind_of_unit", "parse_quantity"]


class UnitError(CaxtonMeterError, ValueError):
    """A quantity that cannot be read; the message lists the valid units."""


_TIME = {"ns": 1.0, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9,
         "min": 60e9, "h": 3600e9}
_SIZE = {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024.0, "mib": 1024.0 ** 2,
         "gib": 1024.0 ** 3}
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_RATE_UNITS = ("/s", "msg/s", "rps", "tasks/s", "req/s", "calls/s")

KINDS = {
    "time": "ns, us, ms, s, m, h (a bare number is ns)",
    "rate": "a number with an optional K/M/G and /s, msg/s or rps (50K/s, 1.5M msg/s)",
    "size": "B, KB, MB, GB (decimal), KiB, MiB, GiB (a bare number is bytes)",
    "percent": "a number with an optional % (5%, 5)",
    "ratio": "a percentage (1%) or a fraction (0.01)",
}
"""The kinds of quantity and the units each accepts."""

_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


def _number(text: str) -> tuple[str, str]:
    m = re.match(r"\s*(" + _NUMBER + r")\s*", text)
    if not m:
        raise UnitError(f"{text!r} does not start with a number")
    return m.group(1), text[m.end():].strip()


def parse_quantity(text: str | float | int, kind: str) -> float:
    """``text`` as a number in ``kind``'s base unit: "time" -> ns, "rate" ->
    per second, "size" -> bytes, "percent" -> percent, "ratio" -> a
    fraction.  A number (not a string) is taken as already in the base
    unit.  UnitError saying what was wrong and listing the valid units."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of quantity {kind!r}; kinds: {', '.join(KINDS)}")
    if isinstance(text, bool):
        raise UnitError(f"a {kind} must be a number or a string, not a bool")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        if not isinstance(text, str):
            raise UnitError(f"a {kind} must be a number or a string, not {type(text).__name__}")
        number, unit = _number(text)
        # Scaled in decimal, then rounded once: "1.1ms" is 1100000 ns and
        # "99.9%" is 0.999, not 1100000.0000000002 and 0.9990000000000001,
        # so that == and a value at the bound compare as written.
        value = float(Decimal(number) * Decimal(repr(_scale(unit, kind, text))))
    if not math.isfinite(value) or value < 0:
        raise UnitError(f"{text!r}: a {kind} must be finite and >= 0")
    return value


def _scale(unit: str, kind: str, text: str) -> float:
    u = unit.strip()
    if kind == "time":
        if u == "":
            return 1.0
        if u in _TIME:
            return _TIME[u]
    elif kind == "size":
        if u == "":
            return 1.0
        if u.lower() in _SIZE:
            return _SIZE[u.lower()]
    elif kind == "rate":
        m = re.fullmatch(r"([kKmMgG]?)\s*(/s|msg/s|rps|tasks/s|req/s|calls/s)?", u)
        if m:
            return _SCALE[m.group(1).lower()]
    elif kind == "percent":
        if u in ("", "%"):
            return 1.0
    elif kind == "ratio":
        if u == "%":
            return 0.01
        if u == "":
            return 1.0
    raise UnitError(f"{text!r}: unknown unit {u!r} for a {kind}; valid: {KINDS[kind]}")


_UNIT_KINDS = {"ns": "time", "s": "time", "msg/s": "rate", "tasks/s": "rate", "calls/s": "rate",
               "req/s": "rate",
               "bytes": "size",
               "percent": "percent", "ratio": "ratio"}


def kind_of_unit(unit: str) -> str:
    """The kind of quantity a metric in ``unit`` is ("time" for "ns", ...);
    counts and other units are plain numbers ("count")."""
    return _UNIT_KINDS.get(unit, "count")


BASE_UNITS = {"time": "ns", "rate": "/s", "size": "bytes", "percent": "percent",
              "ratio": "ratio", "count": ""}
"""The unit :func:`format_quantity` takes for a value of each kind of
quantity (``count`` is a plain number)."""


# -- writing quantities ----------------------------------------------------------------------

_NAN = "—"
# (factor, label), largest first.  The exact scales stop at what
# parse_quantity reads back (no TB, "us" rather than "µs").
_TIME_SCALES = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))
_EXACT_TIME_SCALES = ((1e9, "s"), (1e6, "ms"), (1e3, "us"), (1.0, "ns"))
_BYTE_SCALES = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB"), (1.0, "B"))
_EXACT_BYTE_SCALES = _BYTE_SCALES[1:]
_RATE_SCALES = ((1e9, "G"), (1e6, "M"), (1e3, "K"), (1.0, ""))


def format_change(change: float) -> str:
    """A relative change (``current / baseline - 1``) as a reader takes it
    in: "+12.3 %" up to ten times either way, and beyond as a factor,
    "33,240× the baseline" or "1/20,800 of the baseline", where a
    percentage (+3,323,900 %) says nothing a reader can weigh."""
    if math.isnan(change):
        return "—"
    if math.isinf(change):
        return "+∞" if change > 0 else "−∞"
    ratio = 1.0 + change
    if ratio >= 10:
        return f"{ratio:,.0f}× the baseline" if ratio >= 100 else f"{ratio:.1f}× the baseline"
    if 0 < ratio <= 0.1:
        inverse = 1.0 / ratio
        return (f"1/{inverse:,.0f} of the baseline" if inverse >= 100
                else f"1/{inverse:.1f} of the baseline")
    return f"{change * 100:+.1f} %"


def format_quantity(value: float, unit: str, *, sign: bool = False, exact: bool = False) -> str:
    """``value``, in the base unit ``unit``, for a reader.

    * ``ns`` (and ``s``, taken as seconds): "812 ns", "52.8 µs", "27.1 ms",
      "1.5 s";
    * ``bytes`` in decimal units (the guide's MB): "512 B", "12.3 KB",
      "1.1 MB"; ``bytes/s`` likewise, "2 MB/s";
    * a rate (a unit ending in ``/s``: ``msg/s``, ``tasks/s``, ``req/s``,
      or ``/s`` alone): "850 msg/s", "123.4K msg/s", "3.6M msg/s"; with
      ``/s`` alone, "52.1K/s";
    * ``percent``: "4.2 %"; ``ratio`` (a fraction) as a percentage: 0.012
      is "1.2 %";
    * ``bool``: "yes" or "no";
    * any other unit is a count: "1,234", "1,000 requests", "2.5 agents".

    Three significant digits (more left of the point; a rate keeps one
    decimal); the scale is chosen after rounding, so 999.7 ns is "1 µs".
    Negative values keep their sign ("-12.3 KB"); ``sign=True`` also
    writes "+" before a positive value, for a difference.  NaN is "—",
    infinities "∞" and "-∞".

    ``exact=True`` writes the value as a threshold expression does, so
    that :func:`parse_quantity` reads back the same number: every
    significant digit, no space, no thousands separator, ASCII units
    ("12.345678ms", "250us", "50K/s", "1%", "512MB", "1000")."""
    # numbers.Real: numpy's integers and floats too, as statistics hand them over.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"format_quantity: value must be a number, not {type(value).__name__}")
    if not isinstance(unit, str):
        raise TypeError(f"format_quantity: unit must be a str, not {type(unit).__name__}")
    v = float(value)
    if math.isnan(v):
        return "nan" if exact else _NAN
    if unit == "bool":
        return str(int(bool(v))) if exact else ("yes" if v else "no")
    if math.isinf(v):
        text = "inf" if exact else "∞"
    else:
        text = _exact(v, unit) if exact else _human(v, unit)
    # "+" only before what reads as more than zero: not "+0 ns".
    if sign and v > 0 and any(c in "123456789∞inf" for c in text.split(" ")[0]):
        return "+" + text
    return text if v >= 0 or not math.isinf(v) else "-" + text


def _human(v: float, unit: str) -> str:
    if unit in ("ns", "s"):
        number, label = _scaled(v * 1e9 if unit == "s" else v, _TIME_SCALES)
        return f"{_digits(number)} {label}"
    if unit in ("bytes", "bytes/s"):
        number, label = _scaled(v, _BYTE_SCALES)
        text = _zero(f"{number:.0f}") if label == "B" else _digits(number)
        return f"{text} {label}" + ("/s" if unit == "bytes/s" else "")
    if unit.endswith("/s"):
        space = "" if unit == "/s" else " "
        if abs(v) < 1e3 * (1 - 5e-5):
            return f"{_digits(v)}{space}{unit}"
        number, label = _scaled(v, _RATE_SCALES[:-1])
        if abs(round(number, 1)) >= 1000 and label != "G":      # 999.96K -> 1.0M
            number, label = number / 1e3, {"K": "M", "M": "G"}[label]
        return f"{_zero(f'{number:.1f}')}{label}{space}{unit}"
    if unit in ("percent", "%"):
        return f"{_percent(v)} %"
    if unit == "ratio":
        return f"{_percent(v * 100)} %"
    if v == int(v) and abs(v) < 1e15:
        text = f"{int(v):,}"
    else:
        text = _digits(v)
    return f"{text} {unit}" if unit else text


def _exact(v: float, unit: str) -> str:
    if unit in ("ns", "s"):
        number, label = _largest(v * 1e9 if unit == "s" else v, _EXACT_TIME_SCALES)
        return f"{number:.15g}{label}"
    if unit in ("bytes", "bytes/s"):
        number, label = _largest(v, _EXACT_BYTE_SCALES)
        return f"{number:.15g}{label}" + ("/s" if unit == "bytes/s" else "")
    if unit.endswith("/s"):
        number, label = _largest(v, _RATE_SCALES)
        return f"{number:.15g}{label}{unit}" if unit == "/s" else \
            f"{number:.15g}{label} {unit}"
    if unit in ("percent", "%"):
        return f"{v:.15g}%"
    if unit == "ratio":
        return f"{v * 100:.15g}%"
    return f"{v:.15g}"


def _scaled(value: float, scales: tuple[tuple[float, str], ...]) -> tuple[float, str]:
    """``value`` in the largest scale it reaches once rounded to three
    digits (999.7 ns is 1 µs, not 1000 ns), and the scale's label; the last
    scale when it reaches none."""
    a = abs(value)
    for factor, label in scales:
        if a >= factor * (1 - 5e-4):
            return value / factor, label
    factor, label = scales[-1]
    return value / factor, label


def _largest(value: float, scales: tuple[tuple[float, str], ...]) -> tuple[float, str]:
    """``value`` in the largest scale it reaches unrounded (exact text)."""
    a = abs(value)
    for factor, label in scales:
        if a >= factor:
            return value / factor, label
    factor, label = scales[-1]
    return value / factor, label


def _digits(x: float) -> str:
    """Three significant digits (more left of the point), no exponent,
    trailing zeros dropped: 1.23, 12.3, 123, 1234."""
    a = abs(x)
    text = f"{x:.0f}" if a >= 99.95 else f"{x:.1f}" if a >= 9.995 else f"{x:.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _zero(text)


def _percent(x: float) -> str:
    """A percentage to one decimal; a small one that would read 0.0 to two
    significant digits instead (an error rate of 0.012 %, not 0.0 %)."""
    if x != 0 and abs(x) < 0.05:
        return f"{x:.2g}"
    return _zero(f"{x:.1f}")


def _zero(text: str) -> str:
    """A rounded negative that reads as zero loses its sign."""
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text
