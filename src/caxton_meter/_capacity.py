"""Capacity search: the highest arrival rate at which a system keeps an SLO.

:func:`find_capacity` offers a target load in steps of constant arrival
rate, each an open loop (latency from each request's intended start, so a
queue that builds up is in the figures), and judges each step:

* **A step passes** when every SLO expression holds (``"p99 < 10ms"``, the
  threshold grammar of :mod:`caxton_meter._expressions`, read on the step's
  corrected latencies) *and* the loop offered the load asked for: the rate
  achieved within 1 % of the rate asked (:data:`RATE_TOLERANCE`), nothing
  dropped, the step not cut by its deadline, and no more failed requests
  than ``max_error_rate`` allows (none by default).  A step that holds its
  latency only because the loop sent less than asked is not a pass: that
  is coordinated omission at the level of the whole step.
* **Rising steps**: from ``start_rate``, each step ``factor`` (2) times the
  last, up to ``max_rate``, until one fails.  If the first step fails, the
  rate falls by the same factor until one passes (down to 1/s).
* **Bisection** between the highest passing rate and the lowest failing one
  until they are within ``precision`` (5 %) of the passing one.  The
  capacity is the highest passing rate of that bracket.  Latency at a given
  rate is a random quantity: near the capacity a step may pass or fail by
  chance, and bisection takes each verdict as it comes (every step is kept
  in the result, so a reader can see a non-monotonic one).

How long a step lasts
---------------------
A percentile is read from the requests beyond it: the empirical p99 of
``n`` requests is set by the ``n/100`` slowest.  How many requests lie
beyond the true p99 is binomial (mean ``n p``, standard deviation about
``sqrt(n p)``), so with ``k`` of them the percentile read is that of rank
``k ± sqrt(k)``: with ``k = 50`` (:data:`TAIL_SAMPLES`), between p98.86 and
p99.14 at one standard deviation; with 5, anywhere from p98.5 to p99.5.
Each step therefore lasts until ``tail_samples / (1 - q/100)`` requests
have been offered for the SLO's percentile ``q`` -- 5,000 for p99, 50,000
for p99.9, 100 for p50 -- and ``min_step`` (2 s) at least, so that a
server's warm-up, a GC pause or a flush is a small part of the step and
1 % of lateness in the schedule (20 ms) is measurable.  At a low rate the
request count rules (p99 at 1,000/s: 5 s); at a high one the floor does.
Expressions without a percentile (``avg``, ``error_rate``) size the step as
p50.  ``min`` and ``max`` are refused: the extreme of a step grows with its
length, so no length makes it steady (write ``p99.9``).

The knee
--------
The knee is the rate at which the SLO's percentile (p99 when the SLO
names none) grows past ``knee_factor`` (2) times its value at the lowest
rate measured for good: the last crossing of that level on the way up,
above which every step measured stays at or over it, interpolated
linearly between the two steps around the crossing; None when the highest
step is still below it.  The last crossing, not the first, so that one
step whose tail a hiccup lifted (a p99 of 5 ms among steps at 1.5 ms)
does not mark the knee.  Why this rule and not Kneedle
(Satopää et al., 2011, the point of a normalised curve farthest from the
chord): a search measures 5-15 points spaced geometrically, not a dense
smooth curve, and Kneedle's normalisation by the range measured moves its
answer with ``max_rate`` and with where the steps fall (on a doubling
ladder the farthest point is nearly always the last or the first failing
step).  "The tail has doubled" is a property of the system alone, and it
has a queueing meaning: in an M/M/1 queue every percentile of the response
time is ``(service time percentile) / (1 - rho)``, so it doubles at
utilisation 0.5 -- half the saturation rate -- the classic knee of
capacity planning; with deterministic service and arrivals (D/D/1) there
is no queue below saturation and the knee is the saturation rate itself.
The distance between knee and capacity says how much headroom a tail SLO
leaves: a knee far below the capacity is a system whose latency grows long
before it breaks the SLO.

Every search is bounded: ``max_rate``, ``max_steps`` (25) and ``budget``
(5 minutes of wall time: a step that would end beyond it is not started).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _checks
from ._checks import ArgumentError, ArgumentTypeError
from ._core import OpenLoopResult

__all__ = ["CapacityResult", "CapacityStep", "find_capacity", "step_duration"]

FORMAT_VERSION = 1
# The capacity document (CapacityResult.to_dict, the CLI's --json):
#   {"kind": "caxton_meter.capacity", "format": 1, "target", "slo": [...],
#    "percentile", "capacity", "limit", "knee", "knee_factor", "precision",
#    "converged", "stopped", "verdict", "elapsed",
#    "steps": [{"rate", "duration", "achieved", "requests", "completed",
#               "failed", "dropped", "p50", "p99", "value" (ns or null),
#               "slo_values": {label: value}, "errors": {kind: count},
#               "passed", "reason", "phase"}, ...]}
# History:
#   1: the first version.

RATE_TOLERANCE = 0.01
"""A step holds its rate when the rate achieved is within 1 % of the rate asked."""
TAIL_SAMPLES = 50
"""Requests beyond the SLO's percentile a step offers at least (see the module's text)."""
MIN_RATE = 1.0
"""The lowest rate a falling search tries (per second)."""

_DEFAULTS = {"start_rate": 1000.0, "max_rate": 1e6, "factor": 2.0, "precision": 0.05,
             "max_steps": 25, "budget": 300.0, "min_step": 2.0}
# Allowed past a step's length before its deadline stops the sending: a loop
# this late has long failed the 1 % rule; what it sent is still measured.
_GRACE = 0.1
_GRACE_MIN = 0.2
_DRAIN_ROUTER = 1.0       # seconds a router's in-flight messages may take after a step
_REFUSED = {
    "min": "the fastest request of a step says nothing of its load",
    "max": "the slowest request of a step grows with the step's length, so no length "
           "makes it steady; write a high percentile (p99.9)",
    "count": "a count grows with the step's length; write throughput or error_rate",
    "errors": "a count grows with the step's length; write error_rate",
    "rss": "a search does not sample memory",
    "cpu": "a search does not sample CPU",
}

Measure = Callable[[float, float, float], OpenLoopResult]
"""One step: (rate per second, duration in s, deadline in s) -> the loop's result."""


