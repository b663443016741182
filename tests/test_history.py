"""A baseline's history: change points found where a series moved and not
where it only varied, and ``caxton-meter history`` end to end on a baseline
folder built from synthetic runs.  Every series comes from a seeded
generator and the permutation test has a fixed seed, so each assertion
holds or fails the same way on every run."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from caxton_meter._checks import ArgumentError, ArgumentTypeError
from caxton_meter._history import DEFAULT_PERMUTATIONS, change_points, min_runs

SIGNIFICANCE = 0.05


def noisy(seed, n=20, level=100.0, spread=0.02):
    """n runs of a steady metric: ``level`` with a relative spread of 2 %."""
    return level * (1 + np.random.default_rng(seed).normal(0.0, spread, n))


# -- change_points -----------------------------------------------------------------------

@pytest.mark.parametrize("factor", [1.2, 0.8], ids=["up", "down"])
def test_a_single_step_is_found_at_the_first_run_after_it(factor):
    series = noisy(1)
    series[12:] *= factor
    [cp] = change_points(list(series))
    assert cp.index == 12
    assert cp.before == pytest.approx(series[:12].mean())
    assert cp.after == pytest.approx(series[12:].mean())
    assert cp.change == pytest.approx(cp.after / cp.before - 1)
    assert math.copysign(1, cp.change) == math.copysign(1, factor - 1)
    assert cp.p_value <= SIGNIFICANCE


def test_the_same_series_and_seed_give_the_same_change_points():
    series = noisy(2)
    series[9:] *= 1.05
    assert change_points(series, seed=7) == change_points(series, seed=7)


def _false_alarm_bound(trials, rate, tail=0.001):
    """The smallest k with P(Binomial(trials, rate) > k) < tail."""
    above = 1.0
    for k in range(trials + 1):
        above -= math.comb(trials, k) * rate ** k * (1 - rate) ** (trials - k)
        if above < tail:
            return k
    return trials


def test_steady_noise_is_marked_no_more_often_than_the_significance_level():
    # The permutation p-value is valid and the bisection stops at the first
    # split that is not significant, so a history with no change is marked
    # with probability <= SIGNIFICANCE: about 10 of 200.  The bound asserted
    # is the count that a Binomial(200, 0.05) exceeds with probability
    # 0.001 (21), fixed before looking at these seeds; the seeds are fixed,
    # so the count (and the verdict) is the same on every run.
    marked = sum(bool(change_points(noisy(1000 + i), seed=i)) for i in range(200))
    assert marked <= _false_alarm_bound(200, SIGNIFICANCE) == 21


def test_a_constant_series_has_no_change_point():
    assert change_points([5.0] * 20) == []


def test_two_steps_are_both_found_a_regression_and_its_fix_too():
    staircase = noisy(3, 30)
    staircase[10:] *= 1.15
    staircase[20:] *= 1.15
    assert [cp.index for cp in change_points(staircase)] == [10, 20]
    # back to where it was: the runs before and after look alike, which a
    # split over the whole history alone would miss
    pulse = noisy(4, 30)
    pulse[10:20] *= 1.15
    found = change_points(pulse)
    assert [cp.index for cp in found] == [10, 20]
    assert found[0].change > 0 > found[1].change
    assert found[1].before == pytest.approx(pulse[10:20].mean())     # the neighbouring segment


def test_a_slow_drift_that_no_adjacent_comparison_flags_is_marked():
    # 0.75 % worse per run with 1.5 % run-to-run spread: 15 % over 20 runs.
    series = noisy(5, spread=0.015) * (1 + 0.0075 * np.arange(20))
    steps = series[1:] / series[:-1] - 1
    assert max(abs(steps)) < 0.10           # the gate's default threshold: no step reaches it
    found = change_points(series)
    assert found and all(cp.change > 0 for cp in found)


def test_the_fewest_runs_follow_from_the_permutation_test():
    # a perfect step has p >= 2 / C(n, n // 2): 2/35 > 0.05 with 7 runs, 2/70 with 8
    assert min_runs() == 8 and min_runs(0.01) == 10 and min_runs(0.05, min_size=5) == 10
    for n in range(6, 10):
        step = [1.0] * (n // 2) + [2.0] * (n - n // 2)
        assert bool(change_points(step)) == (n >= min_runs()), n


def test_a_series_shorter_than_two_segments_has_no_change_point():
    assert change_points([]) == [] and change_points([1.0, 9.0, 1.0, 9.0, 1.0]) == []


@pytest.mark.parametrize("kwargs, error, message", [
    ({"series": [1.0, float("nan")]}, ArgumentError, r"series\[1\] must be finite, got nan"),
    ({"series": [1.0, "2"]}, ArgumentTypeError, r"series\[1\] must be a number, not str"),
    ({"series": "123"}, ArgumentTypeError, "series must be a sequence of numbers, not str"),
    ({"significance": 1.5}, ArgumentError, r"significance must be within \(0, 1\)"),
    ({"significance": True}, ArgumentTypeError, "significance must be a number, not bool"),
    ({"min_size": 1}, ArgumentError, "min_size must be >= 2, got 1"),
    ({"permutations": 9}, ArgumentError,
     r"permutations=9 cannot give a p-value <= 0.05 .* use at least 19"),
    ({"seed": 1.5}, ArgumentTypeError, "seed must be an int, not float"),
])
def test_bad_arguments_are_named_with_their_value(kwargs, error, message):
    kwargs = {"series": [1.0] * 10, **kwargs}
    with pytest.raises(error, match=message):
        change_points(**kwargs)


def test_the_default_permutations_can_reach_the_default_significance():
    assert 1 / (DEFAULT_PERMUTATIONS + 1) <= SIGNIFICANCE / 10
