"""Tests of the regression detection primitives (caxton_meter._regression).

Reference values are worked out by hand in the comments, come from closed
forms (Cauchy, t with 2 degrees of freedom, special cases of the incomplete
beta function), from brute-force enumeration of the permutation distribution,
or from standard statistical tables."""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter

import numpy as np
import pytest

from caxton_meter import Histogram
from caxton_meter import _regression as reg
from caxton_meter._regression import (
    Change,
    Verdict,
    bootstrap_ci,
    compare_percentiles,
    compare_samples,
    mann_whitney_u,
    normal_quantile,
    percentile_ci,
    welch_t,
)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _brute_force_mw_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact p-value of the Mann–Whitney U test by enumerating
    every way of splitting the pooled (tie-free) values into groups of the
    sizes of a and b."""
    pooled = sorted(a + b)
    m, n = len(a), len(b)
    u_obs = sum(1 for x in a for y in b if x > y)
    us: Counter[int] = Counter()
    for chosen in itertools.combinations(range(m + n), m):
        rank_sum = sum(i + 1 for i in chosen)
        us[rank_sum - m * (m + 1) // 2] += 1
    total = sum(us.values())
    lower = sum(c for u, c in us.items() if u <= u_obs) / total
    upper = sum(c for u, c in us.items() if u >= u_obs) / total
    assert len(set(pooled)) == len(pooled)
    return min(1.0, 2 * min(lower, upper))


# -- Mann–Whitney U -----------------------------------------------------------------------

def test_mann_whitney_complete_separation_small() -> None:
    # 3 v 3, a all below b: U = 0, P(U <= 0) = 1 / C(6, 3) = 1/20, p = 2/20.
    u, p = mann_whitney_u([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert u == 0.0
    assert p == pytest.approx(0.1, abs=1e-12)
    # 5 v 5: P(U <= 0) = 1 / C(10, 5) = 1/252.
    u, p = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert u == 0.0
    assert p == pytest.approx(2 / 252, abs=1e-12)


def test_mann_whitney_two_by_two_by_hand() -> None:
    # Ranks of a = {1, 3}: R = 4, U = 4 - 3 = 1.  The 6 splits of 4 ranks give
    # U = 0, 1, 2, 2, 3, 4, so P(U <= 1) = 2/6 and p = 4/6.
    u, p = mann_whitney_u([1.0, 3.0], [2.0, 4.0])
    assert u == 1.0
    assert p == pytest.approx(4 / 6, abs=1e-12)


def test_mann_whitney_textbook_example() -> None:
    # Ages example: U of the first group = 17 of 20 pairs; the exact
    # two-sided p is 2 * P(U >= 17) = 2 * 7/126 = 1/9.
    males = [19, 22, 16, 29, 24]
    females = [20, 11, 17, 12]
    u, p = mann_whitney_u(males, females)
    assert u == 17.0
    assert p == pytest.approx(1 / 9, abs=1e-12)
    # Normal approximation: mu = 10, var = 5*4*10/12 = 50/3,
    # z = (|17 - 10| - 0.5) / sqrt(50/3).
    p_normal = reg._mw_normal_p(17.0, 5, 4, np.ones(9))
    assert p_normal == pytest.approx(math.erfc((6.5 / math.sqrt(50 / 3)) / math.sqrt(2)), abs=1e-14)
    assert p_normal == pytest.approx(0.11134688653314041, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_mann_whitney_exact_matches_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = (int(k) for k in rng.integers(1, 7, size=2))
    values = rng.permutation(1000)[: m + n].astype(float)     # no ties
    a, b = values[:m].tolist(), values[m:].tolist()
    u, p = mann_whitney_u(a, b)
    assert u == sum(1 for x in a for y in b if x > y)
    assert p == pytest.approx(_brute_force_mw_p(a, b), abs=1e-12)


def test_mann_whitney_exact_at_the_size_bound() -> None:
    # 50 v 50 completely separated: exact p = 2 / C(100, 50) ~ 2e-29, far below
    # what the normal approximation gives (~1e-17).
    a = np.arange(50, dtype=float)
    b = np.arange(50, 100, dtype=float)
    u, p = mann_whitney_u(a, b)
    assert u == 0.0
    assert p == pytest.approx(2 / math.comb(100, 50), rel=1e-9)
    # One more value: the normal approximation takes over.
    u, p = mann_whitney_u(np.arange(51, dtype=float), np.arange(51, 101, dtype=float))
    z = (51 * 50 / 2 - 0.5) / math.sqrt(51 * 50 * 102 / 12)
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)


def test_mann_whitney_ties_by_hand() -> None:
    a = [1, 2, 2, 3, 5]
    b = [2, 3, 4, 4, 6]
    # Pooled ranks: 1 -> 1; the three 2s -> 3; the two 3s -> 5.5; the two 4s
    # -> 7.5; 5 -> 9; 6 -> 10.  R_a = 1 + 3 + 3 + 5.5 + 9 = 21.5, U = 6.5.
    # Tie term: (27 - 3) + (8 - 2) + (8 - 2) = 36;
    # var = 25/12 * (11 - 36/90) = 22.0833.., z = (|6.5 - 12.5| - 0.5) / sqrt(var).
    u, p = mann_whitney_u(a, b)
    assert u == 6.5
    z = 5.5 / math.sqrt(25 / 12 * (11 - 36 / 90))
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-14)
    assert p == pytest.approx(0.2418443040494631, abs=1e-12)


def test_mann_whitney_all_tied() -> None:
    assert mann_whitney_u([3.0, 3.0], [3.0, 3.0, 3.0]) == (3.0, 1.0)
    assert mann_whitney_u([7.0], [7.0]) == (0.5, 1.0)


@pytest.mark.parametrize("sizes", [(4, 9), (10, 10), (30, 17), (60, 45)])
@pytest.mark.parametrize("rounding", [None, 0])
def test_mann_whitney_symmetric(sizes: tuple[int, int], rounding: int | None) -> None:
    rng = np.random.default_rng(sum(sizes))
    a = rng.normal(0.0, 3.0, sizes[0])
    b = rng.normal(1.0, 3.0, sizes[1])
    if rounding is not None:             # many ties
        a, b = a.round(rounding), b.round(rounding)
    u_ab, p_ab = mann_whitney_u(a, b)
    u_ba, p_ba = mann_whitney_u(b, a)
    assert u_ab + u_ba == sizes[0] * sizes[1]
    assert p_ab == pytest.approx(p_ba, abs=1e-12)
    assert 0.0 < p_ab <= 1.0


def test_mann_whitney_exact_and_normal_agree_for_moderate_n() -> None:
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.3, 0.6, 1.0):
        a = rng.normal(0.0, 1.0, 30)
        b = rng.normal(shift, 1.0, 30)
        u, p_exact = mann_whitney_u(a, b)
        p_normal = reg._mw_normal_p(u, 30, 30, np.ones(60))
        assert p_exact == pytest.approx(p_normal, abs=0.01)


def test_mann_whitney_detects_shift() -> None:
    rng = np.random.default_rng(11)
    _, p_same = mann_whitney_u(rng.normal(0, 1, 40), rng.normal(0, 1, 40))
    _, p_shift = mann_whitney_u(rng.normal(0, 1, 40), rng.normal(1.5, 1, 40))
    assert p_same > 0.05
    assert p_shift < 1e-6


@pytest.mark.parametrize("a, b, error, match", [
    ([], [1.0], ValueError, "a is empty"),
    ([1.0], [], ValueError, "b is empty"),
    ([1.0, float("nan")], [1.0], ValueError, r"a\[1\] is not finite"),
    ([1.0], [float("inf")], ValueError, r"b\[0\] is not finite"),
    ([[1.0, 2.0]], [1.0], ValueError, "one-dimensional"),
    ("123", [1.0], TypeError, "a must be a sequence of numbers"),
    ([1.0], ["x"], TypeError, "b must hold real numbers"),
    ([True, False], [1.0], TypeError, "a must hold real numbers"),
    ([1 + 2j], [1.0], TypeError, "a must hold real numbers"),
])
def test_mann_whitney_bad_input(a: object, b: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        mann_whitney_u(a, b)  # type: ignore[arg-type]


# -- Student t, incomplete beta, Welch ------------------------------------------------------

@pytest.mark.parametrize("x", [1e-6, 0.01, 0.2, 0.5, 0.77, 0.999])
def test_regularized_beta_closed_forms(x: float) -> None:
    assert reg._regularized_beta(1.0, 1.0, x) == pytest.approx(x, rel=1e-13)
    assert reg._regularized_beta(3.5, 1.0, x) == pytest.approx(x ** 3.5, rel=1e-12)
    assert reg._regularized_beta(1.0, 4.0, x) == pytest.approx(1 - (1 - x) ** 4, rel=1e-12)
    assert reg._regularized_beta(0.5, 0.5, x) == pytest.approx(
        2 / math.pi * math.asin(math.sqrt(x)), rel=1e-12)
    # Symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
    assert reg._regularized_beta(7.0, 2.5, x) == pytest.approx(
        1 - reg._regularized_beta(2.5, 7.0, 1 - x), abs=1e-13)


def test_regularized_beta_bounds_and_errors() -> None:
    assert reg._regularized_beta(2.0, 3.0, 0.0) == 0.0
    assert reg._regularized_beta(2.0, 3.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="x must be within"):
        reg._regularized_beta(2.0, 3.0, 1.5)
    with pytest.raises(ValueError, match="a and b must be > 0"):
        reg._regularized_beta(0.0, 3.0, 0.5)


@pytest.mark.parametrize("t", [-50.0, -3.0, -0.4, 0.0, 0.1, 1.0, 6.0, 1e4])
def test_student_t_closed_forms(t: float) -> None:
    # df = 1 is the Cauchy distribution; df = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
    assert reg._student_t_cdf(t, 1.0) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)
    assert reg._student_t_cdf(t, 2.0) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)),
                                                       abs=1e-13)


@pytest.mark.parametrize("t, df, one_sided", [
    # Critical values from the t table.
    (1.812, 10, 0.05),
    (2.228, 10, 0.025),
    (2.306, 8, 0.025),
    (3.169, 10, 0.005),
    (1.645, 1e9, 0.05),        # the normal limit
    (12.706, 1, 0.025),
])
def test_student_t_table_quantiles(t: float, df: float, one_sided: float) -> None:
    assert 1 - reg._student_t_cdf(t, df) == pytest.approx(one_sided, abs=1e-4)
    assert reg._student_t_cdf(-t, df) == pytest.approx(one_sided, abs=1e-4)
    assert reg._student_t_two_sided(t, df) == pytest.approx(2 * one_sided, abs=2e-4)


@pytest.mark.parametrize("t", [-2.5, -1.0, 0.5, 3.0])
def test_student_t_large_df_approaches_normal(t: float) -> None:
    # F_df(t) = Phi(t) - phi(t) (t + t^3) / (4 df) + O(1 / df^2).
    density = math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    for df in (1e2, 1e3, 1e5, 1e6):
        expansion = _phi(t) - density * (t + t ** 3) / (4 * df)
        assert reg._student_t_cdf(t, df) == pytest.approx(expansion, abs=1 / df ** 2)


def test_welch_equal_sizes_by_hand() -> None:
    # Means 3 and 5, variances 2.5 and 2.5: se = sqrt(0.5 + 0.5) = 1, t = -2,
    # df = 1^2 / (0.25/4 + 0.25/4) = 8; p = 2 * P(T_8 > 2) = 0.0805162.
    t, p = welch_t([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert t == pytest.approx(-2.0, abs=1e-14)
    assert p == pytest.approx(0.08051623795726, abs=1e-10)


def test_welch_unequal_by_hand() -> None:
    # a: mean 2.5, var 5/3; b: mean 7, var 70/5 = 14.
    # se^2 = (5/3)/4 + 14/6 = 2.75, t = -4.5 / sqrt(2.75) = -2.7136,
    # df = 2.75^2 / ((5/12)^2 / 3 + (7/3)^2 / 5) = 6.5947.
    a = [1, 2, 3, 4]
    b = [2, 4, 6, 8, 10, 12]
    t, p = welch_t(a, b)
    assert t == pytest.approx(-4.5 / math.sqrt(2.75), rel=1e-14)
    df = 2.75 ** 2 / ((5 / 12) ** 2 / 3 + (7 / 3) ** 2 / 5)
    assert df == pytest.approx(6.5947, abs=1e-4)
    assert p == pytest.approx(reg._student_t_two_sided(t, df), rel=1e-14)
    assert p == pytest.approx(0.0318244437808, abs=1e-10)
    # Swapping the samples negates t and keeps p.
    t2, p2 = welch_t(b, a)
    assert t2 == -t
    assert p2 == p


def test_welch_zero_variance() -> None:
    assert welch_t([4.0, 4.0, 4.0], [4.0, 4.0]) == (0.0, 1.0)
    assert welch_t([4.0, 4.0], [5.0, 5.0]) == (-math.inf, 0.0)
    assert welch_t([6.0, 6.0], [5.0, 5.0]) == (math.inf, 0.0)
    # One side constant: df is n - 1 of the other side.
    t, p = welch_t([3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert t == pytest.approx(0.0)
    t, p = welch_t([6.0, 6.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert t == pytest.approx(3 / math.sqrt(2.5 / 5))
    assert p == pytest.approx(reg._student_t_two_sided(t, 4.0), rel=1e-14)


def test_welch_needs_two_values() -> None:
    with pytest.raises(ValueError, match="a needs at least 2 values, got 1"):
        welch_t([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="b needs at least 2 values, got 1"):
        welch_t([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"welch_t: b\[2\] is not finite"):
        welch_t([1.0, 2.0], [1.0, 2.0, math.nan])


# -- normal quantile ------------------------------------------------------------------------

def test_normal_quantile_known_values() -> None:
    assert normal_quantile(0.975) == pytest.approx(1.959963984540054, abs=1e-13)
    assert normal_quantile(0.5) == 0.0
    assert normal_quantile(0.8413447460685429) == pytest.approx(1.0, abs=1e-12)
    assert normal_quantile(0.001) == pytest.approx(-3.090232306167813, abs=1e-12)


@pytest.mark.parametrize("p", [1e-300, 1e-50, 1e-12, 1e-4, 0.01, 0.02425, 0.03, 0.2, 0.4999, 0.5001,
                               0.7, 0.96, 0.99, 1 - 1e-9])
def test_normal_quantile_inverts_the_cdf(p: float) -> None:
    x = normal_quantile(p)
    if p < 0.5:
        assert _phi(x) == pytest.approx(p, rel=1e-12)
    else:       # compare the upper tail, which carries the precision
        assert 0.5 * math.erfc(x / math.sqrt(2)) == pytest.approx(1 - p, rel=1e-9)


@pytest.mark.parametrize("p", [0.001, 0.025, 0.1, 0.3, 0.49])
def test_normal_quantile_symmetric(p: float) -> None:
    assert normal_quantile(1 - p) == pytest.approx(-normal_quantile(p), abs=1e-14)
    q = 1 - p                   # 1 - q is exact for q in [0.5, 1)
    assert normal_quantile(q) == -normal_quantile(1 - q)


@pytest.mark.parametrize("p, error", [
    (0.0, ValueError), (1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
    (math.nan, ValueError), (math.inf, ValueError),
    ("0.5", TypeError), (None, TypeError), (True, TypeError),
])
def test_normal_quantile_bad_input(p: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="normal_quantile: p must"):
        normal_quantile(p)  # type: ignore[arg-type]


# -- bootstrap ------------------------------------------------------------------------------

def test_bootstrap_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    base, cur = rng.normal(100, 5, 12), rng.normal(104, 5, 12)
    first = bootstrap_ci(base, cur, seed=42, resamples=2000)
    assert bootstrap_ci(base.tolist(), cur.tolist(), seed=42, resamples=2000) == first
    assert bootstrap_ci(base, cur, seed=43, resamples=2000) != first
    low, high = first
    assert low < high


def test_bootstrap_contains_known_shift() -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(100.0, 2.0, 200)
    cur = rng.normal(110.0, 2.0, 200)
    low, high = bootstrap_ci(base, cur, resamples=4000)
    assert low < 0.10 < high
    assert low > 0.08 and high < 0.12
    low, high = bootstrap_ci(base, cur, resamples=4000, statistic="median")
    assert low < 0.10 < high


def test_bootstrap_narrower_with_more_data() -> None:
    rng = np.random.default_rng(21)
    widths = []
    for n in (10, 100, 1000):
        low, high = bootstrap_ci(rng.normal(50, 5, n), rng.normal(50, 5, n), resamples=2000)
        widths.append(high - low)
    assert widths[0] > 2 * widths[1] > 4 * widths[2]


def test_bootstrap_coverage() -> None:
    # The 95 % interval of the change of the mean holds the true change of
    # +5 % in most of 100 independent draws (percentile intervals undercover
    # a little at n = 30).
    rng = np.random.default_rng(99)
    hits = 0
    for seed in range(100):
        base = rng.normal(100.0, 4.0, 30)
        cur = rng.normal(105.0, 4.0, 30)
        low, high = bootstrap_ci(base, cur, resamples=1000, seed=seed)
        hits += low <= 0.05 <= high
    assert hits >= 88


def test_bootstrap_degenerate_samples() -> None:
    assert bootstrap_ci([5.0, 5.0, 5.0], [5.0, 5.0]) == (0.0, 0.0)
    assert bootstrap_ci([4.0], [5.0], resamples=10) == (0.25, 0.25)
    # Baseline statistic 0: the relative change is +inf (current above).
    assert bootstrap_ci([0.0, 0.0], [1.0, 2.0], resamples=50) == (math.inf, math.inf)
    assert bootstrap_ci([0.0, 0.0], [0.0, 0.0], resamples=50) == (0.0, 0.0)


def test_bootstrap_chunked_resampling(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    base, cur = rng.normal(10, 1, 40), rng.normal(11, 1, 40)
    whole = bootstrap_ci(base, cur, resamples=5000)
    monkeypatch.setattr(reg, "_BOOTSTRAP_CHUNK", 400)        # 10 resamples a chunk
    chunked = bootstrap_ci(base, cur, resamples=5000)
    assert chunked == bootstrap_ci(base, cur, resamples=5000)
    assert chunked == pytest.approx(whole, abs=0.01)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"confidence": 0.0}, ValueError, "confidence must be within"),
    ({"confidence": 1.0}, ValueError, "confidence must be within"),
    ({"confidence": "0.9"}, TypeError, "confidence must be a real number"),
    ({"resamples": 0}, ValueError, "resamples must be at least 1, got 0"),
    ({"resamples": 10.5}, TypeError, "resamples must be an int"),
    ({"seed": -1}, ValueError, "seed must be at least 0, got -1"),
    ({"statistic": "mode"}, ValueError, "statistic must be one of 'mean', 'median', got 'mode'"),
    ({"baseline": []}, ValueError, "baseline is empty"),
    ({"current": [1.0, math.inf]}, ValueError, r"current\[1\] is not finite"),
])
def test_bootstrap_bad_input(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    args: dict[str, object] = {"baseline": [1.0, 2.0], "current": [2.0, 3.0]}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        bootstrap_ci(args.pop("baseline"), args.pop("current"), **args)  # type: ignore[arg-type]


# -- compare_samples ------------------------------------------------------------------------

def _trials(rng: np.random.Generator, mean: float, n: int = 10, cv: float = 0.02) -> np.ndarray:
    return rng.normal(mean, cv * mean, n)


@pytest.mark.parametrize("test", ["mann-whitney", "welch"])
@pytest.mark.parametrize("seed", range(3))
def test_compare_detects_ten_percent_slowdown(test: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Latency: 10 % higher is worse.
    result = compare_samples(_trials(rng, 100.0), _trials(rng, 110.0), higher_is_better=False,
                             test=test, resamples=2000)
    assert result.verdict is Verdict.REGRESSED and result.is_regression
    assert result.method == test
    assert result.p_value is not None and result.p_value < 0.001
    assert result.ci_low <= result.change <= result.ci_high
    assert 0.05 < result.ci_low and result.ci_high < 0.15
    assert result.change == pytest.approx(result.current / result.baseline - 1)
    assert (result.baseline_n, result.current_n) == (10, 10)
    # Throughput: 10 % lower is worse.
    result = compare_samples(_trials(rng, 1000.0), _trials(rng, 900.0), higher_is_better=True,
                             test=test, resamples=2000)
    assert result.verdict is Verdict.REGRESSED
    assert result.higher_is_better is True
    assert -0.15 < result.ci_low and result.ci_high < -0.05
    # The same moves the other way are improvements.
    assert compare_samples(_trials(rng, 110.0), _trials(rng, 100.0), higher_is_better=False,
                           test=test, resamples=2000).verdict is Verdict.IMPROVED
    assert compare_samples(_trials(rng, 900.0), _trials(rng, 1000.0), higher_is_better=True,
                           test=test, resamples=2000).verdict is Verdict.IMPROVED


def test_compare_equal_distributions_rarely_flagged() -> None:
    rng = np.random.default_rng(2024)
    verdicts: Counter[Verdict] = Counter()
    raw_flags = 0
    for seed in range(100):
        base, cur = _trials(rng, 100.0), _trials(rng, 100.0)
        verdicts[compare_samples(base, cur, higher_is_better=False, resamples=1000,
                                 seed=seed).verdict] += 1
        # Without a noise band, a flag is a significant test whose interval
        # excludes 0: the test's false positive rate, about 5 %.
        raw = compare_samples(base, cur, higher_is_better=False, noise_threshold=0.0,
                              resamples=1000, seed=seed)
        raw_flags += raw.verdict in (Verdict.REGRESSED, Verdict.IMPROVED)
    flagged = verdicts[Verdict.REGRESSED] + verdicts[Verdict.IMPROVED]
    assert flagged <= 5
    assert verdicts[Verdict.NO_CHANGE] >= 90
    assert raw_flags <= 10


def test_compare_small_significant_change_is_within_noise() -> None:
    rng = np.random.default_rng(6)
    result = compare_samples(_trials(rng, 100.0, cv=0.005), _trials(rng, 103.0, cv=0.005),
                             higher_is_better=False, noise_threshold=0.05, resamples=2000)
    assert result.p_value is not None and result.p_value < 0.05
    assert result.verdict is Verdict.WITHIN_NOISE
    assert not result.is_regression
    assert result.exceeds_threshold is False
    assert 0.0 < result.ci_low < 0.05
    # With a noise band narrower than the change, the same data is a regression.
    result = compare_samples(_trials(rng, 100.0, cv=0.005), _trials(rng, 103.0, cv=0.005),
                             higher_is_better=False, noise_threshold=0.01, resamples=2000)
    assert result.verdict is Verdict.REGRESSED


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_compare_interval_straddling_the_band_edge(higher_is_better: bool) -> None:
    # A significant change of exactly 5 % (or -5 %) whose interval straddles
    # the edge of the +/-5 % noise band is within noise, not a change.
    spread = np.linspace(-1.0, 1.0, 10)
    shift = -5.0 if higher_is_better else 5.0
    result = compare_samples(100.0 + spread, 100.0 + shift + spread,
                             higher_is_better=higher_is_better, resamples=2000)
    assert result.p_value is not None and result.p_value < 1e-4
    assert result.change == pytest.approx(shift / 100)
    assert result.ci_low < shift / 100 < result.ci_high      # the band's edge
    assert result.verdict is Verdict.WITHIN_NOISE


def test_compare_exceeds_threshold() -> None:
    rng = np.random.default_rng(7)
    big = compare_samples(_trials(rng, 100.0), _trials(rng, 125.0), higher_is_better=False,
                          resamples=1000)
    assert big.verdict is Verdict.REGRESSED and big.exceeds_threshold
    # Beyond the threshold on the good side does not count.
    good = compare_samples(_trials(rng, 125.0), _trials(rng, 100.0), higher_is_better=False,
                           resamples=1000)
    assert good.verdict is Verdict.IMPROVED and not good.exceeds_threshold
    # A regression smaller than the fixed threshold is still a regression.
    small = compare_samples(_trials(rng, 100.0, cv=0.005), _trials(rng, 107.0, cv=0.005),
                            higher_is_better=False, resamples=1000)
    assert small.verdict is Verdict.REGRESSED and not small.exceeds_threshold


@pytest.mark.parametrize("current, higher_is_better, verdict", [
    ([115.0], False, Verdict.REGRESSED),
    ([105.0], False, Verdict.NO_CHANGE),
    ([110.0], False, Verdict.NO_CHANGE),       # "beyond" is strict
    ([85.0], False, Verdict.IMPROVED),
    ([85.0], True, Verdict.REGRESSED),
    ([115.0], True, Verdict.IMPROVED),
    ([95.0], True, Verdict.NO_CHANGE),
    ([90.0], True, Verdict.NO_CHANGE),        # exactly -10 %: not beyond
])
def test_compare_single_trial_uses_fixed_threshold(current: list[float], higher_is_better: bool,
                                                   verdict: Verdict) -> None:
    result = compare_samples([100.0], current, higher_is_better=higher_is_better)
    assert result.verdict is verdict
    assert result.method == "fixed-threshold"
    assert result.p_value is None
    assert result.ci_low == result.ci_high == result.change == pytest.approx(current[0] / 100 - 1)
    assert result.exceeds_threshold is (verdict is Verdict.REGRESSED)


def test_compare_single_trial_on_one_side() -> None:
    # The other side's mean is the estimate; no test with one value.
    result = compare_samples([100.0, 102.0, 98.0], [120.0], higher_is_better=False)
    assert result.method == "fixed-threshold"
    assert result.verdict is Verdict.REGRESSED
    assert result.baseline == 100.0 and (result.baseline_n, result.current_n) == (3, 1)
    result = compare_samples([100.0], [100.0, 101.0], higher_is_better=False, threshold=0.0)
    assert result.verdict is Verdict.REGRESSED


@pytest.mark.parametrize("test", ["mann-whitney", "welch"])
def test_compare_identical_samples(test: str) -> None:
    result = compare_samples([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], higher_is_better=False, test=test)
    assert result.verdict is Verdict.NO_CHANGE
    assert result.p_value == 1.0
    assert (result.change, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    result = compare_samples([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], higher_is_better=True, test=test)
    assert result.verdict is Verdict.NO_CHANGE
    assert result.p_value == 1.0


def test_compare_zero_baseline() -> None:
    # Error count per run: 0 before, several now.  The relative change is
    # undefined; the change is +inf and the test alone decides.
    result = compare_samples([0.0] * 5, [3.0, 4.0, 5.0, 6.0, 7.0], higher_is_better=False)
    assert result.change == math.inf
    # Ties within the baseline: the normal approximation with the tie
    # correction, U = 0, mu = 12.5, var = 25/12 * (11 - 120/90).
    z = 12.0 / math.sqrt(25 / 12 * (11 - 120 / 90))
    assert result.p_value is not None and result.p_value < 0.05
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert result.verdict is Verdict.REGRESSED and result.exceeds_threshold
    result = compare_samples([0.0] * 5, [3.0, 4.0, 5.0, 6.0, 7.0], higher_is_better=True)
    assert result.verdict is Verdict.IMPROVED and not result.exceeds_threshold
    result = compare_samples([0.0], [0.0], higher_is_better=False)
    assert result.change == 0.0 and result.verdict is Verdict.NO_CHANGE


def test_compare_zero_mean_baseline_ignores_the_noise_band() -> None:
    # A signed quantity whose baseline mean is exactly 0: the resampled
    # relative changes run from negative to +inf, so the interval straddles
    # the noise band; the significant test alone decides, by direction.
    baseline = [-1.0] * 9 + [9.0]
    current = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    result = compare_samples(baseline, current, higher_is_better=False)
    assert result.baseline == 0.0 and result.change == math.inf
    assert result.p_value is not None and result.p_value < 0.01
    assert result.ci_low < 0.0 and result.ci_high == math.inf
    assert result.verdict is Verdict.REGRESSED
    assert compare_samples(baseline, current, higher_is_better=True).verdict is Verdict.IMPROVED


def test_compare_negative_baseline_keeps_direction() -> None:
    # (current - baseline) / |baseline|: -10 -> -8 is +20 %, a rise.
    result = compare_samples([-10.0], [-8.0], higher_is_better=True)
    assert result.change == pytest.approx(0.2)
    assert result.verdict is Verdict.IMPROVED


def test_change_is_immutable() -> None:
    result = compare_samples([1.0], [1.0], higher_is_better=False)
    assert isinstance(result, Change)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verdict = Verdict.REGRESSED  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"baseline": []}, ValueError, "baseline is empty"),
    ({"current": []}, ValueError, "current is empty"),
    ({"baseline": [1.0, math.nan]}, ValueError, r"baseline\[1\] is not finite"),
    ({"current": [math.inf, 1.0]}, ValueError, r"current\[0\] is not finite"),
    ({"baseline": "12"}, TypeError, "baseline must be a sequence of numbers"),
    ({"higher_is_better": "yes"}, TypeError, "higher_is_better must be a bool"),
    ({"higher_is_better": None}, TypeError, "higher_is_better must be a bool"),
    ({"threshold": -0.1}, ValueError, "threshold must be a finite number >= 0, got -0.1"),
    ({"threshold": math.nan}, ValueError, "threshold must be a finite number >= 0, got nan"),
    ({"threshold": math.inf}, ValueError, "threshold must be a finite number >= 0, got inf"),
    ({"threshold": "0.1"}, TypeError, "threshold must be a real number"),
    ({"noise_threshold": -1}, ValueError, "noise_threshold must be a finite number >= 0"),
    ({"noise_threshold": math.inf}, ValueError, "noise_threshold must be a finite number >= 0"),
    ({"significance": 0.0}, ValueError, r"significance must be within \(0, 1\), got 0.0"),
    ({"significance": 1.0}, ValueError, r"significance must be within \(0, 1\), got 1.0"),
    ({"significance": math.nan}, ValueError, "significance must be within"),
    ({"confidence": 1.2}, ValueError, r"confidence must be within \(0, 1\), got 1.2"),
    ({"confidence": 0}, ValueError, "confidence must be within"),
    ({"test": "t-test"}, ValueError, "test must be one of 'mann-whitney', 'welch', got 't-test'"),
    ({"test": None}, TypeError, "test must be a str"),
    ({"resamples": 0}, ValueError, "resamples must be at least 1"),
    ({"seed": -3}, ValueError, "seed must be at least 0"),
])
def test_compare_bad_input(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    args: dict[str, object] = {"baseline": [1.0, 2.0, 3.0], "current": [2.0, 3.0, 4.0],
                               "higher_is_better": False}
    args.update(kwargs)
    with pytest.raises(error, match="compare_samples: " + match):
        compare_samples(args.pop("baseline"), args.pop("current"), **args)  # type: ignore[arg-type]


# -- histograms -----------------------------------------------------------------------------

_MEDIAN_NS = 1_000_000.0          # 1 ms
_SIGMA = 0.5


def _latency_histogram(seed: int, n: int, scale: float = 1.0) -> Histogram:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(math.log(_MEDIAN_NS * scale), _SIGMA, n)
    h = Histogram(1, 3_600_000_000_000, 3)
    h.record_array(np.rint(values).astype(np.int64))
    return h


def test_percentile_ci_ranks() -> None:
    h = Histogram(1, 3_600_000_000_000, 3)
    h.record_array(np.arange(1, 10_001, dtype=np.int64))
    # N q = 5000, z sqrt(N q (1 - q)) = 1.96 * 50 = 98.0: ranks 4902 and 5098,
    # read back with 3 significant digits (buckets of 4 between 4096 and 8191).
    low, high = percentile_ci(h, 50.0)
    assert 4902 <= low <= 4902 + 4
    assert 5098 <= high <= 5098 + 4
    assert low <= h.value_at_percentile(50.0) <= high
    # Wider at a higher confidence; clipped at the extremes.
    low99, high99 = percentile_ci(h, 50.0, confidence=0.99)
    assert low99 < low and high99 > high
    assert percentile_ci(h, 100.0) == (h.value_at_percentile(100.0),) * 2
    assert percentile_ci(h, 0.0)[0] == h.value_at_percentile(0.0)


def test_percentile_ci_covers_the_true_percentile() -> None:
    true_p99 = _MEDIAN_NS * math.exp(_SIGMA * normal_quantile(0.99))
    hits = 0
    for seed in range(20):
        low, high = percentile_ci(_latency_histogram(seed, 20_000), 99.0)
        assert low < high
        hits += low <= true_p99 <= high
    assert hits >= 17


def test_percentile_ci_bad_input() -> None:
    h = Histogram(1, 3_600_000_000_000, 3)
    with pytest.raises(ValueError, match="percentile_ci: hist is empty"):
        percentile_ci(h, 99.0)
    h.record(10)
    with pytest.raises(ValueError, match="percentile must be within"):
        percentile_ci(h, 100.5)
    with pytest.raises(ValueError, match="confidence must be within"):
        percentile_ci(h, 99.0, confidence=1.0)
    with pytest.raises(TypeError, match="percentile must be a real number"):
        percentile_ci(h, "99")  # type: ignore[arg-type]


@pytest.mark.parametrize("percentile", [50.0, 99.0])
def test_compare_percentiles_detects_twenty_percent_shift(percentile: float) -> None:
    base = _latency_histogram(1, 200_000)
    cur = _latency_histogram(2, 200_000, scale=1.2)
    result = compare_percentiles(base, cur, percentile)
    assert result.verdict is Verdict.REGRESSED and result.is_regression
    assert result.method == "histogram" and result.p_value is None
    assert result.higher_is_better is False
    assert result.change == pytest.approx(0.2, abs=0.03)
    assert result.ci_low <= result.change <= result.ci_high
    assert result.exceeds_threshold
    assert (result.baseline_n, result.current_n) == (200_000, 200_000)
    assert result.baseline == base.value_at_percentile(percentile)
    # The other way round it is an improvement.
    assert compare_percentiles(cur, base, percentile).verdict is Verdict.IMPROVED


def test_compare_percentiles_same_distribution_not_regressed() -> None:
    h = _latency_histogram(9, 50_000)
    same = compare_percentiles(h, h.copy(), 99.0)
    assert same.verdict is Verdict.NO_CHANGE
    assert same.change == 0.0 and same.ci_low < 0.0 < same.ci_high
    verdicts: Counter[Verdict] = Counter()
    for seed in range(10):
        base = _latency_histogram(100 + seed, 100_000)
        cur = _latency_histogram(200 + seed, 100_000)
        result = compare_percentiles(base, cur, 99.0)
        verdicts[result.verdict] += 1
        assert result.verdict in (Verdict.NO_CHANGE, Verdict.WITHIN_NOISE)
        assert not result.exceeds_threshold
        assert result.ci_low < 0.05 and result.ci_high > -0.05
    # Two 95 % intervals of one percentile overlap far more often than not.
    assert verdicts[Verdict.NO_CHANGE] >= 8


def test_compare_percentiles_small_shift_within_noise() -> None:
    base = _latency_histogram(3, 1_000_000)
    cur = _latency_histogram(4, 1_000_000, scale=1.02)
    result = compare_percentiles(base, cur, 50.0)
    assert result.verdict is Verdict.WITHIN_NOISE
    assert 0.0 < result.ci_low < result.ci_high < 0.05
    assert compare_percentiles(base, cur, 50.0, noise_threshold=0.005).verdict is Verdict.REGRESSED


def test_compare_percentiles_bad_input() -> None:
    full = _latency_histogram(0, 100)
    empty = Histogram(1, 3_600_000_000_000, 3)
    with pytest.raises(ValueError, match="compare_percentiles: baseline_hist is empty"):
        compare_percentiles(empty, full, 99.0)
    with pytest.raises(ValueError, match="compare_percentiles: current_hist is empty"):
        compare_percentiles(full, empty, 99.0)
    with pytest.raises(ValueError, match="compare_percentiles: threshold must be"):
        compare_percentiles(full, full, 99.0, threshold=-1.0)
    with pytest.raises(ValueError, match="compare_percentiles: noise_threshold must be"):
        compare_percentiles(full, full, 99.0, noise_threshold=math.nan)
    with pytest.raises(ValueError, match="compare_percentiles: confidence must be"):
        compare_percentiles(full, full, 99.0, confidence=0.0)
    with pytest.raises(ValueError, match="compare_percentiles: percentile must be"):
        compare_percentiles(full, full, -1.0)


def test_public_names() -> None:
    assert set(reg.__all__) == {
        "Change", "HistogramLike", "Samples", "Verdict", "bootstrap_ci", "compare_percentiles",
        "compare_samples", "mann_whitney_u", "normal_quantile", "percentile_ci", "welch_t",
        "holm", "outlying_runs", "relative_change", "run_to_run", "RunToRun",
        "student_t_quantile"}
    assert [v.value for v in Verdict] == ["regressed", "improved", "no change", "within noise",
                                          "not gateable", "transient"]


# -- run-to-run variation and the family ---------------------------------------------------

from caxton_meter._regression import (  # noqa: E402
    holm,
    outlying_runs,
    run_to_run,
    student_t_quantile,
)


@pytest.mark.parametrize("p, df, table", [
    (0.975, 1, 12.7062), (0.975, 4, 2.7764), (0.975, 9, 2.2622), (0.95, 20, 1.7247),
    (0.995, 9, 3.2498), (0.8, 9, 0.8834), (0.025, 9, -2.2622), (0.975, 1e9, 1.95996)])
def test_student_t_quantiles_match_the_tables(p, df, table):
    assert student_t_quantile(p, df) == pytest.approx(table, abs=1e-4)


def test_holm_matches_its_definition_by_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(200):
        m = int(rng.integers(1, 12))
        ps = list(rng.uniform(0, 0.2, m))
        adjusted = holm(ps)
        order = sorted(range(m), key=lambda i: ps[i])
        for rank, i in enumerate(order):
            expected = min(1.0, max((m - r) * ps[order[r]] for r in range(rank + 1)))
            assert adjusted[i] == pytest.approx(expected)
    assert holm([]) == []
    with pytest.raises(ValueError, match="NaN"):
        holm([0.1, float("nan")])


def test_run_to_run_is_the_prediction_interval_of_the_saved_runs():
    history = [100.0, 102.0, 98.0, 101.0, 99.0]         # mean 100, sd 1.58
    r = run_to_run(history, 105.0)
    scale = np.std(history, ddof=1) * np.sqrt(1 + 1 / 5)
    t = 5.0 / scale
    assert r.p_value == pytest.approx(2 * (1 - _t_cdf(t, 4)), rel=1e-6)
    assert r.change == pytest.approx(0.05) and r.history_n == 5
    assert r.spread == pytest.approx(np.std(history, ddof=1) / 100)
    half = student_t_quantile(0.975, 4) * scale
    assert (r.ci_low, r.ci_high) == pytest.approx(((105 - half) / 100 - 1, (105 + half) / 100 - 1))
    # the detectable change grows with the family (Bonferroni, the first Holm step)
    one = run_to_run(history, 100.0, family=1).detectable
    forty = run_to_run(history, 100.0, family=40).detectable
    expected = (student_t_quantile(1 - 0.05 / 80, 4) + student_t_quantile(0.8, 4)) * scale / 100
    assert forty == pytest.approx(expected) and forty > one
    # a metric that never varied: any difference is significant, equality is not
    assert run_to_run([5.0, 5.0, 5.0], 5.5).p_value == 0.0
    assert run_to_run([5.0, 5.0, 5.0], 5.0).p_value == 1.0
    with pytest.raises(ValueError, match="needs at least 2 saved runs"):
        run_to_run([1.0], 1.0)


def _t_cdf(t, df):
    from caxton_meter._regression import _student_t_cdf
    return _student_t_cdf(t, df)


def test_outlying_runs_follows_rosners_worked_example():
    # Rosner (1983), as worked in NIST's e-Handbook (section 1.3.5.17.3): 54
    # values, up to 10 outliers tested at 0.05, three found -- the three
    # largest (6.01, 5.42, 5.34), with R_3 = 3.179 > lambda_3 = 3.158
    x = [-0.25, 0.68, 0.94, 1.15, 1.20, 1.26, 1.26, 1.34, 1.38, 1.43, 1.49, 1.49, 1.55,
         1.56, 1.58, 1.65, 1.69, 1.70, 1.76, 1.77, 1.81, 1.91, 1.94, 1.96, 1.99, 2.06,
         2.09, 2.10, 2.14, 2.15, 2.23, 2.24, 2.26, 2.35, 2.37, 2.40, 2.47, 2.54, 2.62,
         2.64, 2.90, 2.92, 2.92, 2.93, 3.21, 3.26, 3.30, 3.59, 3.68, 4.30, 4.64, 5.34,
         5.42, 6.01]
    found = outlying_runs(x, most=10)
    assert sorted(x[i] for i in found) == [5.34, 5.42, 6.01]


def test_outlying_runs_keeps_four_and_finds_nothing_in_a_normal_sample_mostly():
    assert outlying_runs([1.0, 1.0, 1.0, 9.0]) == ()                 # fewer than five: none
    assert outlying_runs([5.0] * 9 + [6.0]) == (9,)                   # one run off the rest
    assert outlying_runs([5.0] * 10) == ()
    assert outlying_runs([100, 101, 99, 100, 80, 100, 102, 98, 101, 99]) == (4,)
    # two slow spells in ten runs: both (at most one in five)
    assert outlying_runs([100, 70, 101, 99, 100, 75, 100, 102, 98, 101]) == (1, 5)
    # on normal samples of ten the test finds outliers about as often as its
    # level says (it tests for up to two: 5 % per step, at most ~10 %)
    rng = np.random.default_rng(5)
    hit = sum(bool(outlying_runs(rng.normal(0, 1, 10))) for _ in range(2000))
    assert 0.02 <= hit / 2000 <= 0.10
    with pytest.raises(ValueError, match="outlying_runs: most must be"):
        outlying_runs([1.0, 2.0], most=-1)


def test_one_outlying_saved_run_does_not_hide_a_change():
    # nine saved runs within 0.5 % and one a busy spell made 20 % slower: with
    # it, s is ~6 % and a 10 % drop is invisible; left out, the drop is found
    history = [1000.0, 1004.0, 997.0, 1002.0, 800.0, 999.0, 1003.0, 996.0, 1001.0, 998.0]
    naive = run_to_run(history, 900.0, family=40, robust=False)
    robust = run_to_run(history, 900.0, family=40)
    assert naive.detectable > 0.3 and naive.p_value > 0.05 and naive.left_out == 0
    assert robust.left_out == 1 and robust.history_n == 9
    assert robust.baseline == pytest.approx(1000.0) and robust.detectable < 0.05
    assert robust.p_value < 1e-6
    # and the same run as the others is still one of them
    assert run_to_run(history, 1001.0, family=40).p_value > 0.5


def test_a_run_nearer_a_left_out_one_than_the_others_is_judged_with_it():
    # the spell at 800 stays out of the test of a run nearer the other nine,
    # beyond it or on the other side; a run nearer the spell is one more
    # like it: the spell is put back and the run is not significant
    history = [1000.0, 1004.0, 997.0, 1002.0, 800.0, 999.0, 1003.0, 996.0, 1001.0, 998.0]
    for current in (920.0, 1100.0):
        r = run_to_run(history, current, family=40)
        assert r.left_out == 1 and r.p_value < 1e-6
    for current in (880.0, 800.0, 760.0):              # not significant in a family of 40
        r = run_to_run(history, current, family=40)
        assert r.left_out == 0 and r.history_n == 10 and r.p_value > 0.05 / 40
    # far beyond the spell, nearer it than the nine: put back, and still a change
    r = run_to_run(history, 300.0, family=40)
    assert r.left_out == 0 and r.p_value < 0.001


def test_a_second_mode_of_the_history_is_not_screened_out_of_a_run_in_it():
    # a 10 us block whose p90 is 50 % higher in two runs of ten: Rosner's
    # test leaves both out, and a run in that mode would read +50 % against
    # eight runs within 2 %; they are put back for it
    history = [10.0, 10.1, 9.9, 10.0, 15.2, 10.05, 9.95, 14.8, 10.0, 10.1]
    assert outlying_runs(history, significance=0.001) == (4, 7)
    high = run_to_run(history, 15.0, family=40)
    assert high.left_out == 0 and high.p_value > 0.05
    low = run_to_run(history, 10.02, family=40)                  # the usual mode
    assert low.left_out == 2 and low.p_value > 0.5
    assert run_to_run(history, 7.0, family=40).p_value < 1e-4   # a change the other way
    assert run_to_run(history, 7.0, family=40).left_out == 2