# -- the result --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CapacityStep:
    """One step of a search: the load asked, what the loop offered, what
    the target did, and the verdict.  Latencies in ns, from each request's
    intended start; None when no request completed."""
    rate: float                 # asked, per second
    duration: float             # the step's schedule, seconds
    achieved: float             # sent per second (OpenLoopResult.achieved_rate)
    requests: int
    completed: int
    failed: int
    dropped: int
    p50: float | None
    p99: float | None
    value: float | None         # the search's percentile (the SLO's)
    slo_values: tuple[tuple[str, float], ...]     # each SLO's metric as measured
    errors: tuple[tuple[str, int], ...]           # failures by kind
    passed: bool
    reason: str                 # why it failed; "" when it passed
    phase: str                  # "rise", "fall" or "bisect"

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "duration": self.duration, "achieved": self.achieved,
                "requests": self.requests, "completed": self.completed,
                "failed": self.failed, "dropped": self.dropped, "p50": self.p50,
                "p99": self.p99, "value": self.value,
                "slo_values": {k: _finite(v) for k, v in self.slo_values},
                "errors": dict(self.errors), "passed": self.passed, "reason": self.reason,
                "phase": self.phase}


_STOPS = ("converged", "max_rate", "max_steps", "budget", "min_rate", "unreachable",
          "interrupted", "disabled")


