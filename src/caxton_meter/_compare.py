"""Comparison of a run against a baseline's history of runs: the
regression gate.

Which metrics are compared, and which way, is what each metric declares
where it is produced (:class:`~caxton_meter._model.Direction`): more is
better, less is better, or not compared (counts, flags, the load a config
asks for).  Nothing here reads a metric's name or unit to decide.

Each compared metric is tested by :func:`~caxton_meter._regression.run_to_run`:
is this run's mean one more run like the saved runs' means?  The spread of
the saved runs holds everything that varies between runs on this machine,
so no verdict rests on the within-run error of one run.  A metric needs
``min_history`` saved runs (3) to be tested; before that its verdict is
"not gateable" and says how many runs there are.

The family.  Every tested metric of the run is one comparison of one
family, and Holm's step-down correction keeps the probability that the
run reports one or more false changes at or below ``significance``
(family-wise, not per metric): a gate that fails a run must be right about
the run.  Holm rather than Benjamini-Hochberg: a CI gate that fails one
unchanged commit in five is switched off, so the false-alarm rate that
matters is the run's, which Holm bounds and BH (which bounds the expected
share of false discoveries) does not.

Verdicts.  A metric is gateable here when its detectable change (the
smallest change found with power 0.8 at the family's level) is at most
``threshold`` (10 %, or ``thresholds[metric]``).  A change is significant
when its Holm-adjusted p is below ``significance``.  A gateable metric's
significant change is REGRESSED or IMPROVED beyond the noise threshold
(``noise_threshold``, or with "auto" twice the metric's run-to-run
spread) on the bad or good side, WITHIN_NOISE inside it; an insignificant
one is NO_CHANGE.  A metric that is not gateable ("not gateable here,
spread X %": this machine's spread hides changes of the threshold's size)
is REGRESSED or IMPROVED only for a significant change beyond its
detectable change -- p99 twice as slow is found however noisy p99 is --
and NOT_GATEABLE otherwise: the tails of a noisy metric's run-to-run
variation (a run 15 % slower now and then) are heavier than the normal
theory behind the test assumes, and measured on this machine they made
noisy metrics cry wolf.
"""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._checks import ArgumentError
from ._core import CaxtonMeterError
from ._model import Direction, Grade, MetricSpec
from ._regression import Change, Verdict, holm, percentile_ci, relative_change, run_to_run
from ._results import RunResult, Trials, same_machine

if TYPE_CHECKING:
    from ._baselines import BaselineHistory

__all__ = [
    "Comparison",
    "MetricComparison",
    "MissingCounterpartError",
    "Detectable",
    "compare",
    "confirm",
    "detectable_changes",
]


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
    grade: Grade | None        # the grade of the current run's mean (Trials.grade)
    spec: MetricSpec           # the metric's declaration (kind, direction, histogram)

    @property
    def is_regression(self) -> bool:
        return self.change.verdict is Verdict.REGRESSED


@dataclass(frozen=True)
class Comparison:
    """A run compared with a baseline (its newest result of each scenario)
    and the history of saved runs behind it.  ``family`` is the number of
    tested comparisons, over which ``significance`` holds family-wise
    (Holm); ``history_runs`` how many saved runs the baseline has."""
    baseline: RunResult
    current: RunResult
    metrics: tuple[MetricComparison, ...]
    missing: tuple[str, ...]       # "scenario/metric" skipped: no counterpart in the baseline
    warnings: tuple[str, ...]
    family: int = 0
    significance: float = 0.05
    history_runs: int = 1
    confirmed_by: RunResult | None = None   # the re-run that confirmed the changes

    @property
    def transient(self) -> tuple[MetricComparison, ...]:
        """Changes that a re-run of the same code did not repeat."""
        return tuple(m for m in self.metrics if m.change.verdict is Verdict.TRANSIENT)

    def changed_scenarios(self) -> tuple[str, ...]:
        """The scenarios with a regression or an improvement, to re-run."""
        return tuple(dict.fromkeys(m.scenario for m in self.regressions + self.improvements))

    @property
    def regressions(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.change.verdict is Verdict.REGRESSED)

    @property
    def improvements(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.change.verdict is Verdict.IMPROVED)

    @property
    def not_gateable(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.change.verdict is Verdict.NOT_GATEABLE)

    def for_scenario(self, name: str) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.scenario == name)


