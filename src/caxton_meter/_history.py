"""A baseline's history read as a time series: its runs, and the change
points in each metric over them (``caxton-meter history NAME``).

The regression gate compares one run with the runs saved before it.  A
metric that gets 1 % slower with every commit passes each of those
comparisons -- every step hides in the run-to-run spread -- and is 20 %
slower after twenty commits.  Change-point detection looks at the whole
history at once and says where its level moved, so a drift is seen.

The method: E-divisive means
----------------------------
:func:`change_points` is the E-divisive procedure of Matteson and James
("A nonparametric approach for multiple change point analysis of
multivariate data", JASA 2014), as MongoDB's performance CI
(signal-processing-algorithms) and Apache Otava (formerly DataStax's
Hunter) apply it to benchmark histories:

1. *The divergence.*  For a split of a segment into ``X`` (the first ``m``
   runs) and ``Y`` (the other ``k``), the energy statistic with exponent
   alpha = 1 is
   ``E = 2/(mk) sum|x - y| - 1/C(m,2) sum_{i<j}|x_i - x_j| - 1/C(k,2) sum_{i<j}|y_i - y_j|``
   (between-group distance minus the within-group ones), and the split's
   score is ``Q = mk/(m+k) E``.  E is zero in expectation when X and Y come
   from one distribution and positive otherwise; alpha = 1 (any alpha in
   (0, 2) would do) keeps it distribution-free and no more sensitive to
   one outlier than a mean is.  It is invariant to the scale of the
   values, so one significance level serves nanoseconds and msg/s alike.
2. *The best split* of a segment is the one with the largest Q, found by
   exhaustive search over every split point tau and, as Matteson and James
   do, every end point kappa of Y (X is the segment's runs before
   tau, Y those from tau up to kappa; each holds ``min_size`` runs at
   least).  Only tau becomes a change point.  The end point matters for a
   change that is later undone -- a regression, then its fix: split over
   the whole segment, the runs before the regression and after the fix
   look alike and the split is weak (in 200 seeded histories of 30 runs
   with a 4-sigma regression for 10 of them, 64 were marked when Y ran to
   the segment's end, 200 with the end point searched).
3. *Significance* by a permutation test: the runs of each segment are
   shuffled within their segment ``permutations`` times (found change
   points stay put), the best Q over all segments is computed for each
   shuffle, and the p-value is ``(1 + #{shuffled >= observed}) /
   (permutations + 1)`` -- the Monte Carlo permutation p-value, which
   never falls below the significance level more often than it should.
   The shuffles come from a generator seeded with ``seed``: the same
   history always gives the same change points.
4. *Bisection.*  The segment with the best Q is split if that p-value is
   at most ``significance``; then every segment is searched again, until
   the best remaining split is not significant.

Because the procedure stops at the first split that is not significant,
a history with no change is marked with probability at most
``significance`` (the first test's false-alarm rate).

Why E-divisive rather than a simpler rule (adjacent comparisons, a
moving-window t test, CUSUM): it makes no normality assumption (benchmark
times are skewed), it needs no window length or drift rate chosen in
advance, it finds several changes in one history, and two production
systems with benchmark histories like ours use it.  Its cost, O(n^2) per
candidate split and shuffle, is nothing for the at most 20 (``keep``)
runs a baseline holds.

The parameters
--------------
* ``permutations = 199``: the R of Matteson and James's ``ecp`` package.
  The smallest p-value it can give is 1/200 = 0.005, ten times below the
  default significance, and the Monte Carlo error at p = 0.05 is 0.015.
* ``min_size = 3``: a segment of one or two runs cannot tell a change of
  level from one or two slow runs, which the gate already reports.  A
  change is therefore marked from its third run on.
* :func:`min_runs`: the fewest runs in which a change can be significant
  at all.  Of the C(n, m) ways to place m low and n - m high runs in a
  sequence, two (low-then-high and high-then-low) give the largest
  statistic, so even a perfect step has p >= 2/C(n, m), at best
  2/C(n, n//2).  At significance 0.05 that needs 8 runs (2/C(7, 3) =
  0.057, 2/C(8, 4) = 0.029); at 0.01, 10.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import math
import numbers
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._checks import ArgumentError, ArgumentTypeError, did_you_mean, integer
from ._model import Direction

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ._baselines import BaselineHistory
    from ._model import MetricSpec
    from ._results import RunResult

    _FloatArray = npt.NDArray[np.float64]

__all__ = [
    "ChangePoint",
    "DEFAULT_MIN_SIZE",
    "DEFAULT_PERMUTATIONS",
    "MetricHistory",
    "change_points",
    "main_history",
    "metric_histories",
    "min_runs",
    "permutations_for",
]

DEFAULT_PERMUTATIONS = 199
DEFAULT_MIN_SIZE = 3

# A shuffle whose best Q equals the observed one up to rounding (the same
# arrangement summed in another order) counts as reaching it: ties go
# against the change, never for it.
_TIE = 1e-9

# Shuffles are scored in batches of at most this many pairwise distances.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ChangePoint:
    """A change in a series: ``index`` is the first value after it (0-based);
    ``before`` and ``after`` are the means of the segments either side (up
    to the neighbouring change points); ``change`` is ``(after - before) /
    |before|``; ``p_value`` is the permutation test's when the split was
    made."""
    index: int
    before: float
    after: float
    change: float
    p_value: float


# -- E-divisive means --------------------------------------------------------------------

def _best_splits(batch: _FloatArray, min_size: int) -> tuple[_FloatArray, Any]:
    """For each row of ``batch`` (shape (B, n), n >= 2 min_size), the largest
    split score Q over every split point tau and end point kappa leaving
    ``min_size`` values in X = row[:tau] and in Y = row[tau:kappa], and the
    tau where it is reached (the first such on ties)."""
    import numpy as np
    b, n = batch.shape
    dist = np.abs(batch[:, :, None] - batch[:, None, :])
    upper = np.triu(dist, 1)                        # each pair once, i < j
    # prefix[:, t, u] = sum of upper[:, :t, :u]: the pairs i < j with i < t, j < u
    prefix = np.zeros((b, n + 1, n + 1))
    prefix[:, 1:, 1:] = upper.cumsum(axis=1).cumsum(axis=2)
    tau, kappa = np.meshgrid(np.arange(min_size, n - min_size + 1),
                             np.arange(2 * min_size, n + 1), indexing="ij")
    keep = kappa - tau >= min_size
    tau, kappa = tau[keep], kappa[keep]
    within_x = prefix[:, tau, tau]
    across = prefix[:, tau, kappa] - within_x
    within_y = prefix[:, kappa, kappa] - prefix[:, tau, kappa]
    m = tau.astype(np.float64)
    k = (kappa - tau).astype(np.float64)
    energy = (2.0 * across / (m * k) - within_x / (m * (m - 1) / 2)
              - within_y / (k * (k - 1) / 2))
    q = m * k / (m + k) * energy
    best = q.argmax(axis=1)
    scores: _FloatArray = q[np.arange(b), best]
    return scores, tau[best]


def _check_series(series: Sequence[float]) -> _FloatArray:
    import numpy as np
    if isinstance(series, (str, bytes)) or not isinstance(series, (Sequence, np.ndarray)):
        raise ArgumentTypeError(f"change_points: series must be a sequence of numbers, "
                                f"not {type(series).__name__}")
    values: list[float] = []
    for i, v in enumerate(series):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ArgumentTypeError(f"change_points: series[{i}] must be a number, "
                                    f"not {type(v).__name__}")
        if not math.isfinite(v):
            raise ArgumentError(f"change_points: series[{i}] must be finite, got {v!r}")
        values.append(float(v))
    out: _FloatArray = np.asarray(values, dtype=np.float64)
    return out


def _check_significance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"significance must be a number, not {type(value).__name__}")
    if not 0 < float(value) < 1:
        raise ArgumentError(f"significance must be within (0, 1) (0.05), got {value!r}")
    return float(value)


def min_runs(significance: float = 0.05, min_size: int = DEFAULT_MIN_SIZE) -> int:
    """The fewest values in which :func:`change_points` can find a change
    at ``significance``: at least ``2 * min_size``, and enough that a
    perfect step can reach p <= significance (p >= 2/C(n, n//2); see the
    module's docstring).  8 for the defaults."""
    alpha = _check_significance(significance)
    size = integer(min_size, "min_size", low=2)
    n = 2 * size
    while 2 / math.comb(n, n // 2) > alpha:
        n += 1
    return n


def change_points(series: Sequence[float], *, significance: float = 0.05,
                  permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                  min_size: int = DEFAULT_MIN_SIZE) -> list[ChangePoint]:
    """The change points of ``series`` (oldest first), by E-divisive means
    (see the module's docstring): sorted by index, each with the means of
    the segments either side and the p-value of its split.  Deterministic
    for a given ``seed``.  A series shorter than ``2 * min_size`` has none.

    ArgumentTypeError or ArgumentError for a value that is not a finite
    number, a significance outside (0, 1), ``min_size`` < 2, or too few
    ``permutations`` to ever reach ``significance`` (1/(permutations + 1)
    must not exceed it)."""
    import numpy as np
    from ._regression import relative_change as _relative_change
    x = _check_series(series)
    alpha = _check_significance(significance)
    size = integer(min_size, "min_size", low=2)
    shuffles = integer(permutations, "permutations", low=1)
    if 1 / (shuffles + 1) > alpha:
        raise ArgumentError(f"permutations={shuffles} cannot give a p-value <= {alpha:g} (the "
                            f"smallest is 1/(permutations + 1)); use at least "
                            f"{math.ceil(1 / alpha) - 1}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentTypeError(f"seed must be an int, not {type(seed).__name__}")
    rng = np.random.default_rng(seed)
    bounds = [0, len(x)]                # segment i is x[bounds[i]:bounds[i + 1]]
    p_values: dict[int, float] = {}
    while True:
        segments = [(a, b) for a, b in zip(bounds, bounds[1:]) if b - a >= 2 * size]
        if not segments:
            break
        found = [_best_splits(x[a:b][None, :], size) for a, b in segments]
        best = max(range(len(segments)), key=lambda i: float(found[i][0][0]))
        observed = float(found[best][0][0])
        split = segments[best][0] + int(found[best][1][0])
        # The best Q over every segment, each shuffled within itself: the
        # null distribution of the statistic the candidate won.
        shuffled_best = np.full(shuffles, -np.inf)
        for a, b in segments:
            # in chunks of about a million distances, whatever the history's length
            chunk = max(1, _CHUNK // (b - a) ** 2)
            for start in range(0, shuffles, chunk):
                rows = min(chunk, shuffles - start)
                batch = rng.permuted(np.tile(x[a:b], (rows, 1)), axis=1)
                shuffled_best[start:start + rows] = np.maximum(
                    shuffled_best[start:start + rows], _best_splits(batch, size)[0])
        reached = int(np.count_nonzero(shuffled_best >= observed - _TIE * abs(observed)))
        p = (1 + reached) / (shuffles + 1)
        if p > alpha:
            break
        bisect.insort(bounds, split)
        p_values[split] = p
    out = []
    for i in range(1, len(bounds) - 1):
        before = float(x[bounds[i - 1]:bounds[i]].mean())
        after = float(x[bounds[i]:bounds[i + 1]].mean())
        out.append(ChangePoint(bounds[i], before, after, _relative_change(after, before),
                               p_values[bounds[i]]))
    return out


# -- a baseline's metrics ----------------------------------------------------------------

@dataclass(frozen=True)
class MetricHistory:
    """One metric of one scenario over a baseline's runs: ``runs`` are the
    positions (0-based, oldest first) of the runs that measured it,
    ``values`` each one's mean over its trials, and the change points'
    ``index`` is a position in the baseline's runs too (the first run
    after the change)."""
    scenario: str
    metric: str
    spec: MetricSpec
    runs: tuple[int, ...]
    values: tuple[float, ...]
    change_points: tuple[ChangePoint, ...]


def _run_mean(run: RunResult, scenario: str, metric: str) -> float | None:
    """The metric's mean over the run's trials; None if not measured."""
    if scenario not in run.names:
        return None
    trials = run.scenario(scenario)
    values = trials.values(metric) if metric in trials.metric_names else ()
    return math.fsum(values) / len(values) if values else None


def _spec(history: BaselineHistory, scenario: str, metric: str) -> MetricSpec:
    """The metric's declaration in the newest run that measured it."""
    for trials in reversed(history.trials(scenario)):
        if metric in trials.metric_names:
            return trials.spec(metric)
    raise KeyError(f"no metric {metric!r} in {scenario!r}")


def _same(name: str, wanted: str) -> bool:
    return name == wanted


def _selected(kind: str, asked: Sequence[str] | None, found: Sequence[str],
              match: Callable[[str, str], bool] = _same) -> list[str]:
    """``found`` filtered by the names ``asked`` (all if None);
    ArgumentError naming one asked for that matches nothing, with the
    names there are."""
    if not asked:
        return list(found)
    for wanted in asked:
        if not any(match(name, wanted) for name in found):
            raise ArgumentError(f"no {kind} {wanted!r} in the baseline"
                                f"{did_you_mean(wanted, found)}; {kind}s: "
                                f"{', '.join(found) or 'none'}")
    return [name for name in found if any(match(name, wanted) for wanted in asked)]


def _metric_matches(name: str, wanted: str) -> bool:
    # "throughput" selects a series' points too ("throughput@100")
    return name == wanted or name.split("@", 1)[0] == wanted


def metric_histories(history: BaselineHistory, *, scenarios: Sequence[str] | None = None,
                     metrics: Sequence[str] | None = None, significance: float = 0.05,
                     permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                     min_size: int = DEFAULT_MIN_SIZE) -> list[MetricHistory]:
    """Each compared metric (direction not NONE) of each scenario of
    ``history`` -- of ``scenarios`` and ``metrics`` when given; a metric
    name selects its series' points too ("throughput" selects
    "throughput@100") -- with its value in each run and its change points.
    ArgumentError for a scenario or metric the baseline does not hold
    (listing those it does; a metric not compared, such as a count, is not
    one)."""
    from ._baselines import history_names
    names = _selected("scenario", scenarios, history_names(history.runs))
    compared: list[tuple[str, str]] = []
    for scenario in names:
        seen: dict[str, None] = {}
        for trials in history.trials(scenario):
            for metric in trials.metric_names:
                if trials.spec(metric).compared:
                    seen.setdefault(metric, None)
        compared += [(scenario, metric) for metric in seen]
    chosen = _selected("compared metric", metrics, list(dict.fromkeys(m for _, m in compared)),
                       _metric_matches)
    out = []
    for scenario, metric in compared:
        if metric not in chosen:
            continue
        runs, values = [], []
        for i, run in enumerate(history.runs):
            value = _run_mean(run, scenario, metric)
            if value is not None:
                runs.append(i)
                values.append(value)
        found = change_points(values, significance=significance, permutations=permutations,
                              seed=seed, min_size=min_size)
        out.append(MetricHistory(
            scenario, metric, _spec(history, scenario, metric), tuple(runs), tuple(values),
            tuple(dataclasses.replace(cp, index=runs[cp.index]) for cp in found)))
    return out


# -- the command line --------------------------------------------------------------------

EXIT_OK = 0
EXIT_USAGE = 2


def _significance_option(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (0.05)")
    return value


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="A baseline's saved runs, oldest first, and the change points "
        "in each compared metric over them (E-divisive means with a permutation test).  "
        "Informs; never fails a build: exit 0, or 2 for a usage error.")
    parser.add_argument("name", metavar="NAME", help="the baseline")
    parser.add_argument("--baseline-dir", metavar="DIR", default=None,
                        help="where baselines are kept (default .caxton_meter/baselines)")
    parser.add_argument("--scenario", metavar="S", action="append", default=[],
                        help="only this scenario (repeatable)")
    parser.add_argument("--metric", metavar="M", action="append", default=[],
                        help="only this metric, and show it in the table of runs "
                        "(repeatable; default: every compared metric, the graded ones in "
                        "the table)")
    parser.add_argument("--significance", metavar="P", type=_significance_option, default=0.05,
                        help="the permutation test's level for each split (default 0.05)")
    parser.add_argument("--json", action="store_true",
                        help="machine-readable output (every metric, as with --all)")
    parser.add_argument("--all", action="store_true",
                        help="also list the metrics without a change point")
    return parser


def permutations_for(significance: float) -> int:
    """The shuffles the command line makes: DEFAULT_PERMUTATIONS, or more
    for a significance below 0.05, so that the smallest p-value the test
    can give stays a tenth of the level or less."""
    return max(DEFAULT_PERMUTATIONS, math.ceil(10 / _check_significance(significance)) - 1)


def main_history(argv: list[str], prog: str) -> int:
    """``history NAME``: list baseline NAME's runs (date, commit, profile,
    key metrics) and the change points in its metrics.  Exit 0; 2 for a
    usage error (an unknown baseline, scenario or metric, a damaged file)."""
    args = _parser(prog).parse_args(argv)
    from ._baselines import BASELINE_DIR, BaselineNotFoundError, BaselineStore
    store = BaselineStore(args.baseline_dir or BASELINE_DIR)
    try:
        history = store.history(args.name)
        found = metric_histories(history, scenarios=args.scenario, metrics=args.metric,
                                 significance=args.significance,
                                 permutations=permutations_for(args.significance))
    except (BaselineNotFoundError, ValueError) as e:    # a bad name or filter, a damaged file
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.json:
            print(_json(history, found, args.significance))
        else:
            print(_text(history, found, args.significance, args.all,
                        table=_table_metrics(history, found, bool(args.metric))))
    except BrokenPipeError:             # `... | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _table_metrics(history: BaselineHistory, found: Sequence[MetricHistory],
                   chosen: bool) -> list[MetricHistory]:
    """The table's columns: the metrics asked for with --metric; otherwise
    each scenario's graded metrics (its first compared one if none is
    graded), the figures its targets are set on."""
    if chosen:
        return list(found)
    graded = {(t.scenario, m) for r in history.runs for t in r.scenarios
              for m in t.metric_names if t.grade(m) is not None}
    out: list[MetricHistory] = []
    for scenario in dict.fromkeys(h.scenario for h in found):
        own = [h for h in found if h.scenario == scenario]
        out += [h for h in own if (scenario, h.metric) in graded] or own[:1]
    return out


def _date(run: RunResult) -> str:
    """The run's date in UTC to the minute, or what the metadata holds."""
    from ._results import run_date
    when = run_date(run.metadata)
    if when is None:
        return "—"
    return when if isinstance(when, str) else f"{when:%Y-%m-%d %H:%M}"


def _git(run: RunResult) -> dict[str, Any]:
    git = run.metadata.get("git")
    return git if isinstance(git, dict) else {}


def _commit(run: RunResult) -> str:
    """The commit's first 8 characters, "+dirty" for a dirty tree."""
    git = _git(run)
    commit = git.get("commit")
    if not isinstance(commit, str) or not commit:
        return "—"
    return commit[:8] + ("+dirty" if git.get("dirty") else "")


def _assessment(cp: ChangePoint, spec: MetricSpec) -> str:
    """"worse" or "better" after the metric's declared direction."""
    if cp.after == cp.before:
        return "same mean"      # the distribution changed, not its mean
    up = cp.after > cp.before
    return "better" if up == (spec.direction is Direction.HIGHER) else "worse"


def _text(history: BaselineHistory, found: Sequence[MetricHistory], significance: float,
          show_all: bool, table: Sequence[MetricHistory]) -> str:
    from ._units import format_quantity
    runs = history.runs
    lines = [f"baseline {history.name!r}: {len(runs)} run{'s' if len(runs) != 1 else ''}, "
             "oldest first (dates in UTC)", ""]
    header = ["#", "date", "commit", "profile"] + [f"{h.scenario}/{h.metric}" for h in table]
    values = [{i: v for i, v in zip(h.runs, h.values)} for h in table]
    rows = [[str(i + 1), _date(r), _commit(r), str(r.metadata.get("profile") or "—")]
            + [format_quantity(v.get(i, math.nan), h.spec.unit) for v, h in zip(values, table)]
            for i, r in enumerate(runs)]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.rjust(w) if c == 0 or c >= 4 else cell.ljust(w)
                 for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    needed = min_runs(significance)
    if len(runs) < needed:
        lines.append(f"change points need {needed} runs at least (below that even a clean "
                     f"step cannot reach p <= {significance:g} in the permutation test); "
                     f"baseline {history.name!r} has {len(runs)}")
        return "\n".join(lines)
    marked = [h for h in found if h.change_points]
    lines.append(f"change points (E-divisive means, significance {significance:g}, "
                 f"{permutations_for(significance)} permutations) in {len(found)} compared "
                 f"metric{'s' if len(found) != 1 else ''}:")
    for h in found:
        where = f"  {h.scenario}/{h.metric}: "
        for cp in h.change_points:
            run = runs[cp.index]
            lines.append(
                f"{where}change at run #{cp.index + 1} ({_date(run)}, {_commit(run)}): "
                f"{format_quantity(cp.before, h.spec.unit)} -> "
                f"{format_quantity(cp.after, h.spec.unit)} "
                f"({format_quantity(cp.change, 'ratio', sign=True)}, p={cp.p_value:.3f}, "
                f"{_assessment(cp, h.spec)})")
        if not h.change_points and show_all:
            if len(h.values) < needed:
                lines.append(f"{where}measured in {len(h.values)} runs: too few")
            else:
                mean = math.fsum(h.values) / len(h.values)
                lines.append(f"{where}no change point ({len(h.values)} runs, mean "
                             f"{format_quantity(mean, h.spec.unit)})")
    if not marked and not show_all:
        lines.append("  none")
    elif not show_all and len(marked) < len(found):
        lines.append(f"  no change point in the other {len(found) - len(marked)} "
                     "(--all lists them)")
    return "\n".join(lines)


def _json(history: BaselineHistory, found: Sequence[MetricHistory],
          significance: float) -> str:
    """The history as JSON (format 1): each run with its metadata, each
    compared metric with its values and change points; runs are numbered
    from 1 as in the table."""
    import json

    from ._results import json_safe

    def run_ref(i: int) -> dict[str, Any]:
        run, git = history.runs[i], _git(history.runs[i])
        return {"run": i + 1, "date": run.metadata.get("date"), "commit": git.get("commit"),
                "dirty": git.get("dirty"), "branch": git.get("branch")}

    doc = {
        "kind": "caxton_meter.history", "format": 1, "baseline": history.name,
        "method": {"name": "e-divisive means", "alpha": 1, "significance": significance,
                   "permutations": permutations_for(significance), "seed": 0,
                   "min_size": DEFAULT_MIN_SIZE},
        "min_runs": min_runs(significance),
        "runs": [{**run_ref(i), "profile": run.metadata.get("profile")}
                 for i, run in enumerate(history.runs)],
        "metrics": [{
            "scenario": h.scenario, "metric": h.metric, "unit": h.spec.unit,
            "kind": h.spec.kind.value,
            "direction": h.spec.direction.value if h.spec.direction else None,
            "runs": [i + 1 for i in h.runs], "values": list(h.values),
            "change_points": [{**run_ref(cp.index), "before": cp.before, "after": cp.after,
                               "change": cp.change, "p_value": cp.p_value,
                               "assessment": _assessment(cp, h.spec)}
                              for cp in h.change_points]} for h in found],
    }
    return json.dumps(json_safe(doc), indent=1, allow_nan=False, ensure_ascii=False)