@dataclass(frozen=True)
class CapacityResult:
    """What a capacity search found.

    capacity: the highest rate (per second) that passed below the lowest
        that failed; None when no rate passed.
    limit: the lowest rate that failed above the capacity; None when none
        failed (``max_rate`` held: the capacity is at least ``max_rate``).
    knee: the rate above which the percentile stays at or over
        ``knee_factor`` times its lowest-rate value (see the module's text);
        None if the highest step is below that.
    steps: every step, in the order run.
    slo: the SLO expressions, as written; ``percentile`` the one that sized
        the steps and defines the knee.
    converged: capacity and limit are within ``precision`` of each other.
    stopped: why the search ended: "converged", "max_rate", "max_steps",
        "budget", "min_rate", "unreachable" (a step completed nothing),
        "interrupted" (Ctrl-C) or "disabled" (meter.capacity with
        measurement disabled: nothing was sent).
    elapsed: seconds of wall time.
    """
    target: str
    slo: tuple[str, ...]
    percentile: float
    capacity: float | None
    limit: float | None
    knee: float | None
    knee_factor: float
    precision: float
    converged: bool
    stopped: str
    elapsed: float
    steps: tuple[CapacityStep, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.stopped not in _STOPS:
            raise ArgumentError(f"CapacityResult: stopped must be one of {', '.join(_STOPS)}, "
                                f"got {self.stopped!r}")

    @property
    def found(self) -> bool:
        """Whether some rate passed."""
        return self.capacity is not None

    @property
    def verdict(self) -> str:
        """One sentence: the capacity, how it is bracketed, why the search stopped."""
        from ._units import format_quantity as fq
        slo = " and ".join(repr(s) for s in self.slo)
        if self.capacity is None:
            lowest = min((s.rate for s in self.steps), default=None)
            why = {"unreachable": "a step completed no request (is the target up?)",
                   "interrupted": "the search was interrupted",
                   "budget": "the time budget ran out", "max_steps": "max_steps was reached",
                   "disabled": "measurement is disabled: nothing was sent",
                   }.get(self.stopped, "no rate passed")
            at = f" down to {fq(lowest, '/s')}" if lowest is not None else ""
            return f"no capacity found for {slo}: no rate passed{at}; {why}"
        text = f"capacity {fq(self.capacity, '/s')} for {slo}"
        if self.limit is not None:
            gap = (self.limit - self.capacity) / self.capacity
            text += (f" ({fq(self.limit, '/s')} failed, {gap:.1%} above"
                     + (f", within the precision {self.precision:.0%})" if self.converged
                        else ")"))
        if self.stopped == "max_rate":
            text += f": max_rate held, the capacity is at least {fq(self.capacity, '/s')}"
        elif self.stopped == "max_steps":
            text += ": stopped at max_steps before the precision was reached"
        elif self.stopped == "budget":
            text += ": stopped by the time budget before the precision was reached"
        elif self.stopped == "interrupted":
            text += ": interrupted before the precision was reached"
        if self.knee is not None:
            text += (f"; knee at {fq(self.knee, '/s')} (p{self.percentile:g} at "
                     f"{self.knee_factor:g}x its low-rate value or more above it)")
        return text

    def to_dict(self) -> dict[str, Any]:
        """The result as the JSON document of FORMAT_VERSION."""
        return {"kind": "caxton_meter.capacity", "format": FORMAT_VERSION,
                "target": self.target, "slo": list(self.slo), "percentile": self.percentile,
                "capacity": self.capacity, "limit": self.limit, "knee": self.knee,
                "knee_factor": self.knee_factor, "precision": self.precision,
                "converged": self.converged, "stopped": self.stopped,
                "verdict": self.verdict, "elapsed": self.elapsed,
                "steps": [s.to_dict() for s in self.steps]}

    def to_json(self) -> str:
        import json
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


# -- the SLO and the length of a step -----------------------------------------------------------

def _slo_expressions(slo: object, what: str) -> list[Any]:
    from ._expressions import PLUGIN_METRICS, ThresholdExpression
    texts: list[object]
    if isinstance(slo, (str, ThresholdExpression)):
        texts = [slo]
    elif isinstance(slo, Iterable) and not isinstance(slo, (bytes, Mapping)):
        texts = list(slo)
    else:
        raise ArgumentTypeError(f"{what}: slo must be an expression ('p99 < 10ms') or a "
                                f"sequence of them, not {type(slo).__name__}")
    if not texts:
        raise ArgumentError(f"{what}: slo is empty; give an expression such as 'p99 < 10ms'")
    out = []
    for text in texts:
        if isinstance(text, ThresholdExpression):
            if text.metric_set is not PLUGIN_METRICS:
                raise ArgumentError(f"{what}: slo {text.text!r} is an expression of the "
                                    f"{text.metric_set.name} metrics; a search reads the "
                                    f"plugin's ({PLUGIN_METRICS.listing()})")
            expr = text
        elif isinstance(text, str):
            expr = PLUGIN_METRICS.parse(text)
        else:
            raise ArgumentTypeError(f"{what}: each slo must be an expression ('p99 < 10ms'), "
                                    f"not {type(text).__name__}")
        if expr.metric in _REFUSED:
            raise ArgumentError(f"{what}: slo {expr.text!r}: {expr.metric} cannot judge a "
                                f"step: {_REFUSED[expr.metric]}")
        if expr.metric == "p" and expr.percentile in (0.0, 100.0):
            raise ArgumentError(f"{what}: slo {expr.text!r}: p(0) and p(100) are the "
                                f"extremes of a step: {_REFUSED['max']}")
        out.append(expr)
    return out


def _search_percentile(expressions: Sequence[Any]) -> float:
    """The percentile that sizes the steps and defines the knee: the SLO's
    one farthest in its tail (p99.9 over p99), or 50 when none is named."""
    qs = [float(e.percentile) for e in expressions if e.metric == "p"]
    if not qs:
        return 50.0
    return min(qs, key=lambda q: min(q, 100.0 - q))


def step_duration(rate: float, percentile: float, *, tail_samples: int = TAIL_SAMPLES,
                  min_step: float = _DEFAULTS["min_step"]) -> float:
    """Seconds a step at ``rate`` lasts so that ``tail_samples`` requests
    lie beyond ``percentile`` (on its side of the median), ``min_step`` at
    least: ``max(min_step, tail_samples / (tail * rate))`` where ``tail``
    is ``1 - percentile/100`` (or ``percentile/100`` below the median)."""
    tail = min(percentile, 100.0 - percentile) / 100.0
    if not (rate > 0 and tail > 0):
        raise ArgumentError(f"step_duration: rate must be > 0 and the percentile strictly "
                            f"between 0 and 100, got {rate!r} and {percentile!r}")
    return max(min_step, tail_samples / (tail * rate))


# -- judging a step ------------------------------------------------------------------------------

def _judge(res: OpenLoopResult, rate: float, duration: float, expressions: Sequence[Any],
           percentile: float, max_error_rate: float, phase: str) -> CapacityStep:
    from ._expressions import Measurement, MissingMeasurementError
    from ._units import format_quantity as fq
    latency = res.latency
    timed = latency.total_count > 0
    reasons: list[str] = []
    if res.interrupted:
        reasons.append("interrupted")
    if res.deadline_reached:
        reasons.append("the step's deadline stopped the sending (the loop fell behind)")
    if res.dropped:
        reasons.append(f"{res.dropped:,} of {res.planned:,} arrivals dropped")
    intended = res.intended_rate or rate
    if res.achieved_rate < (1 - RATE_TOLERANCE) * intended:
        reasons.append(f"the loop fell behind: {fq(res.achieved_rate, '/s')} sent of "
                       f"{fq(intended, '/s')} asked")
    ended = res.completed + res.failed
    if res.failed and res.failed > max_error_rate * ended:
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(res.errors.items(),
                                                           key=lambda kv: -kv[1]))
        reasons.append(f"{res.failed:,} of {ended:,} requests failed "
                       f"({res.failed / ended:.2%}, allowed {max_error_rate:.2%})"
                       + (f": {kinds}" if kinds else ""))
    seconds = res.elapsed_ns / 1e9
    measurement = Measurement(histogram=latency if timed else None, count=res.completed,
                              errors=res.failed,
                              throughput=res.completed / seconds if seconds > 0 else None)
    values: list[tuple[str, float]] = []
    for expr in expressions:
        if expr.kind == "time" and not timed:
            values.append((expr.label, math.nan))
            reasons.append(f"{expr.label} not measured: no request completed")
            continue
        try:
            ev = expr.evaluate(measurement)
        except MissingMeasurementError as e:
            values.append((expr.label, math.nan))
            reasons.append(f"{expr.label} not measured ({e})")
            continue
        values.append((expr.label, ev.actual))
        if not ev.passed:
            reasons.append(f"{expr.label} = {fq(ev.actual, expr.unit)}, not {expr.operator} "
                           f"{fq(expr.value, expr.unit)}")
    return CapacityStep(
        rate=rate, duration=duration, achieved=res.achieved_rate, requests=res.requests,
        completed=res.completed, failed=res.failed, dropped=res.dropped,
        p50=float(latency.value_at_percentile(50.0)) if timed else None,
        p99=float(latency.value_at_percentile(99.0)) if timed else None,
        value=float(latency.value_at_percentile(percentile)) if timed else None,
        slo_values=tuple(values), errors=tuple(sorted(res.errors.items())),
        passed=not reasons, reason="; ".join(reasons), phase=phase)


