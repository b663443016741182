"""Regression detection: did a benchmark get slower (or faster) between two runs?

Pure functions on numbers and histograms; no I/O.  Two kinds of input:

**Repeated trials** (one number per trial, e.g. the throughput of each of 10
runs): :func:`compare_samples` applies Criterion's decision rule.

1. A two-sided test of "both samples come from the same distribution":
   the Mann–Whitney U test (:func:`mann_whitney_u`, rank based, no normality
   assumption; the default) or Welch's t test (:func:`welch_t`, unequal
   variances).  ``p >= significance`` means no change was detected
   (:attr:`Verdict.NO_CHANGE`).
2. A percentile bootstrap confidence interval of the relative change of the
   mean (:func:`bootstrap_ci`).  A significant change whose interval overlaps
   the noise band ``[-noise_threshold, +noise_threshold]`` is real but too
   small to matter (:attr:`Verdict.WITHIN_NOISE`); one whose whole interval
   lies beyond the band is :attr:`Verdict.REGRESSED` on the bad side and
   :attr:`Verdict.IMPROVED` on the good side.

With a single trial on either side no test is possible: the guide's fixed
threshold decides alone (a relative change beyond ``threshold``, 10 % by
default, on the bad side is a regression).  Whatever the method,
:attr:`Change.exceeds_threshold` says whether the point estimate is beyond
that fixed threshold on the bad side, so a caller can require both.

**Latency distributions** (an HDR histogram per run): :func:`compare_percentiles`
compares one percentile.  Its confidence interval (:func:`percentile_ci`) is
distribution free: the k-th smallest of N values is below the q-quantile with
a Binomial(N, q) probability, so the order statistics at ranks
``N q ± z sqrt(N q (1 - q))`` bracket the percentile with the requested
confidence (normal approximation of the binomial).  Two percentiles differ
significantly when their intervals do not overlap; the noise band rule then
applies as above.

The relative change of an estimate is ``(current - baseline) / |baseline|``,
which is ``current / baseline - 1`` for a positive baseline (every time,
rate and size caxton_meter measures) and keeps the sign of the difference for
a negative one.  A baseline of exactly 0 leaves it undefined: the change is
then ``+inf``, ``-inf`` or ``0.0`` after the sign of ``current - baseline``,
and the verdict comes from the significance test alone (no noise band).

The numerical pieces are implemented here with numpy and the standard library
only: the exact Mann–Whitney distribution by dynamic programming over rank
sums, the Student t distribution through the regularized incomplete beta
function (the continued fraction of Numerical Recipes' ``betacf``, evaluated
with the modified Lentz method) and the normal quantile by Acklam's rational
approximation refined by one Halley step.
"""

from __future__ import annotations

import enum
import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, Union

import numpy as np
import numpy.typing as npt

__all__ = [
    "Change",
    "HistogramLike",
    "Samples",
    "Verdict",
    "bootstrap_ci",
    "compare_percentiles",
    "compare_samples",
    "mann_whitney_u",
    "normal_quantile",
    "percentile_ci",
    "holm",
    "outlying_runs",
    "relative_change",
    "run_to_run",
    "RunToRun",
    "student_t_quantile",
    "welch_t",
]

# Largest sample size (each side) for which mann_whitney_u uses the exact
# distribution; the rank-sum table is then at most 51 x 3826 floats.
EXACT_MAX_SIZE = 50

# Regularized incomplete beta continued fraction: convergence tolerance and
# iteration cap.  The fraction needs O(sqrt(max(a, b))) terms, so the cap
# covers Student t degrees of freedom up to about 10^7.
_BETACF_EPS = 1e-15
_BETACF_TINY = 1e-300
_BETACF_MAXIT = 20_000

# Above this many degrees of freedom the Student t distribution is the
# standard normal to better than 1e-7 in the two-sided p-value.
_T_NORMAL_DF = 1e7

# Bootstrap: resamples are drawn in chunks of at most this many indices per
# side, so memory stays bounded for large samples.
_BOOTSTRAP_CHUNK = 4_000_000

_TESTS = ("mann-whitney", "welch")
_STATISTICS = ("mean", "median")

_FloatArray = npt.NDArray[np.float64]

# A sample: a sequence of real numbers or a one-dimensional numpy array.
Samples = Union[Sequence[float], npt.NDArray[Any]]


class Verdict(enum.Enum):
    """The outcome of a comparison."""
    REGRESSED = "regressed"
    IMPROVED = "improved"
    NO_CHANGE = "no change"          # not statistically significant
    WITHIN_NOISE = "within noise"    # significant, but the CI overlaps the noise band
    NOT_GATEABLE = "not gateable"    # not significant, and this machine's spread hides
                                     # changes of the size asked for (or is not known)
    TRANSIENT = "transient"          # a change a re-run of the same code did not show


