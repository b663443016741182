"""What a measurement is: metrics with their declared meaning, grades,
thresholds, intervals and a scenario's result.

Everything above the core reads this model and nothing else to know what
a figure means.  A metric declares, where it is produced:

* its :class:`Kind` -- what it measures (a throughput, a latency, a
  duration, memory, CPU, a ratio, a count, a flag), which decides the
  report section it appears in and how its value is written;
* its :class:`Direction` -- whether more is better, less is better, or the
  figure is not compared with a baseline at all (counts, flags, the load a
  config asks for);
* for a percentile of a histogram, the histogram's name and the
  percentile, so that comparison can reach the distribution behind it.

Comparison, reports and the plugin read these declarations; none of them
guesses from a metric's name or unit.  A :class:`MetricSpec` holds the
declaration once; calling it with a value makes the :class:`Metric`.

Grading.  The guide's targets table is :data:`DEFAULT_THRESHOLDS`, one
:class:`Threshold` per graded metric (in base units: req/s, ns, bytes,
percent).  A threshold's direction is its metric's (:data:`GRADED`), so
the table and the metric cannot disagree.  :func:`grade` reads the table
literally: for less-is-better metrics the table says "< 1 ms", so a value
earns a grade if strictly below its bound (a value exactly at a bound falls
to the next grade); for throughput the table says "100K msg/s", meaning at
least that, so a value at or above a bound earns its grade.  Throughput is
graded as requests completed per second ("req/s"; a request and its reply
count once, the stricter reading of "messages"); a scenario that also
reports every message delivered names it ``messages_per_second`` ("msg/s").
"""
from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._checks import ArgumentError, ArgumentTypeError, did_you_mean

if TYPE_CHECKING:
    from ._core import Histogram
    from ._sampling import ResourceProfile

__all__ = [
    "DEFAULT_THRESHOLDS",
    "GRADED",
    "Direction",
    "Grade",
    "Interval",
    "Kind",
    "Metric",
    "MetricSpec",
    "ScenarioResult",
    "Threshold",
    "grade",
    "resolve_thresholds",
]

_MS = 1_000_000           # ns
_S = 1_000_000_000        # ns
_MB = 1_000_000           # bytes (the guide's MB, decimal)


class Direction(enum.Enum):
    """Which way a metric is better; NONE: it is not compared."""
    HIGHER = "higher"      # more is better: throughput, success rate
    LOWER = "lower"        # less is better: times, memory, CPU, error rate
    NONE = "none"          # not compared: counts, flags, the load a config asks for

    @property
    def higher_is_better(self) -> bool:
        """True for HIGHER, False for LOWER; ValueError for NONE."""
        if self is Direction.NONE:
            raise ValueError("a metric with Direction.NONE is not compared")
        return self is Direction.HIGHER


class Kind(enum.Enum):
    """What a metric measures."""
    THROUGHPUT = "throughput"   # events per second
    LATENCY = "latency"         # the time one event takes (percentiles, means)
    DURATION = "duration"       # a time that is not one event's latency (recovery, a phase)
    MEMORY = "memory"           # bytes, or bytes per second
    CPU = "cpu"                 # percent of one core
    RATIO = "ratio"             # a fraction or a relative change
    COUNT = "count"             # how many of something
    FLAG = "flag"               # 1 or 0

    @property
    def section(self) -> str:
        """The report section: throughput, latency, resources or other."""
        return _SECTION[self]


_SECTION = {Kind.THROUGHPUT: "throughput", Kind.LATENCY: "latency", Kind.DURATION: "other",
            Kind.MEMORY: "resources", Kind.CPU: "resources", Kind.RATIO: "other",
            Kind.COUNT: "other", Kind.FLAG: "other"}

# The direction a kind usually has: a spec may declare another (a ratio
# has none by default: a success rate and an error rate go opposite ways).
_USUAL: Mapping[Kind, Direction | None] = {
    Kind.THROUGHPUT: Direction.HIGHER, Kind.LATENCY: Direction.LOWER,
    Kind.DURATION: Direction.LOWER, Kind.MEMORY: Direction.LOWER, Kind.CPU: Direction.LOWER,
    Kind.RATIO: None, Kind.COUNT: Direction.NONE, Kind.FLAG: Direction.NONE}


class Grade(enum.Enum):
    """A metric's grade against a threshold, best first."""
    TARGET = "target"
    ACCEPTABLE = "acceptable"
    CRITICAL = "critical"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """0 for TARGET up to 3 for FAILED (higher is worse)."""
        return _RANK[self]