def knee_of(steps: Iterable[CapacityStep], factor: float = 2.0) -> float | None:
    """The rate above which the steps' percentile value stays at or over
    ``factor`` times its value at the lowest rate measured: the last
    crossing of that level on the way up, interpolated linearly between the
    two steps around it.  None when the highest step is below the level
    (or fewer than two steps were timed)."""
    points = sorted((s.rate, s.value) for s in steps if s.value is not None)
    if len(points) < 2 or points[0][1] <= 0:
        return None
    level = factor * points[0][1]
    below = max(i for i, (_, v) in enumerate(points) if v < level)   # the first is
    if below == len(points) - 1:
        return None
    (r0, v0), (r1, v1) = points[below], points[below + 1]
    return r0 + (level - v0) * (r1 - r0) / (v1 - v0)


# -- the search ----------------------------------------------------------------------------------

def _search(measure: Measure, *, expressions: Sequence[Any], percentile: float,
            start_rate: float, max_rate: float, factor: float, precision: float,
            max_steps: int, budget: float, min_step: float, tail_samples: int,
            max_error_rate: float, drain: float,
            on_step: Callable[[CapacityStep], object] | None = None,
            clock: Callable[[], float] = time.monotonic,
            ) -> tuple[list[CapacityStep], str, float | None, float | None, float]:
    """Rising (or falling) steps, then bisection; returns (steps, why it
    stopped, the highest passing rate, the lowest failing one above it,
    seconds)."""
    t0 = clock()
    steps: list[CapacityStep] = []
    low: float | None = None         # highest rate that passed
    high: float | None = None        # lowest rate that failed
    rate, phase = min(start_rate, max_rate), "rise"
    while True:
        if len(steps) >= max_steps:
            stopped = "max_steps"
            break
        length = step_duration(rate, percentile, tail_samples=tail_samples, min_step=min_step)
        grace = max(_GRACE * length, _GRACE_MIN)
        if clock() - t0 + length + grace + drain > budget:
            stopped = "budget"
            break
        try:
            res = measure(rate, length, length + grace)
        except KeyboardInterrupt:       # between a loop's checks: the steps so far stand
            stopped = "interrupted"
            break
        step = _judge(res, rate, length, expressions, percentile, max_error_rate, phase)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if res.interrupted:
            stopped = "interrupted"
            break
        if step.completed == 0 and low is None:
            # nothing has ever completed: a server that is not there, not a load
            # too high; falling steps would only spend the budget
            high = rate if high is None else min(high, rate)
            stopped = "unreachable"
            break
        if step.passed:
            low = rate if low is None else max(low, rate)
        else:
            high = rate if high is None else min(high, rate)
        if high is None:
            if rate >= max_rate:
                stopped = "max_rate"
                break
            rate, phase = min(rate * factor, max_rate), "rise"
        elif low is None:
            if rate <= MIN_RATE:
                stopped = "min_rate"
                break
            rate, phase = max(rate / factor, MIN_RATE), "fall"
        else:
            if high - low <= precision * low:
                stopped = "converged"
                break
            rate, phase = (low + high) / 2, "bisect"
    return steps, stopped, low, high, clock() - t0


