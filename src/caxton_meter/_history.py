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
   and Otava do, every end point kappa of Y (X is the segment's runs before
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

import bisect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._checks import ArgumentError, ArgumentTypeError, integer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    _FloatArray = npt.NDArray[np.float64]

__all__ = [
    "ChangePoint",
    "DEFAULT_MIN_SIZE",
    "DEFAULT_PERMUTATIONS",
    "change_points",
    "min_runs",
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
    from ._regression import _relative_change
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