def _fraction(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (0 <= value < 10) or value != value:
        raise ArgumentError(f"{what} must be a fraction >= 0 (0.10 for 10 %), got {value!r}")
    return float(value)


def _normalised(config: Mapping[str, Any]) -> Any:
    """A config as JSON reads it back (tuples and lists alike)."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


@dataclass
class _Candidate:
    scenario: str
    name: str
    spec: MetricSpec
    current: tuple[float, ...]
    trials: Trials                 # this run's trials of the scenario
    history: list[float]
    grade: Grade | None
    limit: float


def compare(baseline: RunResult | BaselineHistory, current: RunResult, *,
            threshold: float = 0.10, thresholds: Mapping[str, float] | None = None,
            noise_threshold: float | str = 0.05, significance: float = 0.05,
            lenient: bool = False, power: float = 0.8, min_history: int = 3) -> Comparison:
    """Compare ``current`` with ``baseline`` -- a baseline's history
    (:class:`~caxton_meter.BaselineHistory`: its saved runs), or a single
    saved run (a history of one: no metric can be gated then) -- metric by
    metric, as the module's docstring says.

    ``threshold`` is the size of change the gate must be able to see (10 %);
    ``thresholds`` overrides it per metric (by name, or by the name before
    an ``@``).  ``noise_threshold``: significant changes within it are
    "within noise"; "auto" takes twice each metric's run-to-run spread.
    ``significance`` is the family-wise false-alarm rate, ``power`` the
    probability with which a change of the detectable size is found.

    A scenario or metric of ``current`` with no counterpart in the baseline
    raises :class:`MissingCounterpartError` unless ``lenient``, which skips
    it (listed in ``missing``).  Runs from different machines compare with
    a warning."""
    from ._baselines import BaselineHistory
    threshold = _fraction("threshold", threshold)
    per_metric = {k: _fraction(f"thresholds[{k!r}]", v) for k, v in (thresholds or {}).items()}
    auto_noise = noise_threshold == "auto"
    noise = 0.0 if auto_noise else _fraction("noise_threshold", noise_threshold)
    if isinstance(significance, bool) or not isinstance(significance, (int, float)) \
            or not 0 < significance < 1:
        raise ArgumentError(f"significance must be in (0, 1), got {significance!r}")
    if isinstance(min_history, bool) or not isinstance(min_history, int) or min_history < 2:
        raise ArgumentError(f"min_history must be an int >= 2, got {min_history!r}")
    history = baseline if isinstance(baseline, BaselineHistory) \
        else BaselineHistory("baseline", (baseline,))
    base_run = history.latest()
    warnings: list[str] = []
    same, diffs = same_machine(base_run.metadata, current.metadata)
    if not same:
        warnings.append("the baseline was measured on a different machine ("
                        + "; ".join(diffs) + "): differences may be the machine's")
    if base_run.metadata.get("profile") != current.metadata.get("profile"):
        warnings.append(f"the baseline ran the {base_run.metadata.get('profile')!r} profile, "
                        f"this run the {current.metadata.get('profile')!r} one")
    candidates: list[_Candidate] = []
    missing: list[str] = []
    from ._machine_state import noisier_than_saved
    for trials in current.scenarios:
        if trials.scenario not in base_run.names:
            missing.append(f"{trials.scenario}/*")
            continue
        noisier = noisier_than_saved(
            current.metadata.get("machine_state", {}).get(trials.scenario),
            [r.metadata["machine_state"][trials.scenario] for r in history.runs
             if trials.scenario in r.metadata.get("machine_state", {})])
        if noisier:
            warnings.append(f"{trials.scenario}: {noisier}")
        base = base_run.scenario(trials.scenario)
        if _normalised(base.config) != _normalised(trials.config):
            old, new = _normalised(base.config), _normalised(trials.config)
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            warnings.append(f"{trials.scenario}: the config differs from the baseline's "
                            f"({', '.join(changed)})")
        for name in trials.metric_names:
            spec = trials.spec(name)
            if spec.direction is Direction.NONE:
                continue
            if name not in base.metric_names:
                missing.append(f"{trials.scenario}/{name}")
                continue
            cur = trials.values(name)
            if not cur:
                warnings.append(f"{trials.scenario}/{name}: not measured in this run")
                continue
            candidates.append(_Candidate(
                trials.scenario, name, spec, cur, trials, history.run_means(trials.scenario, name),
                trials.grade(name), per_metric.get(name, per_metric.get(_base(name), threshold))))
    if missing and not lenient:
        raise MissingCounterpartError(tuple(missing))
    tested = [c for c in candidates if len(c.history) >= min_history]
    family = len(tested)
    results = {id(c): run_to_run(c.history, math.fsum(c.current) / len(c.current),
                                 significance=significance, family=family, power=power,
                                 within=_within(history.trials(c.scenario), c))
               for c in tested}
    adjusted = dict(zip((id(c) for c in tested),
                        holm([results[id(c)].p_value for c in tested])))
    out = []
    for c in candidates:
        assert c.spec.direction is not None     # a spec's direction is set when made
        higher = c.spec.direction.higher_is_better
        r = results.get(id(c))
        if r is None:
            change = _untested(c, higher, min_history)
        else:
            band = 2 * r.spread if auto_noise else noise
            # a baseline of 0 (no errors) has no relative scale: its
            # detectable change is read in the metric's own unit
            gateable = r.detectable <= c.limit or (r.baseline == 0 and r.reach <= c.limit)
            # a metric that cannot be gated at the threshold asked for still
            # fails on a change beyond what its spread can produce: p99 twice
            # as slow is a regression however noisy p99 is here
            verdict = _verdict(r.change, adjusted[id(c)] < significance,
                               band if gateable or r.baseline == 0 else max(band, r.detectable),
                               gateable, higher)
            change = Change(verdict=verdict, baseline=r.baseline, current=r.current,
                            change=r.change, ci_low=r.ci_low, ci_high=r.ci_high,
                            p_value=r.p_value, method="run-to-run", higher_is_better=higher,
                            exceeds_threshold=_worse(r.change, c.limit, higher),
                            baseline_n=r.history_n, current_n=len(c.current),
                            spread=r.spread, detectable=r.detectable,
                            adjusted_p=adjusted[id(c)], left_out=r.left_out)
        out.append(MetricComparison(c.scenario, c.name, c.spec.unit, change, c.grade, c.spec))
    return Comparison(base_run, current, tuple(out), tuple(missing), tuple(warnings), family,
                      float(significance), len(history.runs))


def confirm(first: Comparison, again: Comparison) -> Comparison:
    """``first`` with each regression or improvement that ``again`` (the
    same comparison of a re-run of the same code) does not repeat marked
    TRANSIENT.  A slow spell of a shared machine can move every figure of
    one run by 10-20 % (measured here); it rarely lasts through a second
    run, while a change in the code shows in both.  Both runs are tested
    at the family's level, so the false-alarm rate stays within it."""
    seen = {(m.scenario, m.metric): m.change.verdict for m in again.metrics}
    out = []
    for m in first.metrics:
        v = m.change.verdict
        if v in (Verdict.REGRESSED, Verdict.IMPROVED) and seen.get((m.scenario, m.metric)) is not v:
            m = dataclasses.replace(m, change=dataclasses.replace(m.change,
                                                                  verdict=Verdict.TRANSIENT))
        out.append(m)
    return dataclasses.replace(first, metrics=tuple(out), confirmed_by=again.current)


def _within(saved: list[Trials], c: _Candidate) -> float:
    """The standard deviation a run's mean has from sampling within the run
    alone, the larger of two readings: the trials' variance pooled over the
    saved runs and this run, over this run's trial count; and, for a
    percentile of a histogram, the width of the percentile's
    distribution-free 95 % interval in this run's histogram (/ 3.92): the
    p99 of 300 timed blocks is one of the few slowest, and which of them
    it is varies from run to run however alike the saved runs look."""
    samples = [t.values(c.name) for t in saved if c.name in t.metric_names] + [c.current]
    dof = sum(len(v) - 1 for v in samples if len(v) > 1)
    trials = 0.0
    if dof:
        pooled = math.fsum(statistics.variance(v) * (len(v) - 1) for v in samples if len(v) > 1)
        trials = math.sqrt(pooled / dof / len(c.current))
    histogram = 0.0
    spec = c.spec
    if spec.histogram is not None and spec.percentile is not None \
            and spec.histogram in c.trials.histogram_names:
        h = c.trials.histogram(spec.histogram)
        if h.total_count:
            lo, hi = percentile_ci(h, spec.percentile)
            histogram = (hi - lo) / 3.92
    return max(trials, histogram)


def _worse(change: float, limit: float, higher_is_better: bool) -> bool:
    return change < -limit if higher_is_better else change > limit


def _verdict(change: float, significant: bool, band: float, gateable: bool,
             higher_is_better: bool) -> Verdict:
    """Significant and beyond ``band`` on the bad (good) side: REGRESSED
    (IMPROVED).  Otherwise a gateable metric's change is noise (within the
    band) or none; a metric that cannot be gated says so."""
    if significant and _worse(change, band, higher_is_better):
        return Verdict.REGRESSED
    if significant and _worse(-change, band, higher_is_better):
        return Verdict.IMPROVED
    if not gateable:
        return Verdict.NOT_GATEABLE
    return Verdict.WITHIN_NOISE if significant else Verdict.NO_CHANGE


def _untested(c: _Candidate, higher_is_better: bool, min_history: int) -> Change:
    """A metric with too few saved runs to know its run-to-run spread."""
    base = c.history[-1] if c.history else math.nan
    cur = math.fsum(c.current) / len(c.current)
    change = relative_change(cur, base) if math.isfinite(base) else math.nan
    return Change(verdict=Verdict.NOT_GATEABLE, baseline=base, current=cur, change=change,
                  ci_low=change, ci_high=change, p_value=None,
                  method=f"history of {len(c.history)} run(s), {min_history} needed",
                  higher_is_better=higher_is_better,
                  exceeds_threshold=_worse(change, c.limit, higher_is_better),
                  baseline_n=len(c.history), current_n=len(c.current))


def _base(name: str) -> str:
    return name.split("@", 1)[0]


@dataclass(frozen=True)
class Detectable:
    """What the gate can see of one metric on this machine: the run-to-run
    spread of its saved runs and the smallest change found with the
    requested power, in a family of ``family`` comparisons."""
    scenario: str
    metric: str
    spec: MetricSpec
    runs: int
    spread: float
    detectable: float
    left_out: int = 0      # saved runs left out as outliers of the others


def detectable_changes(history: BaselineHistory, *, significance: float = 0.05,
                       power: float = 0.8, min_history: int = 3) -> tuple[Detectable, ...]:
    """For every compared metric of the baseline's newest results with at
    least ``min_history`` saved runs: its spread and the smallest change the
    gate detects (every such metric of the baseline in one family, as a run
    of all its scenarios would be compared)."""
    latest = history.latest()
    found: list[tuple[str, str, MetricSpec, list[float]]] = []
    for trials in latest.scenarios:
        for name in trials.metric_names:
            spec = trials.spec(name)
            if spec.direction is Direction.NONE:
                continue
            means = history.run_means(trials.scenario, name)
            if len(means) >= min_history:
                found.append((trials.scenario, name, spec, means))
    out = []
    for scenario, name, spec, means in found:
        r = run_to_run(means, means[-1], significance=significance, family=len(found),
                       power=power)
        out.append(Detectable(scenario, name, spec, len(means), r.spread, r.detectable,
                              r.left_out))
    return tuple(out)