@dataclass(frozen=True)
class Change:
    """The comparison of a current run against a baseline.  Immutable.

    ``change``, ``ci_low`` and ``ci_high`` are relative changes
    (``(current - baseline) / |baseline|``; see the module docstring for a
    baseline of 0).  ``p_value`` is None when no test was made (single
    trials, or histograms, whose significance is the non-overlap of the
    percentile intervals)."""
    verdict: Verdict
    baseline: float
    current: float
    change: float
    ci_low: float
    ci_high: float
    p_value: float | None
    method: str
    higher_is_better: bool
    exceeds_threshold: bool
    baseline_n: int
    current_n: int
    spread: float | None = None       # run-to-run SD of the run means / |mean| (history)
    detectable: float | None = None   # the smallest relative change this test detects
    adjusted_p: float | None = None   # p after the family-wise correction (Holm)
    left_out: int = 0                 # saved runs left out as outliers of the others

    @property
    def is_regression(self) -> bool:
        """True when the verdict is :attr:`Verdict.REGRESSED`."""
        return self.verdict is Verdict.REGRESSED


class HistogramLike(Protocol):
    """What :func:`percentile_ci` and :func:`compare_percentiles` read from a
    histogram; :class:`caxton_meter.Histogram` has it."""

    @property
    def total_count(self) -> int: ...

    def value_at_percentile(self, percentile: float, /) -> int: ...


# -- validation ---------------------------------------------------------------------------

def _sample(func: str, name: str, values: Samples) -> _FloatArray:
    """``values`` as a 1-d float64 array; TypeError unless real numbers,
    ValueError if empty or not finite."""
    if isinstance(values, (str, bytes, bytearray)):
        raise TypeError(f"{func}: {name} must be a sequence of numbers, not {type(values).__name__}")
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{func}: {name} must be a sequence of numbers: {exc}") from None
    if raw.dtype.kind == "O":
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{func}: {name} must hold real numbers: {exc}") from None
    elif raw.dtype.kind not in "iuf":
        raise TypeError(f"{func}: {name} must hold real numbers, got dtype {raw.dtype}")
    if raw.ndim != 1:
        raise ValueError(f"{func}: {name} must be one-dimensional, got shape {raw.shape}")
    arr: _FloatArray = raw.astype(np.float64)
    if arr.size == 0:
        raise ValueError(f"{func}: {name} is empty")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{func}: {name}[{i}] is not finite: {arr[i]!r}")
    return arr