# -- targets -------------------------------------------------------------------------------------

def _measure_for(target: object, what: str, *, payload: bytes | None,
                 args: tuple[Any, ...], concurrency: int, agents: Any,
                 max_queue: int) -> tuple[Measure, float, str, Callable[[], None]]:
    """How a step loads ``target``: (measure, seconds a step may take to
    drain after its deadline, the target's description, what to call when
    the search ends)."""
    from ._core import Router
    from ._targets import target_kind

    def nothing() -> None:
        pass

    if isinstance(target, Router):
        if agents is None:
            raise ArgumentError(f"{what}: a Router target needs agents= (the agent ids to "
                                f"send to, round robin)")
        ids = list(agents) if isinstance(agents, Iterable) else [agents]
        content = payload or b""
        from ._core import open_loop

        def router_step(rate: float, length: float, deadline: float) -> OpenLoopResult:
            return open_loop(target, ids, [(rate, length)], content=content,
                             max_in_flight=max(max_queue, 1), deadline=deadline,
                             interval=length)
        return router_step, _DRAIN_ROUTER, f"router agents {ids[:8]}", nothing
    if agents is not None:
        raise ArgumentError(f"{what}: agents= is for a Router target")
    kind = target_kind(target, what)
    if kind == "network target":
        from ._network import load_network
        if payload is not None or args:
            raise ArgumentError(f"{what}: payload= and args= are not for a network target "
                                f"(its request is set when it is made)")

        def network_step(rate: float, length: float, deadline: float) -> OpenLoopResult:
            return load_network(target, rate=rate, duration=length,  # type: ignore[arg-type]
                                deadline=deadline, max_queue=max_queue, interval=length)
        return network_step, float(getattr(target, "timeout")), repr(target), nothing
    from ._core import open_loop_call
    if kind == "target":
        if args:
            raise ArgumentError(f"{what}: args= is for a callable; a Target's request() "
                                f"takes payload=")
        request = getattr(target, "request")
        data = bytes(payload or b"")
        setup = getattr(target, "setup", None)
        if setup is not None:
            setup()
        teardown = getattr(target, "teardown", None)

        def target_step(rate: float, length: float, deadline: float) -> OpenLoopResult:
            return open_loop_call(request, [(rate, length)], args=(data,), deadline=deadline,
                                  interval=length)
        return (target_step, 0.0, type(target).__name__,
                teardown if teardown is not None else nothing)
    if payload is not None and kind != "async target":
        raise ArgumentError(f"{what}: payload= is for a Target's request(payload); "
                            f"pass args=(...) to a callable")
    if kind == "callable":
        def call_step(rate: float, length: float, deadline: float) -> OpenLoopResult:
            return open_loop_call(target, [(rate, length)], args=args,  # type: ignore[arg-type]
                                  deadline=deadline, interval=length)
        return call_step, 0.0, getattr(target, "__qualname__", type(target).__name__), nothing

    import asyncio
    if kind == "async target":
        from ._targets import drive_async
        if args:
            raise ArgumentError(f"{what}: args= is for a callable; an AsyncTarget's request() "
                                f"takes payload=")

        def async_target_step(rate: float, length: float, deadline: float) -> OpenLoopResult:
            # each step between the target's setup() and teardown(), on an
            # event loop of its own
            return asyncio.run(drive_async(target, [(rate, length)],  # type: ignore[arg-type]
                                           payload=payload or b"", concurrency=concurrency,
                                           deadline=deadline, interval=length))
        return async_target_step, 0.0, type(target).__name__, nothing
    from ._aioload import open_loop_async

    def coroutine_step(rate: float, length: float, deadline: float) -> OpenLoopResult:
        return asyncio.run(open_loop_async(target, [(rate, length)],  # type: ignore[arg-type]
                                           args=args, concurrency=concurrency,
                                           deadline=deadline, interval=length))
    return coroutine_step, 0.0, getattr(target, "__qualname__", type(target).__name__), nothing


