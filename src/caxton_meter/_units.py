"""Quantities written by people: "10ms", "50K/s", "1%", "512MB".

:func:`parse_quantity` turns such a string into a number in the base unit
caxton_meter measures in (ns for times, msg/s for rates, bytes for sizes,
percent for CPU, a fraction for ratios), given the kind of quantity the
metric is.  Used by the command line's ``--slo`` and ``--threshold`` and by
the pytest plugin's threshold expressions.
"""
from __future__ import annotations

import math
import re

from ._core import CaxtonMeterError

__all__ = ["KINDS", "UnitError", "kind_of_unit", "parse_quantity"]


class UnitError(CaxtonMeterError, ValueError):
    """A quantity that cannot be read; the message lists the valid units."""


_TIME = {"ns": 1.0, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9,
         "min": 60e9, "h": 3600e9}
_SIZE = {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024.0, "mib": 1024.0 ** 2,
         "gib": 1024.0 ** 3}
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_RATE_UNITS = ("/s", "msg/s", "rps", "tasks/s", "req/s")

KINDS = {
    "time": "ns, us, ms, s, m, h (a bare number is ns)",
    "rate": "a number with an optional K/M/G and /s, msg/s or rps (50K/s, 1.5M msg/s)",
    "size": "B, KB, MB, GB (decimal), KiB, MiB, GiB (a bare number is bytes)",
    "percent": "a number with an optional % (5%, 5)",
    "ratio": "a percentage (1%) or a fraction (0.01)",
}
"""The kinds of quantity and the units each accepts."""

_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


def _number(text: str) -> tuple[float, str]:
    m = re.match(r"\s*(" + _NUMBER + r")\s*", text)
    if not m:
        raise UnitError(f"{text!r} does not start with a number")
    return float(m.group(1)), text[m.end():].strip()


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
        value = number * _scale(unit, kind, text)
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
        m = re.fullmatch(r"([kKmMgG]?)\s*(/s|msg/s|rps|tasks/s|req/s)?", u)
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


_UNIT_KINDS = {"ns": "time", "s": "time", "msg/s": "rate", "tasks/s": "rate", "bytes": "size",
               "percent": "percent", "ratio": "ratio"}


def kind_of_unit(unit: str) -> str:
    """The kind of quantity a metric in ``unit`` is ("time" for "ns", ...);
    counts and other units are plain numbers ("count")."""
    return _UNIT_KINDS.get(unit, "count")