def _real(func: str, name: str, value: object) -> float:
    """``value`` as a float; TypeError unless a real number (bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{func}: {name} must be a real number, not {type(value).__name__}")
    return float(value)


def _non_negative(func: str, name: str, value: object) -> float:
    x = _real(func, name, value)
    if not (math.isfinite(x) and x >= 0.0):
        raise ValueError(f"{func}: {name} must be a finite number >= 0, got {value!r}")
    return x


def _open_unit(func: str, name: str, value: object) -> float:
    x = _real(func, name, value)
    if not 0.0 < x < 1.0:
        raise ValueError(f"{func}: {name} must be within (0, 1), got {value!r}")
    return x


def _integer(func: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{func}: {name} must be an int, not {type(value).__name__}")
    n = int(value)
    if n < minimum:
        raise ValueError(f"{func}: {name} must be at least {minimum}, got {n}")
    return n


def _choice(func: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{func}: {name} must be a str, not {type(value).__name__}")
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{func}: {name} must be one of {options}, got {value!r}")
    return value


# -- normal distribution ------------------------------------------------------------------

# Acklam's rational approximation of the inverse normal CDF (relative error
# below 1.15e-9 before refinement).
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549671365666384e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)
_P_LOW = 0.02425
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _normal_quantile_lower(p: float) -> float:
    """The quantile for 0 < p <= 0.5 (where p is exact and the tail is
    resolved by erfc without cancellation)."""
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    else:
        q = p - 0.5
        r = q * q
        x = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
             / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    # One Halley step on Phi(x) - p = 0.
    e = _normal_cdf(x) - p
    try:
        u = e * _SQRT2PI * math.exp(0.5 * x * x)
    except OverflowError:      # p below ~1e-300: the approximation stands
        return x
    return x - u / (1.0 + 0.5 * x * u)


def normal_quantile(p: float) -> float:
    """The inverse of the standard normal CDF at ``p`` in (0, 1).

    Acklam's rational approximation refined by one Halley step with
    :func:`math.erfc`; absolute error below 1e-9 (about 1e-15 in practice).
    Exactly antisymmetric: ``normal_quantile(1 - p) == -normal_quantile(p)``
    when ``1 - p`` is exact in floating point.  TypeError unless a real
    number, ValueError outside (0, 1)."""
    x = _real("normal_quantile", "p", p)
    if not 0.0 < x < 1.0:
        raise ValueError(f"normal_quantile: p must be within (0, 1), got {p!r}")
    if x == 0.5:
        return 0.0
    if x > 0.5:
        return -_normal_quantile_lower(1.0 - x)
    return _normal_quantile_lower(x)


# -- Student t distribution ---------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Numerical
    Recipes' betacf), evaluated by the modified Lentz method."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _BETACF_TINY:
        d = _BETACF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, _BETACF_MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _BETACF_TINY:
            d = _BETACF_TINY
        c = 1.0 + aa / c
        if abs(c) < _BETACF_TINY:
            c = _BETACF_TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _BETACF_TINY:
            d = _BETACF_TINY
        c = 1.0 + aa / c
        if abs(c) < _BETACF_TINY:
            c = _BETACF_TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _BETACF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta: continued fraction did not converge for "
                          f"a={a!r}, b={b!r}, x={x!r}")


def _stirling_correction(x: float) -> float:
    """ln Gamma(x) - ((x - 1/2) ln x - x + ln(2 pi) / 2) for x >= 20, by
    its asymptotic series (error below 1e-16)."""
    inv = 1.0 / x
    inv2 = inv * inv
    return inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))


def _log_beta(a: float, b: float) -> float:
    """ln B(a, b) = ln Gamma(a) + ln Gamma(b) - ln Gamma(a + b).

    When one argument is large (a Student t with many degrees of freedom),
    ln Gamma(big + small) - ln Gamma(big) comes from Stirling's series in a
    form without the cancellation of the two large ln Gamma values."""
    small, big = min(a, b), max(a, b)
    if big < 20.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    ratio = ((big - 0.5) * math.log1p(small / big) + small * math.log(big + small) - small
             + _stirling_correction(big + small) - _stirling_correction(big))
    return math.lgamma(small) - ratio


def _regularized_beta(a: float, b: float, x: float, y: float | None = None) -> float:
    """The regularized incomplete beta function I_x(a, b), a, b > 0,
    0 <= x <= 1.  ``y`` is 1 - x when the caller knows it more precisely
    than the subtraction would give it."""
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"incomplete beta: a and b must be > 0, got a={a!r}, b={b!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete beta: x must be within [0, 1], got {x!r}")
    if y is None:
        y = 1.0 - x
    if x == 0.0 or y == 1.0:
        return 0.0
    if y == 0.0 or x == 1.0:
        return 1.0
    log_x = math.log1p(-y) if x > 0.5 else math.log(x)
    log_y = math.log1p(-x) if y > 0.5 else math.log(y)
    front = math.exp(a * log_x + b * log_y - _log_beta(a, b))
    # The fraction converges fast for x below the mean of Beta(a, b); above
    # it, use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def _student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` > 0 degrees of freedom."""
    if math.isnan(t):
        raise ValueError("Student t: t is NaN")
    if t == 0.0:
        return 1.0
    if math.isinf(t):
        return 0.0
    if df > _T_NORMAL_DF:
        return math.erfc(abs(t) / _SQRT2)
    # P(|T| >= |t|) = I_x(df / 2, 1 / 2) with x = df / (df + t^2); x and
    # 1 - x are each computed directly (no cancellation, no overflow).
    t2 = t * t
    x = 1.0 / (1.0 + t2 / df)
    y = 1.0 / (1.0 + df / t2)
    return min(1.0, max(0.0, _regularized_beta(0.5 * df, 0.5, x, y)))