def find_capacity(target: object, *, slo: str | Iterable[str],
                  start_rate: float | str = _DEFAULTS["start_rate"],
                  max_rate: float | str = _DEFAULTS["max_rate"],
                  factor: float = _DEFAULTS["factor"],
                  precision: float | str = _DEFAULTS["precision"],
                  max_steps: int = int(_DEFAULTS["max_steps"]),
                  budget: float | str = _DEFAULTS["budget"],
                  min_step: float | str = _DEFAULTS["min_step"],
                  tail_samples: int = TAIL_SAMPLES, max_error_rate: float | str = 0.0,
                  knee_factor: float = 2.0, payload: bytes | None = None,
                  args: Sequence[Any] = (), concurrency: int = 100, agents: Any = None,
                  max_queue: int = 10_000,
                  on_step: Callable[[CapacityStep], object] | None = None) -> CapacityResult:
    """Find the highest arrival rate at which ``target`` keeps ``slo``.

    ``target``: an HttpTarget or TcpTarget (``load_network``); a Router with
    ``agents=`` (the ids ``open_loop`` sends ``payload`` to, round robin); a
    Target (``request(payload)``, between one ``setup()`` and
    ``teardown()``) or a callable (called with ``args``), both through
    ``open_loop_call``, one call at a time; a coroutine function or an
    AsyncTarget (``open_loop_async``, ``concurrency`` at a time, an event
    loop per step; an AsyncTarget's setup and teardown run around each
    step).  ``slo``: one threshold expression or several, all of which must
    hold (``"p99 < 10ms"``, ``"avg < 2ms"``, ``"error_rate < 1%"``; the
    plugin's grammar, docs/thresholds.md).

    Steps of constant rate rise from ``start_rate`` by ``factor`` up to
    ``max_rate`` until one fails (falling by ``factor`` if the first fails),
    then bisect between the highest passing and the lowest failing rate
    until they are within ``precision`` (a fraction or "5%") of each other.
    A step passes when every SLO holds on its latencies from intended
    start, the rate achieved is within 1 % of the rate asked, nothing was
    dropped, and at most ``max_error_rate`` of its requests failed.  Each
    step lasts long enough that ``tail_samples`` (50) requests lie beyond
    the SLO's percentile -- p99 needs 5,000 requests, p99.9 50,000 --
    and ``min_step`` (2 s) at least; ``max_steps`` (25) and ``budget``
    (seconds of wall time, 300) bound the search: a step that would end
    beyond the budget is not started.  ``max_queue``: requests that may
    wait for a connection (network) or be in flight (router) before the
    rest are dropped.  ``on_step(step)`` is called after each step.

    Returns a :class:`CapacityResult`: the capacity, the lowest failing
    rate, the knee of the latency-vs-rate curve (the rate above which the
    percentile stays at or over ``knee_factor`` times its lowest-rate
    value) and
    every step.  Arguments are checked before anything is sent."""
    what = "find_capacity"
    expressions = _slo_expressions(slo, what)
    percentile = _search_percentile(expressions)
    start = _checks.rate(start_rate, f"{what}: start_rate")
    top = _checks.rate(max_rate, f"{what}: max_rate")
    if top < start:
        raise ArgumentError(f"{what}: max_rate ({top:g}/s) is below start_rate ({start:g}/s)")
    grow = _checks.number(factor, f"{what}: factor", low=1.0)
    if grow < 1.1:
        raise ArgumentError(f"{what}: factor must be 1.1 or more (each rising step that much "
                            f"above the last), got {factor!r}")
    close = _checks.fraction(precision, f"{what}: precision", strict_low=True)
    steps_cap = _checks.integer(max_steps, f"{what}: max_steps", low=1, high=1000)
    wall = _checks.seconds(budget, f"{what}: budget")
    shortest = _checks.seconds(min_step, f"{what}: min_step")
    tail = _checks.integer(tail_samples, f"{what}: tail_samples", low=1)
    allowed = _checks.fraction(max_error_rate, f"{what}: max_error_rate")
    bend = _checks.number(knee_factor, f"{what}: knee_factor", low=1.0)
    limit = _checks.integer(concurrency, f"{what}: concurrency", low=1)
    queue = _checks.integer(max_queue, f"{what}: max_queue", low=0)
    if on_step is not None and not callable(on_step):
        raise ArgumentTypeError(f"{what}: on_step must be callable, not "
                                f"{type(on_step).__name__}")
    if payload is not None and not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ArgumentTypeError(f"{what}: payload must be bytes, not {type(payload).__name__}")
    first = step_duration(start, percentile, tail_samples=tail, min_step=shortest)
    measure, drain, described, finish = _measure_for(
        target, what, payload=None if payload is None else bytes(payload),
        args=tuple(args), concurrency=limit, agents=agents, max_queue=queue)
    try:
        if first + max(_GRACE * first, _GRACE_MIN) + drain > wall:
            drained = (f" and the {drain:g} s its last requests may take to end (the "
                       f"target's timeout)" if drain else "")
            raise ArgumentError(
                f"{what}: the first step ({first:.3g} s at {start:g}/s for {tail} requests "
                f"beyond p{percentile:g}){drained} would not fit in the budget of {wall:g} s; "
                f"raise budget or start_rate, or lower tail_samples"
                + (" or the timeout" if drain else ""))
        steps, stopped, low, high, elapsed = _search(
            measure, expressions=expressions, percentile=percentile, start_rate=start,
            max_rate=top, factor=grow, precision=close, max_steps=steps_cap, budget=wall,
            min_step=shortest, tail_samples=tail, max_error_rate=allowed, drain=drain,
            on_step=on_step)
    finally:
        finish()
    return result_of(steps, stopped=stopped, low=low, high=high, elapsed=elapsed,
                     target=described, slo=tuple(e.text for e in expressions),
                     percentile=percentile, precision=close, knee_factor=bend)


def result_of(steps: Sequence[CapacityStep], *, stopped: str, low: float | None,
              high: float | None, elapsed: float, target: str, slo: tuple[str, ...],
              percentile: float, precision: float, knee_factor: float) -> CapacityResult:
    """The CapacityResult of a search's steps."""
    converged = low is not None and high is not None and high - low <= precision * low
    return CapacityResult(target=target, slo=slo, percentile=percentile, capacity=low,
                          limit=high, knee=knee_of(steps, knee_factor),
                          knee_factor=knee_factor, precision=precision, converged=converged,
                          stopped=stopped, elapsed=elapsed, steps=tuple(steps))
