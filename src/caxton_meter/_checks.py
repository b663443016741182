"""The one place where arguments are checked.

Every public function, config and option of caxton_meter reads its
arguments through these: the same value is accepted or refused the same way
everywhere, and a quantity may be written with its unit wherever one is
taken ("30s", "500ms", "50K/s", "64KB"; see :mod:`caxton_meter._units`).

Each check returns the value in its base type (seconds as a float, a rate
per second, a count as an int) or raises :class:`ArgumentTypeError` (a
wrong type) or :class:`ArgumentError` (a wrong value) naming the argument,
the value, and what would be right.  A bool is never a number here:
``True`` is not one second.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from . import _core
from ._core import CaxtonMeterError
from ._units import UnitError, parse_quantity

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "choice",
    "did_you_mean",
    "flag",
    "fraction",
    "integer",
    "number",
    "optional",
    "rate",
    "seconds",
    "size",
    "stage_rate",
    "stages",
]

_T = TypeVar("_T")


class ArgumentError(CaxtonMeterError, ValueError):
    """An argument's value is out of its range or unreadable."""


class ArgumentTypeError(CaxtonMeterError, TypeError):
    """An argument is of the wrong type."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest of ``choices``, or ""."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_error(what: str, expected: str, value: object) -> ArgumentTypeError:
    return ArgumentTypeError(f"{what} must be {expected}, not {type(value).__name__}")


def integer(value: object, what: str, *, low: int | None = 1, high: int | None = None) -> int:
    """An int in [low, high] (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(what, "an int", value)
    if low is not None and value < low:
        raise ArgumentError(f"{what} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ArgumentError(f"{what} must be <= {high}, got {value!r}")
    return int(value)


def number(value: object, what: str, *, low: float = 0.0, strict: bool = True,
           high: float | None = None) -> float:
    """A finite number > ``low`` (>= with ``strict=False``), <= ``high``."""
    if not _is_number(value):
        raise _type_error(what, "a number", value)
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x) or (x <= low if strict else x < low) \
            or (high is not None and x > high):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        if high is not None:
            bound += f" and <= {high:g}"
        raise ArgumentError(f"{what} must be a finite number {bound}, got {value!r}")
    return x


def _quantity(value: object, what: str, kind: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _type_error(what, f"a number or a string with a unit ({example})", value)
    try:
        return parse_quantity(value, kind)
    except UnitError as e:
        raise ArgumentError(f"{what}: {e}") from None


def _positive_quantity(value: object, what: str, kind: str, example: str, scale: float,
                       allow_zero: bool) -> float:
    """A number (already in the base unit) or a string with a unit, scaled."""
    if isinstance(value, str) and _bare_number(value):
        out = float(value)
    elif isinstance(value, str):
        out = _quantity(value, what, kind, example) / scale
    elif _is_number(value):
        out = float(value)  # type: ignore[arg-type]
    else:
        raise _type_error(what, f"a number or a string with a unit ({example})", value)
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        raise ArgumentError(f"{what} must be a finite number {'>=' if allow_zero else '>'} 0, "
                            f"got {value!r}")
    return out


def _bare_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    """A duration in seconds, > 0 (>= 0 with ``allow_zero``): a number of
    seconds, or a string with a unit ("500ms", "30s", "2m", "1h"; a bare
    number in a string is seconds)."""
    return _positive_quantity(value, what, "time", "'30s', '500ms'", 1e9, allow_zero)


MAX_RATE = 1e9
"""The most arrivals per second a schedule can time (one per nanosecond)."""


def rate(value: object, what: str) -> float:
    """Events per second, > 0 and at most MAX_RATE: a number, or "50K/s",
    "2K", "1.5M msg/s"."""
    out = _positive_quantity(value, what, "rate", "'50K/s'", 1.0, False)
    if out > MAX_RATE:
        raise ArgumentError(f"{what} {value!r} cannot be scheduled: arrivals are timed in "
                            f"nanoseconds, at most 1G/s")
    return out


def size(value: object, what: str, *, low: int = 0) -> int:
    """A size in bytes, >= ``low``: an int, or "64KB", "1MiB"."""
    if isinstance(value, float):
        raise _type_error(what, "an int or a string with a unit ('64KB')", value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < low:
            raise ArgumentError(f"{what} must be >= {low}, got {value!r}")
        return int(value)
    out = _quantity(value, what, "size", "'64KB'")
    if out != int(out):
        raise ArgumentError(f"{what} must be a whole number of bytes, got {value!r}")
    if out < low:
        raise ArgumentError(f"{what} must be >= {low}, got {value!r}")
    return int(out)


def fraction(value: object, what: str, *, high: float = 1.0, strict_low: bool = False) -> float:
    """A fraction in [0, high] (or (0, high] with ``strict_low``); "5%" is 0.05."""
    if isinstance(value, str):
        out = _quantity(value, what, "ratio", "0.05 or '5%'")
    elif _is_number(value):
        out = float(value)  # type: ignore[arg-type]
    else:
        raise _type_error(what, "a number or a percentage ('5%')", value)
    if not (0 <= out <= high) or (strict_low and out == 0) or math.isnan(out):
        low = "(0" if strict_low else "[0"
        raise ArgumentError(f"{what} must be a fraction in {low}, {high:g}] (0.05 for 5 %), "
                            f"got {value!r}")
    return out


def choice(value: object, what: str, choices: Iterable[str]) -> str:
    """One of ``choices``; the error lists them with a did-you-mean."""
    options = tuple(choices)
    if value in options:
        return value
    hint = did_you_mean(value, options) if isinstance(value, str) else ""
    raise ArgumentError(f"{what} must be one of {', '.join(map(repr, options))}, "
                        f"got {value!r}{hint}")


def flag(value: object, what: str) -> bool:
    """A bool (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise _type_error(what, "a bool", value)
    return value


def optional(check: Callable[..., _T]) -> Callable[..., _T | None]:
    """``check`` that lets None through."""
    def checked(value: object, what: str, **kwargs: Any) -> _T | None:
        return None if value is None else check(value, what, **kwargs)
    checked.__doc__ = f"None, or {check.__name__}: {check.__doc__}"
    return checked


# -- arrival schedules -------------------------------------------------------------------

_rate, _seconds = rate, seconds       # stages() has parameters of these names

Stages = Iterable[tuple[float | str, float | str]]


def stage_rate(value: object, what: str) -> float:
    # a stage may hold a rate of 0 (a pause, a ramp from nothing); with a
    # unit ("2K/s") a rate is > 0
    if isinstance(value, str):
        return _rate(value, what)
    out = number(value, what, low=0.0, strict=False)
    if out > MAX_RATE:
        raise ArgumentError(f"{what} {value!r} cannot be scheduled: arrivals are timed in "
                            f"nanoseconds, at most 1G/s")
    return out


def stages(what: str, stages: Stages | None, rate: float | str | None,
                   duration: float | str | None, start_rate: float | str | None,
                   stripe: bytes | None = None,
                   ) -> tuple[list[tuple[float, float]], float | None, _core.Schedule]:
    """The arrival schedule a driver was given, checked: ``stages``
    [(rate per second, duration in seconds), ...] or one stage as ``rate``
    and ``duration``, each with or without a unit ("2K/s", "200ms"), and
    ``start_rate`` (and the ``stripe`` of it a worker takes, if any).  Returns the stages in numbers, the start rate and the
    core's Schedule of them; raises ArgumentError/ArgumentTypeError named
    for ``what`` (the driver)."""
    if stages is not None:
        if rate is not None or duration is not None:
            raise ArgumentError(f"{what}: give stages, or rate= and duration=, not both")
        if isinstance(stages, (str, bytes)) or not isinstance(stages, Iterable):
            raise ArgumentTypeError(
                f"{what}: stages must be a sequence of (rate per second, duration in seconds), "
                f"got {type(stages).__name__}")
        plan = []
        for index, stage in enumerate(stages):
            try:
                r, d = stage
            except (TypeError, ValueError):
                raise ArgumentError(
                    f"{what}: stage {index} must be (rate per second, duration in seconds), "
                    f"got {stage!r}") from None
            plan.append((stage_rate(r, f"{what}: stage {index}'s rate"),
                         _seconds(d, f"{what}: stage {index}'s duration", allow_zero=True)))
        if not plan:
            raise ArgumentError(f"{what}: stages is empty; give at least one (rate, duration)")
    elif rate is None or duration is None:
        raise ArgumentError(f"{what}: give stages, or rate= (arrivals per second) and "
                            f"duration= (seconds); got rate={rate!r}, duration={duration!r}")
    else:
        plan = [(_rate(rate, f"{what}: rate"), _seconds(duration, f"{what}: duration"))]
    start = None if start_rate is None else stage_rate(start_rate, f"{what}: start_rate")
    try:
        schedule = _core.Schedule(plan, start_rate=start, stripe=stripe)
    except ValueError as e:     # the core's message ("the stages last no time"), named for what
        raise ArgumentError(str(e).replace("Schedule:", f"{what}:", 1)) from None
    except TypeError as e:
        raise ArgumentTypeError(str(e).replace("Schedule:", f"{what}:", 1)) from None
    return plan, start, schedule