def _student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom."""
    tail = 0.5 * _student_t_two_sided(t, df)
    return 1.0 - tail if t > 0 else tail


# -- tests --------------------------------------------------------------------------------

def _midranks(values: _FloatArray) -> tuple[_FloatArray, _FloatArray]:
    """Ranks 1..N of ``values`` (ties get the mean of their ranks) and the
    size of each group of tied values."""
    n = values.size
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start index of each run of equal values, plus the end.
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    bounds = np.append(starts, n)
    sizes = np.diff(bounds).astype(np.float64)
    # The ranks of a run [s, e) are s+1 .. e; their mean is (s + 1 + e) / 2.
    run_ranks = (bounds[:-1] + 1 + bounds[1:]) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, np.diff(bounds))
    return ranks, sizes


@functools.lru_cache(maxsize=64)
def _u_distribution(m: int, n: int) -> _FloatArray:
    """Counts of each U = 0 .. m*n for samples of sizes m and n without
    ties, as floats (the largest count, C(100, 50) ~ 1e29, is beyond int64;
    float64 keeps 16 significant digits).  Read only: the array is cached."""
    k, total = min(m, n), m + n
    max_sum = k * (2 * total - k + 1) // 2
    # ways[j, s]: ways to choose j of the ranks seen so far with sum s.
    ways = np.zeros((k + 1, max_sum + 1), dtype=np.float64)
    ways[0, 0] = 1.0
    for r in range(1, total + 1):
        # Either rank r is not chosen (unchanged) or it is (from j - 1, s - r);
        # the right-hand side is evaluated before the assignment.
        ways[1:, r:] = ways[1:, r:] + ways[:-1, :-r]
    offset = k * (k + 1) // 2                 # U = rank sum - k(k+1)/2
    counts = ways[k, offset:offset + m * n + 1].copy()
    counts.setflags(write=False)
    return counts


def _mw_exact_p(u: float, m: int, n: int) -> float:
    """Two-sided exact p-value of U (an integer without ties)."""
    counts = _u_distribution(m, n)
    iu = int(round(u))
    total = float(counts.sum())
    lower = float(counts[: iu + 1].sum()) / total      # P(U <= u)
    upper = float(counts[iu:].sum()) / total           # P(U >= u)
    return min(1.0, 2.0 * min(lower, upper))


def _mw_normal_p(u: float, m: int, n: int, tie_sizes: _FloatArray) -> float:
    """Two-sided p-value of U by the normal approximation, with the tie
    correction of the variance and a continuity correction of 1/2."""
    total = m + n
    mu = 0.5 * m * n
    ties = float(np.sum(tie_sizes ** 3 - tie_sizes))
    var = m * n / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0.0:              # every value is tied: no evidence of a difference
        return 1.0
    z = max(0.0, abs(u - mu) - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(z / _SQRT2))


def mann_whitney_u(a: Samples, b: Samples) -> tuple[float, float]:
    """The Mann–Whitney U test: (U statistic of ``a``, two-sided p-value).

    U counts the pairs (x from a, y from b) with x > y, ties counting 1/2;
    it is ``len(a) * len(b) / 2`` on average when both samples come from one
    distribution.  Swapping the samples gives ``len(a) * len(b) - U`` and the
    same p-value.  The p-value is exact (the distribution of U by dynamic
    programming over rank sums) when there are no ties and both samples have
    at most 50 values; otherwise it is the normal approximation with the tie
    correction of the variance and a continuity correction.  When every value
    is the same the p-value is 1.  ValueError for an empty sample or a
    non-finite value."""
    x = _sample("mann_whitney_u", "a", a)
    y = _sample("mann_whitney_u", "b", b)
    m, n = x.size, y.size
    ranks, tie_sizes = _midranks(np.concatenate((x, y)))
    u = float(ranks[:m].sum()) - m * (m + 1) / 2.0
    if m <= EXACT_MAX_SIZE and n <= EXACT_MAX_SIZE and bool(np.all(tie_sizes == 1)):
        return u, _mw_exact_p(u, m, n)
    return u, _mw_normal_p(u, m, n, tie_sizes)


def welch_t(a: Samples, b: Samples) -> tuple[float, float]:
    """Welch's unequal-variances t test: (t, two-sided p-value).

    ``t = (mean(a) - mean(b)) / sqrt(var(a)/n_a + var(b)/n_b)`` (sample
    variances), compared against Student's t with the Welch–Satterthwaite
    degrees of freedom.  Needs at least 2 values a side (ValueError
    otherwise, or for a non-finite value).  When both variances are 0 there
    is no noise to measure against: p is 1.0 if the means are equal (t 0.0)
    and 0.0 otherwise (t infinite)."""
    x = _sample("welch_t", "a", a)
    y = _sample("welch_t", "b", b)
    for name, arr in (("a", x), ("b", y)):
        if arr.size < 2:
            raise ValueError(f"welch_t: {name} needs at least 2 values, got {arr.size}")
    mean_x, mean_y = float(x.mean()), float(y.mean())
    sx = float(x.var(ddof=1)) / x.size
    sy = float(y.var(ddof=1)) / y.size
    se2 = sx + sy
    diff = mean_x - mean_y
    if se2 == 0.0:
        if diff == 0.0:
            return 0.0, 1.0
        return math.copysign(math.inf, diff), 0.0
    t = diff / math.sqrt(se2)
    df = se2 * se2 / (sx * sx / (x.size - 1) + sy * sy / (y.size - 1))
    return t, _student_t_two_sided(t, df)


# -- bootstrap ----------------------------------------------------------------------------

def _relative(current: _FloatArray | float, baseline: _FloatArray | float) -> _FloatArray:
    """(current - baseline) / |baseline|, elementwise; where the baseline is
    0: +inf, -inf or 0.0 after the sign of the difference."""
    cur = np.asarray(current, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    diff = cur - base
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.abs(base)
    zero_base = base == 0.0
    if np.any(zero_base):
        rel = np.where(zero_base, np.sign(diff) * np.where(diff == 0.0, 0.0, np.inf), rel)
    result: _FloatArray = rel
    return result


def relative_change(current: float, baseline: float) -> float:
    """(current - baseline) / |baseline|; for a baseline of 0: +inf, -inf
    or 0.0 after the sign of the difference."""
    return float(_relative(current, baseline))


_relative_change = relative_change


def bootstrap_ci(baseline: Samples, current: Samples, *, confidence: float = 0.95,
                 resamples: int = 10_000, seed: int = 0, statistic: str = "mean") -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the relative change
    ``statistic(current) / statistic(baseline) - 1`` (for a baseline
    statistic of 0, see the module docstring).

    Each resample draws ``len(baseline)`` baseline values and
    ``len(current)`` current values with replacement, each side
    independently, from ``np.random.default_rng(seed)``: the result is
    deterministic for a given seed.  ``statistic`` is ``"mean"`` or
    ``"median"``.  The bounds are order statistics of the resampled changes,
    with ``floor(resamples * (1 - confidence) / 2)`` resamples below the low
    bound and as many above the high one (no interpolation).  ValueError for
    an empty sample, a non-finite value, ``confidence`` outside (0, 1),
    ``resamples`` < 1, a negative seed or an unknown statistic."""
    func = "bootstrap_ci"
    base = _sample(func, "baseline", baseline)
    cur = _sample(func, "current", current)
    conf = _open_unit(func, "confidence", confidence)
    count = _integer(func, "resamples", resamples, 1)
    seed_ = _integer(func, "seed", seed, 0)
    stat = _choice(func, "statistic", statistic, _STATISTICS)
    reduce = np.mean if stat == "mean" else np.median

    rng = np.random.default_rng(seed_)
    chunk = max(1, _BOOTSTRAP_CHUNK // max(base.size, cur.size))
    changes = np.empty(count, dtype=np.float64)
    for start in range(0, count, chunk):
        rows = min(chunk, count - start)
        base_stat = reduce(base[rng.integers(0, base.size, size=(rows, base.size))], axis=1)
        cur_stat = reduce(cur[rng.integers(0, cur.size, size=(rows, cur.size))], axis=1)
        changes[start:start + rows] = _relative(cur_stat, base_stat)
    changes.sort()
    k = min(int(math.floor(count * (1.0 - conf) / 2.0)), (count - 1) // 2)
    return float(changes[k]), float(changes[count - 1 - k])


# -- decisions ----------------------------------------------------------------------------

def _beyond(change: float, threshold: float, *, bad: bool, higher_is_better: bool) -> bool:
    """Whether ``change`` is strictly beyond ``threshold`` on the bad (or
    good) side."""
    worse_is_lower = higher_is_better
    lower = change < -threshold
    higher = change > threshold
    if bad:
        return lower if worse_is_lower else higher
    return higher if worse_is_lower else lower


def _band_verdict(change: float, ci_low: float, ci_high: float, noise: float, *,
                  higher_is_better: bool, baseline_zero: bool) -> Verdict:
    """The verdict of a significant change: REGRESSED or IMPROVED when the
    whole interval is beyond the noise band, WITHIN_NOISE when it overlaps.
    With a baseline of 0 the relative scale is undefined: the direction of
    the change decides."""
    if baseline_zero:
        up = change > 0
        down = change < 0
    else:
        up = ci_low > noise
        down = ci_high < -noise
    if not (up or down):
        return Verdict.WITHIN_NOISE
    worse = down if higher_is_better else up
    return Verdict.REGRESSED if worse else Verdict.IMPROVED


def compare_samples(baseline: Samples, current: Samples, *, higher_is_better: bool,
                    threshold: float = 0.10, noise_threshold: float = 0.05, significance: float = 0.05,
                    test: str = "mann-whitney", confidence: float = 0.95, resamples: int = 10_000,
                    seed: int = 0) -> Change:
    """Compare repeated trials of a metric: Criterion's decision rule plus
    the guide's fixed threshold (see the module docstring).

    The estimates are the means of the trials.  With a single trial on
    either side (method ``"fixed-threshold"``, no p-value, a degenerate
    interval at the change): REGRESSED when the relative change is beyond
    ``threshold`` on the bad side, IMPROVED when beyond it on the good side,
    NO_CHANGE otherwise.  Else the test ``test`` (``"mann-whitney"`` or
    ``"welch"``) gives the p-value and :func:`bootstrap_ci` (of the mean,
    with ``confidence``, ``resamples`` and ``seed``) the interval: NO_CHANGE
    when ``p >= significance``; WITHIN_NOISE when the interval overlaps
    ``[-noise_threshold, +noise_threshold]``; REGRESSED or IMPROVED when it
    lies wholly beyond the band on the bad or good side (lower is bad when
    ``higher_is_better``).  With a baseline mean of 0 a significant change
    is REGRESSED or IMPROVED by its direction alone.  "Beyond" is strict.

    ``exceeds_threshold`` says whether the point estimate is beyond
    ``threshold`` on the bad side, whatever the verdict.

    TypeError for a wrong type; ValueError (naming the argument) for an
    empty sample, a non-finite value, a negative or non-finite threshold or
    noise_threshold, significance or confidence outside (0, 1), an unknown
    test, resamples < 1 or a negative seed."""
    func = "compare_samples"
    base = _sample(func, "baseline", baseline)
    cur = _sample(func, "current", current)
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"{func}: higher_is_better must be a bool, not {type(higher_is_better).__name__}")
    thr = _non_negative(func, "threshold", threshold)
    noise = _non_negative(func, "noise_threshold", noise_threshold)
    alpha = _open_unit(func, "significance", significance)
    test_ = _choice(func, "test", test, _TESTS)
    conf = _open_unit(func, "confidence", confidence)
    count = _integer(func, "resamples", resamples, 1)
    seed_ = _integer(func, "seed", seed, 0)

    base_est, cur_est = float(base.mean()), float(cur.mean())
    change = _relative_change(cur_est, base_est)
    exceeds = _beyond(change, thr, bad=True, higher_is_better=higher_is_better)

    def result(verdict: Verdict, ci_low: float, ci_high: float, p: float | None,
               method: str) -> Change:
        return Change(verdict=verdict, baseline=base_est, current=cur_est, change=change,
                      ci_low=ci_low, ci_high=ci_high, p_value=p, method=method,
                      higher_is_better=higher_is_better, exceeds_threshold=exceeds,
                      baseline_n=int(base.size), current_n=int(cur.size))

    if base.size == 1 or cur.size == 1:
        if exceeds:
            verdict = Verdict.REGRESSED
        elif _beyond(change, thr, bad=False, higher_is_better=higher_is_better):
            verdict = Verdict.IMPROVED
        else:
            verdict = Verdict.NO_CHANGE
        return result(verdict, change, change, None, "fixed-threshold")

    if test_ == "mann-whitney":
        _, p = mann_whitney_u(base, cur)
    else:
        _, p = welch_t(base, cur)
    ci_low, ci_high = bootstrap_ci(base, cur, confidence=conf, resamples=count, seed=seed_,
                                   statistic="mean")
    if p >= alpha:
        verdict = Verdict.NO_CHANGE
    else:
        verdict = _band_verdict(change, ci_low, ci_high, noise, higher_is_better=higher_is_better,
                                baseline_zero=base_est == 0.0)
    return result(verdict, ci_low, ci_high, p, test_)


def _histogram_total(func: str, name: str, hist: HistogramLike) -> int:
    total = hist.total_count
    if isinstance(total, bool) or not isinstance(total, numbers.Integral):
        raise TypeError(f"{func}: {name}.total_count must be an int, not {type(total).__name__}")
    if total <= 0:
        raise ValueError(f"{func}: {name} is empty (total_count {total})")
    return int(total)


def _percentile_arg(func: str, percentile: object) -> float:
    p = _real(func, "percentile", percentile)
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"{func}: percentile must be within [0, 100], got {percentile!r}")
    return p


