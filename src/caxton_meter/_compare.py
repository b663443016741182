"""Comparison of a run against a baseline, metric by metric.

Which metrics are compared, and which way, is what each metric declares
where it is produced (:class:`~caxton_meter._model.Direction`): more is
better, less is better, or not compared (counts, flags, the load a config
asks for).  Nothing here reads a metric's name or unit to decide.

Each compared metric gets a :class:`~caxton_meter._regression.Change`
from its trials (:func:`~caxton_meter._regression.compare_samples`):
statistics when both sides have two or more trials, the guide's fixed
threshold when either has one.  A metric that declares itself a
percentile of a histogram, in a scenario whose trials were each run once,
is compared through confidence intervals derived from the merged
histograms (:func:`~caxton_meter._regression.compare_percentiles`)
instead.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ._core import CaxtonMeterError
from ._model import Direction, Grade, MetricSpec
from ._regression import Change, Verdict, compare_percentiles, compare_samples
from ._results import RunResult, same_machine

__all__ = [
    "Comparison",
    "MetricComparison",
    "MissingCounterpartError",
    "compare",
]


def _base(name: str) -> str:
    return name.split("@", 1)[0]


class MissingCounterpartError(CaxtonMeterError, LookupError):
    """A scenario or metric of the run has no counterpart in the baseline
    (strict comparison); ``missing`` lists them as "scenario/metric"."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                           if len(missing) > 10 else "")
        super().__init__(f"{len(missing)} of the run's scenarios or metrics have no "
                         f"counterpart in the baseline: {shown} (a lenient comparison "
                         "skips them)")
        self.missing = missing


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one scenario, compared."""
    scenario: str
    metric: str
    unit: str
    change: Change
    grade: Grade | None        # the current run's worst grade for the metric
    spec: MetricSpec           # the metric's declaration (kind, direction, histogram)

    @property
    def is_regression(self) -> bool:
        return self.change.verdict is Verdict.REGRESSED


@dataclass(frozen=True)
class Comparison:
    """A run compared with a baseline."""
    baseline: RunResult
    current: RunResult
    metrics: tuple[MetricComparison, ...]
    missing: tuple[str, ...]       # "scenario/metric" skipped: no counterpart in the baseline
    warnings: tuple[str, ...]

    @property
    def regressions(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.change.verdict is Verdict.REGRESSED)

    @property
    def improvements(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.change.verdict is Verdict.IMPROVED)

    def for_scenario(self, name: str) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.scenario == name)


def _fraction(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (0 <= value < 10) or value != value:
        raise ValueError(f"{what} must be a fraction >= 0 (0.10 for 10 %), got {value!r}")
    return float(value)


def compare(baseline: RunResult, current: RunResult, *, threshold: float = 0.10,
            thresholds: Mapping[str, float] | None = None, noise_threshold: float = 0.05,
            significance: float = 0.05, lenient: bool = False,
            test: str = "mann-whitney") -> Comparison:
    """Compare ``current`` with ``baseline``, metric by metric.

    ``threshold`` is the guide's fixed regression threshold (10 %), used as
    is when a side has a single trial and reported as ``exceeds_threshold``
    otherwise; ``thresholds`` overrides it per metric (by name, or by the
    name before an ``@``).  ``noise_threshold`` and ``significance`` are
    Criterion's: a change counts only when significant and its confidence
    interval lies wholly beyond ±noise_threshold.

    A scenario or metric of ``current`` with no counterpart in ``baseline``
    raises :class:`MissingCounterpartError` unless ``lenient``, which skips
    it (listed in ``missing``).  Runs from different machines compare with
    a warning."""
    threshold = _fraction("threshold", threshold)
    per_metric = {k: _fraction(f"thresholds[{k!r}]", v) for k, v in (thresholds or {}).items()}
    noise_threshold = _fraction("noise_threshold", noise_threshold)
    if not (0 < significance < 1):
        raise ValueError(f"significance must be in (0, 1), got {significance!r}")
    warnings: list[str] = []
    same, diffs = same_machine(baseline.metadata, current.metadata)
    if not same:
        warnings.append("the baseline was measured on a different machine ("
                        + "; ".join(diffs) + "): differences may be the machine's")
    if baseline.metadata.get("profile") != current.metadata.get("profile"):
        warnings.append(f"the baseline ran the {baseline.metadata.get('profile')!r} profile, "
                        f"this run the {current.metadata.get('profile')!r} one")
    out: list[MetricComparison] = []
    missing: list[str] = []
    for trials in current.scenarios:
        if trials.scenario not in baseline.names:
            missing.append(f"{trials.scenario}/*")
            continue
        base = baseline.scenario(trials.scenario)
        if base.config != trials.config:
            changed = sorted(k for k in set(base.config) | set(trials.config)
                             if base.config.get(k) != trials.config.get(k))
            warnings.append(f"{trials.scenario}: the config differs from the baseline's "
                            f"({', '.join(changed)})")
        n, m = len(base.results), len(trials.results)
        single = n < 2 or m < 2
        if not single and test == "mann-whitney" and 2 / math.comb(n + m, n) >= significance:
            warnings.append(f"{trials.scenario}: with {n} and {m} trials no change can reach "
                            f"p < {significance:g} (Mann-Whitney's smallest p is "
                            f"{2 / math.comb(n + m, n):.3f}): run more trials")
        for name in trials.metric_names:
            spec = trials.spec(name)
            if spec.direction is Direction.NONE:
                continue
            cur, old = trials.values(name), base.values(name)
            if not old:
                missing.append(f"{trials.scenario}/{name}")
                continue
            if not cur:
                warnings.append(f"{trials.scenario}/{name}: not measured in this run")
                continue
            limit = per_metric.get(name, per_metric.get(_base(name), threshold))
            assert spec.direction is not None           # a spec's direction is set when made
            if single and _from_histogram(spec, trials.histogram_names, base.histogram_names):
                assert spec.histogram is not None and spec.percentile is not None
                change = compare_percentiles(base.histogram(spec.histogram),
                                             trials.histogram(spec.histogram), spec.percentile,
                                             threshold=limit, noise_threshold=noise_threshold,
                                             higher_is_better=spec.direction.higher_is_better)
            else:
                change = compare_samples(old, cur,
                                         higher_is_better=spec.direction.higher_is_better,
                                         threshold=limit, noise_threshold=noise_threshold,
                                         significance=significance, test=test)
            out.append(MetricComparison(trials.scenario, name, spec.unit, change,
                                        trials.grade(name), spec))
    if missing and not lenient:
        raise MissingCounterpartError(tuple(missing))
    return Comparison(baseline, current, tuple(out), tuple(missing), tuple(warnings))


def _from_histogram(spec: MetricSpec, current: tuple[str, ...], baseline: tuple[str, ...]) -> bool:
    """Whether the metric is a percentile of a histogram both sides hold."""
    return (spec.percentile is not None and spec.histogram is not None
            and spec.histogram in current and spec.histogram in baseline)