_RANK = {Grade.TARGET: 0, Grade.ACCEPTABLE: 1, Grade.CRITICAL: 2, Grade.FAILED: 3}


@dataclass(frozen=True)
class MetricSpec:
    """The declaration of a metric: name, unit, kind, direction, and for a
    percentile the histogram and percentile it is read from.  ``graded_by``
    names the row of the targets table that grades it (None: ungraded).

    ``spec(value)`` makes the :class:`Metric`; ``spec.at(suffix)`` the
    same declaration for one point of a series ("throughput@100")."""
    name: str
    unit: str
    kind: Kind
    direction: Direction | None = None     # None: the kind's usual direction
    histogram: str | None = None
    percentile: float | None = None
    graded_by: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ArgumentError(f"MetricSpec: name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.kind, Kind):
            raise ArgumentTypeError(f"MetricSpec {self.name!r}: kind must be a Kind, "
                                    f"not {type(self.kind).__name__}")
        direction = self.direction if self.direction is not None else _USUAL[self.kind]
        if not isinstance(direction, Direction):
            raise ArgumentError(f"MetricSpec {self.name!r}: a {self.kind.value} has no usual "
                                "direction; declare direction= (Direction.HIGHER, LOWER or "
                                "NONE)")
        object.__setattr__(self, "direction", direction)
        if self.percentile is not None and self.histogram is None:
            raise ArgumentError(f"MetricSpec {self.name!r}: a percentile needs the histogram "
                                "it is read from")
        if self.percentile is not None and not 0 <= self.percentile <= 100:
            raise ArgumentError(f"MetricSpec {self.name!r}: percentile must be in [0, 100], "
                                f"got {self.percentile!r}")
        if self.graded_by is not None and self.graded_by not in GRADED:
            raise ArgumentError(f"MetricSpec {self.name!r}: graded_by must be a row of the "
                                f"targets table ({', '.join(GRADED)}), got {self.graded_by!r}")

    @property
    def compared(self) -> bool:
        """Whether the metric is compared with a baseline."""
        return self.direction is not Direction.NONE

    def at(self, point: object) -> MetricSpec:
        """This declaration for one point of a series: ``name@point``, read
        from that point's histogram (``histogram@point``) if it has one."""
        return dataclasses.replace(self, name=f"{self.name}@{point}",
                                   histogram=None if self.histogram is None
                                   else f"{self.histogram}@{point}")

    def __call__(self, value: float, grade: Grade | None = None, *,
                 threshold: Threshold | None = None, resolution: float | None = None) -> Metric:
        return Metric(self.name, value, self.unit, grade, threshold=threshold,
                      resolution=resolution, kind=self.kind,
                      direction=self.direction,  # type: ignore[arg-type]
                      histogram=self.histogram, percentile=self.percentile)

    def graded(self, value: float, thresholds: Mapping[str, Threshold], *,
               resolution: float | None = None) -> Metric:
        """The metric graded by its row of ``thresholds`` (NaN: FAILED).
        A value smaller than ``resolution`` (what the measurement can tell
        from zero) is not graded: it is below what was measured."""
        if self.graded_by is None:
            raise ValueError(f"metric {self.name!r} is not graded")
        row = thresholds[self.graded_by]
        if isinstance(value, float) and math.isnan(value):
            return self(value, Grade.FAILED, threshold=row, resolution=resolution)
        if resolution is not None and abs(value) < resolution:
            return self(value, None, threshold=row, resolution=resolution)
        return self(value, grade(row, value), threshold=row, resolution=resolution)


@dataclass(frozen=True)
class Metric:
    """One measured figure, in its base unit, with its declaration (kind,
    direction, and for a percentile its histogram), its grade (None:
    ungraded) and the row of the targets table it was graded by
    (``threshold``; None when ungraded, or graded by other means), so that
    a figure made from several trials (their mean) is graded by the same
    row.  ``resolution`` is the smallest magnitude the measurement can tell
    from zero (memory read in pages, CPU in clock ticks), when it has one:
    a smaller figure is reported as below resolution, not graded.  Make one
    from a :class:`MetricSpec`, or directly with ``kind=`` and
    ``direction=`` given."""
    name: str
    value: float
    unit: str
    grade: Grade | None = None
    _: dataclasses.KW_ONLY
    kind: Kind
    direction: Direction
    histogram: str | None = None
    percentile: float | None = None
    threshold: Threshold | None = None
    resolution: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise ArgumentTypeError(f"Metric {self.name!r}: value must be a number, "
                                    f"not {type(self.value).__name__}")
        object.__setattr__(self, "value", float(self.value))     # counts given as ints
        if not isinstance(self.kind, Kind):
            raise ArgumentTypeError(f"Metric {self.name!r}: kind must be a Kind, "
                                    f"not {type(self.kind).__name__}")
        if not isinstance(self.direction, Direction):
            raise ArgumentTypeError(f"Metric {self.name!r}: direction must be a Direction, "
                                    f"not {type(self.direction).__name__}")
        if self.grade is not None and not isinstance(self.grade, Grade):
            raise ArgumentTypeError(f"Metric {self.name!r}: grade must be a Grade or None, "
                                    f"not {type(self.grade).__name__}")
        if self.resolution is not None and (
                isinstance(self.resolution, bool) or not isinstance(self.resolution, (int, float))
                or not math.isfinite(self.resolution) or self.resolution < 0):
            raise ArgumentError(f"Metric {self.name!r}: resolution must be a finite number "
                                f">= 0 or None, got {self.resolution!r}")
        if self.threshold is not None and not isinstance(self.threshold, Threshold):
            raise ArgumentTypeError(f"Metric {self.name!r}: threshold must be a Threshold or "
                                    f"None, not {type(self.threshold).__name__}")

    @property
    def spec(self) -> MetricSpec:
        """The metric's declaration."""
        return MetricSpec(self.name, self.unit, self.kind, self.direction, self.histogram,
                          self.percentile)

    @property
    def base_name(self) -> str:
        """The name before an ``@`` (a series' point): "throughput@100" -> "throughput"."""
        return self.name.split("@", 1)[0]


# -- thresholds --------------------------------------------------------------------------

GRADED: Mapping[str, MetricSpec] = {s.name: s for s in (
    MetricSpec("throughput", "req/s", Kind.THROUGHPUT),
    MetricSpec("latency_p50", "ns", Kind.LATENCY),
    MetricSpec("latency_p99", "ns", Kind.LATENCY),
    MetricSpec("spawn_time", "ns", Kind.DURATION),
    MetricSpec("memory_per_agent", "bytes", Kind.MEMORY),
    MetricSpec("cpu_per_agent", "percent", Kind.CPU),
    MetricSpec("recovery_time", "ns", Kind.DURATION),
)}
"""The rows of the guide's targets table: what each grades and which way."""


@dataclass(frozen=True)
class Threshold:
    """One row of the targets table: three bounds in ``unit`` for the
    graded metric ``metric`` (a name of :data:`GRADED`, whose direction the
    bounds follow: target <= acceptable <= critical when less is better,
    target >= acceptable >= critical when more is).  ArgumentError
    otherwise, or for a non-finite or negative bound."""
    metric: str
    unit: str
    target: float
    acceptable: float
    critical: float

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or self.metric not in GRADED:
            hint = did_you_mean(self.metric, GRADED) if isinstance(self.metric, str) else ""
            raise ArgumentError(f"Threshold: metric must be a row of the targets table "
                                f"({', '.join(GRADED)}), got {self.metric!r}{hint}")
        for name in ("target", "acceptable", "critical"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentTypeError(f"Threshold {self.metric!r}: {name} must be a number, "
                                        f"not {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ArgumentError(f"Threshold {self.metric!r}: {name} must be a finite "
                                    f"number >= 0, got {value!r}")
        bounds = (self.target, self.acceptable, self.critical)
        if self.higher_is_better:
            ok = bounds[0] >= bounds[1] >= bounds[2]
            order = "target >= acceptable >= critical (more is better)"
        else:
            ok = bounds[0] <= bounds[1] <= bounds[2]
            order = "target <= acceptable <= critical (less is better)"
        if not ok:
            raise ArgumentError(f"Threshold {self.metric!r}: bounds must satisfy {order}, got "
                                f"target={self.target!r}, acceptable={self.acceptable!r}, "
                                f"critical={self.critical!r}")

    @property
    def direction(self) -> Direction:
        """The graded metric's direction."""
        direction = GRADED[self.metric].direction
        assert direction is not None
        return direction

    @property
    def higher_is_better(self) -> bool:
        return self.direction is Direction.HIGHER


DEFAULT_THRESHOLDS: Mapping[str, Threshold] = {
    t.metric: t for t in (
        Threshold("throughput", "req/s", 100_000, 50_000, 10_000),
        Threshold("latency_p50", "ns", 1 * _MS, 5 * _MS, 10 * _MS),
        Threshold("latency_p99", "ns", 10 * _MS, 50 * _MS, 100 * _MS),
        Threshold("spawn_time", "ns", 100 * _MS, 500 * _MS, 1 * _S),
        Threshold("memory_per_agent", "bytes", 10 * _MB, 50 * _MB, 100 * _MB),
        Threshold("cpu_per_agent", "percent", 5, 10, 25),
        Threshold("recovery_time", "ns", 30 * _S, 120 * _S, 300 * _S),
    )
}
"""The guide's targets table."""


def grade(threshold: Threshold, value: float) -> Grade:
    """Grade ``value`` (in the threshold's unit) against ``threshold``; see
    the module's docstring for the bounds.  ArgumentError for NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"grade: value must be a number, not {type(value).__name__}")
    if math.isnan(value):
        raise ArgumentError(f"grade: value for {threshold.metric!r} is NaN")
    higher = threshold.higher_is_better
    for g, bound in ((Grade.TARGET, threshold.target), (Grade.ACCEPTABLE, threshold.acceptable),
                     (Grade.CRITICAL, threshold.critical)):
        if (value >= bound) if higher else (value < bound):
            return g
    return Grade.FAILED


def resolve_thresholds(overrides: Mapping[str, Threshold] | None = None) -> dict[str, Threshold]:
    """The default thresholds with ``overrides`` replacing some of them.
    ArgumentError for a name not in the table (listing the valid ones, with
    a did-you-mean) or a threshold filed under a name other than its own."""
    merged = dict(DEFAULT_THRESHOLDS)
    if overrides is None:
        return merged
    unknown = sorted(set(overrides) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ArgumentError(f"unknown threshold metric {unknown[0]!r}"
                            f"{did_you_mean(unknown[0], DEFAULT_THRESHOLDS)}; valid names: "
                            f"{', '.join(sorted(DEFAULT_THRESHOLDS))}")
    for name, threshold in overrides.items():
        if not isinstance(threshold, Threshold):
            raise ArgumentTypeError(f"thresholds[{name!r}] must be a Threshold, "
                                    f"not {type(threshold).__name__}")
        if threshold.metric != name:
            raise ArgumentError(f"thresholds[{name!r}] is a threshold for "
                                f"{threshold.metric!r}: the key must be its metric")
        merged[name] = threshold
    return merged


# -- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """One interval of an open-loop run; ``latency`` is HDR-encoded
    (``Histogram.decode`` reads it)."""
    start_ns: int
    end_ns: int
    sent: int
    completed: int
    failed: int
    dropped: int
    latency: str


@dataclass(frozen=True)
class ScenarioResult:
    """What one run of a scenario (or one measurement of a test) measured.
    ``config`` is the config as a dict; ``histograms`` maps a name to the
    HDR encoding of the histogram (``Histogram.encode``); ``partial`` is
    True when the figures cover only part of the run (a deadline, Ctrl-C),
    ``interrupted`` when Ctrl-C cut it short.  ``passed`` and
    ``worst_grade`` are derived from the graded metrics (``partial`` does
    not change them: check it too)."""
    scenario: str
    config: dict[str, Any]
    metrics: tuple[Metric, ...]
    histograms: dict[str, str]
    intervals: tuple[Interval, ...] = ()
    resources: ResourceProfile | None = None
    partial: bool = False
    notes: tuple[str, ...] = ()
    interrupted: bool = False

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ArgumentError(f"ScenarioResult {self.scenario!r}: metric(s) "
                                f"{', '.join(map(repr, twice))} given twice")
        for m in self.metrics:
            if m.histogram is not None and m.histogram not in self.histograms:
                raise ArgumentError(f"ScenarioResult {self.scenario!r}: metric {m.name!r} "
                                    f"is read from histogram {m.histogram!r}, which the result "
                                    f"does not hold (histograms: "
                                    f"{', '.join(self.histograms) or 'none'})")

    @property
    def worst_grade(self) -> Grade | None:
        """The worst grade among graded metrics; None if none is graded."""
        grades = [m.grade for m in self.metrics if m.grade is not None]
        return max(grades, key=lambda g: g.rank) if grades else None

    @property
    def passed(self) -> bool:
        """True when no graded metric is FAILED."""
        return self.worst_grade is not Grade.FAILED

    def metric(self, name: str) -> Metric:
        """The metric called ``name``; KeyError listing the names if none."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r} in {self.scenario!r}"
                       f"{did_you_mean(name, [m.name for m in self.metrics])}; "
                       f"metrics: {', '.join(m.name for m in self.metrics)}")

    def histogram(self, name: str) -> Histogram:
        """The histogram called ``name``, decoded."""
        from ._core import Histogram
        return Histogram.decode(self.histograms[name])