def _percentile_ci(func: str, name: str, hist: HistogramLike, p: float, conf: float) -> tuple[int, int]:
    total = _histogram_total(func, name, hist)
    q = p / 100.0
    z = normal_quantile(0.5 * (1.0 + conf))
    centre = total * q
    half = z * math.sqrt(total * q * (1.0 - q))
    low_rank = min(max(math.floor(centre - half), 1), total)
    high_rank = min(max(math.ceil(centre + half), 1), total)
    # value_at_percentile reads the value whose running count reaches
    # round(percentile / 100 * total_count): rank / total * 100 reads rank.
    low = hist.value_at_percentile(min(100.0, low_rank / total * 100.0))
    high = hist.value_at_percentile(min(100.0, high_rank / total * 100.0))
    return int(low), int(high)


def percentile_ci(hist: HistogramLike, percentile: float, *,
                  confidence: float = 0.95) -> tuple[int, int]:
    """Distribution-free confidence interval of a percentile (0..100) of the
    values recorded in ``hist``: the values at the order statistics of ranks
    ``N q -/+ z sqrt(N q (1 - q))`` (rounded outwards, clipped to [1, N]),
    with N the total count, q = percentile / 100 and z the standard normal
    quantile of (1 + confidence) / 2.  The values are read back with
    ``hist.value_at_percentile(rank / N * 100)``, so they carry the
    histogram's precision.  ValueError for an empty histogram, a percentile
    outside [0, 100] or a confidence outside (0, 1)."""
    func = "percentile_ci"
    p = _percentile_arg(func, percentile)
    conf = _open_unit(func, "confidence", confidence)
    return _percentile_ci(func, "hist", hist, p, conf)


def compare_percentiles(baseline_hist: HistogramLike, current_hist: HistogramLike,
                        percentile: float, *, threshold: float = 0.10,
                        noise_threshold: float = 0.05, confidence: float = 0.95,
                        higher_is_better: bool = False) -> Change:
    """Compare one percentile of two histograms (lower is better unless
    ``higher_is_better``: the direction the metric declares).

    The estimates are the percentiles; the interval of the relative change
    is ``[cur_lo / base_hi - 1, cur_hi / base_lo - 1]`` from the two
    :func:`percentile_ci` intervals (each at ``confidence``).  The change is
    significant when the two percentile intervals do not overlap: then
    REGRESSED or IMPROVED when the relative interval lies wholly beyond the
    noise band ``[-noise_threshold, +noise_threshold]``, WITHIN_NOISE when it
    overlaps it; NO_CHANGE when the percentile intervals overlap.  Method
    ``"histogram"``, no p-value, the total counts as ``baseline_n`` and
    ``current_n``.  ``exceeds_threshold``: the change of the percentile is
    beyond ``threshold`` on the bad side.  ValueError for an empty histogram, a percentile
    outside [0, 100], a negative or non-finite threshold or noise_threshold,
    or a confidence outside (0, 1)."""
    func = "compare_percentiles"
    p = _percentile_arg(func, percentile)
    thr = _non_negative(func, "threshold", threshold)
    noise = _non_negative(func, "noise_threshold", noise_threshold)
    conf = _open_unit(func, "confidence", confidence)
    base_lo, base_hi = _percentile_ci(func, "baseline_hist", baseline_hist, p, conf)
    cur_lo, cur_hi = _percentile_ci(func, "current_hist", current_hist, p, conf)
    base_est = float(baseline_hist.value_at_percentile(p))
    cur_est = float(current_hist.value_at_percentile(p))

    change = _relative_change(cur_est, base_est)
    ci_low = _relative_change(float(cur_lo), float(base_hi))
    ci_high = _relative_change(float(cur_hi), float(base_lo))
    significant = cur_lo > base_hi or cur_hi < base_lo
    if significant:
        verdict = _band_verdict(change, ci_low, ci_high, noise,
                                higher_is_better=higher_is_better,
                                baseline_zero=base_est == 0.0)
    else:
        verdict = Verdict.NO_CHANGE
    return Change(verdict=verdict, baseline=base_est, current=cur_est, change=change,
                  ci_low=ci_low, ci_high=ci_high, p_value=None, method="histogram",
                  higher_is_better=higher_is_better,
                  exceeds_threshold=_beyond(change, thr, bad=True,
                                            higher_is_better=higher_is_better),
                  baseline_n=_histogram_total(func, "baseline_hist", baseline_hist),
                  current_n=_histogram_total(func, "current_hist", current_hist))


# -- run-to-run variation and the family of comparisons ------------------------------------

def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` > 0 degrees of freedom
    (bisection on the CDF to 1e-12; the normal quantile for huge df)."""
    if not 0 < p < 1:
        raise ValueError(f"student_t_quantile: p must be in (0, 1), got {p!r}")
    if not df > 0:
        raise ValueError(f"student_t_quantile: df must be > 0, got {df!r}")
    if df > _T_NORMAL_DF:
        return normal_quantile(p)
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while _student_t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: the k-th
    smallest of m p-values times (m - k + 1), made non-decreasing, at most
    1.  Rejecting every hypothesis whose adjusted p is below alpha keeps the
    probability of one or more false rejections in the whole family at or
    below alpha, whatever the dependence between the tests."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        p = p_values[i]
        if math.isnan(p):
            raise ValueError("holm: a p-value is NaN")
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def outlying_runs(values: Samples, *, significance: float = 0.05,
                  most: int | None = None) -> tuple[int, ...]:
    """The indices of the values that Rosner's generalized extreme Studentized
    deviate test (1983) finds to be outliers of an otherwise normal sample,
    at ``significance``, testing for up to ``most`` of them (default: one in
    five, and none below five values, so that at least four are kept).

    Step i removes the value farthest from the mean of those left, with
    R_i = max |x - mean| / s, and compares it with
    lambda_i = (n - i) t_q / sqrt((n - i - 1 + t_q^2) (n - i + 1)),
    t_q Student's t quantile q = 1 - a / (2 (n - i + 1)) with n - i - 1
    degrees of freedom; the outliers are the values removed up to the last
    step whose R_i exceeds lambda_i.  Values that are all equal have none."""
    func = "outlying_runs"
    x = _sample(func, "values", values)
    alpha = _open_unit(func, "significance", significance)
    n = int(x.size)
    limit = n // 5 if most is None else _integer(func, "most", most, 0)
    limit = min(limit, max(n - 4, 0))
    left = list(range(n))
    removed: list[int] = []
    found = 0
    for i in range(1, limit + 1):
        rest = x[left]
        sd = float(rest.std(ddof=1))
        if sd == 0.0:
            break
        mean = float(rest.mean())
        far = max(left, key=lambda j: abs(float(x[j]) - mean))
        r = abs(float(x[far]) - mean) / sd
        t = student_t_quantile(1 - alpha / (2 * (n - i + 1)), n - i - 1)
        lam = (n - i) * t / math.sqrt((n - i - 1 + t * t) * (n - i + 1))
        left.remove(far)
        removed.append(far)
        if r > lam:
            found = i
    return tuple(sorted(removed[:found]))


_SCREENING = 0.001     # the level at which run_to_run leaves outlying saved runs out


def _still_out(history: _FloatArray, left_out: tuple[int, ...], current: float) -> tuple[int, ...]:
    """The outlying saved runs that stay out of the test of ``current``:
    all of them, unless the current run is nearer to one of them than to
    the mean of the others; then the left-out runs on its side of that mean
    are put back, and only those on the other side stay out."""
    centre = float(np.delete(history, list(left_out)).mean())
    side = current >= centre
    same = [i for i in left_out if (float(history[i]) >= centre) == side]
    if any(abs(float(history[i]) - current) < abs(current - centre) for i in same):
        return tuple(i for i in left_out if i not in same)
    return left_out


@dataclass(frozen=True)
class RunToRun:
    """A current run's mean against the means of the saved runs: the raw
    two-sided p-value of the prediction test, the relative change and its
    interval, the run-to-run spread and the smallest relative change the
    test detects (at ``significance`` for a family of ``family`` tests, with
    ``power``)."""
    baseline: float
    current: float
    change: float
    ci_low: float
    ci_high: float
    p_value: float
    spread: float
    detectable: float
    history_n: int              # the saved runs the test used
    reach: float = 0.0          # the detectable change in the metric's own unit
    left_out: int = 0           # saved runs left out as outliers (robust=True)


def run_to_run(history: Samples, current: float, *, significance: float = 0.05,
               family: int = 1, power: float = 0.8, within: float = 0.0,
               robust: bool = True) -> RunToRun:
    """Is ``current`` (this run's mean) one more run like the ``history``
    (each saved run's mean), or not?

    With k >= 2 saved run means of mean m and standard deviation s, a new
    run's mean differs from m by the run-to-run variation alone with
    standard deviation s * sqrt(1 + 1/k), and (current - m) / that follows
    Student's t with k - 1 degrees of freedom (the prediction interval of
    a normal sample).  Everything that varies between runs on this machine
    -- the trials' sampling error, the process, the machine's load -- is in
    s: no verdict rests on within-run error alone.

    ``detectable`` is the smallest relative change the test finds with
    probability ``power`` at the Bonferroni level ``significance / family``
    (the first and strictest step of Holm's procedure):
    (t(1 - a/2) + t(power)) * s * sqrt(1 + 1/k) / |m|.  ``spread`` is s/|m|.

    ``within`` is the standard deviation a run's mean has from its own
    trials alone (the trials' pooled standard deviation / sqrt(trials)):
    a run's mean varies at least that much, so s is never taken below it.
    A few saved runs of a coarse metric (memory read in pages, say) can
    agree exactly by chance while its trials disagree; their s = 0 would
    make any difference "significant".  With s = 0 and no within-run
    variation either (a metric that never varied), any difference is
    significant (p = 0) and an equal value is not (p = 1).

    ``robust``: saved runs that :func:`outlying_runs` finds to be outliers
    of the others at level 0.001 (at most one in five, none with fewer than
    five) are left out of m and s, and counted in ``left_out``.  At 0.001 a
    normal history loses a run about once in a thousand, so the test's
    false-alarm rate holds (at Rosner's usual 0.05 the rate of a family of
    40 went from 2 % to 11 % on normal data, tests/test_compare.py), while
    a run tens of spreads away is still found.  One saved run that a busy
    spell of the machine made 20 % slower would otherwise multiply s by ten
    and leave the metric ungateable until it ages out of the history; a
    current run beyond it, or on the other side, is a change the test
    reports, and a re-run of the same code (:func:`caxton_meter.confirm`)
    is what tells a passing spell from a change in the code.  But a current
    run nearer to a left-out run than to the others' mean is one more run
    like those unchanged code already gave here: the left-out runs on its
    side are put back (those on the other side stay out) and it is judged
    with the whole spread.  A metric with two
    modes on this machine (a 10 us block whose p90 is 50 % higher in one run
    in five, say) would otherwise have its second mode screened out of the
    history and be reported whenever a run lands in it."""
    func = "run_to_run"
    hist = _sample(func, "history", history)
    if hist.size < 2:
        raise ValueError(f"{func}: needs at least 2 saved runs, got {hist.size}")
    cur = _real(func, "current", current)
    alpha = _open_unit(func, "significance", significance)
    m = _integer(func, "family", family, 1)
    pw = _open_unit(func, "power", power)
    floor = _non_negative(func, "within", within)
    left_out = outlying_runs(hist, significance=_SCREENING) if robust else ()
    if left_out:
        left_out = _still_out(hist, left_out, cur)
    if left_out:
        hist = np.delete(hist, list(left_out))
    k = int(hist.size)
    mean = float(hist.mean())
    sd = max(float(hist.std(ddof=1)), floor)
    scale = sd * math.sqrt(1.0 + 1.0 / k)
    diff = cur - mean
    if scale == 0.0:
        p = 0.0 if diff != 0.0 else 1.0
        half = 0.0
    else:
        p = _student_t_two_sided(diff / scale, k - 1)
        half = student_t_quantile(0.975, k - 1) * scale
    base = abs(mean)
    spread = sd / base if base > 0 else (0.0 if sd == 0 else math.inf)
    reach = (student_t_quantile(1 - alpha / (2 * m), k - 1)
             + student_t_quantile(pw, k - 1)) * scale
    detectable = reach / base if base > 0 else (0.0 if reach == 0 else math.inf)
    change = _relative_change(cur, mean)
    return RunToRun(mean, cur, change, _relative_change(cur - half, mean) if base > 0 else change,
                    _relative_change(cur + half, mean) if base > 0 else change, p, spread,
                    detectable, k, reach, len(left_out))
