"""Sampling metrics: unbiased pass@k against brute force, maj@k ties and groups, standard errors."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from em_eval.metrics import (
    Estimate,
    confidence_interval,
    k_values,
    maj_at_k,
    majority_correct,
    mean_stderr,
    pass_at_k,
)


def _brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of k-subsets of n samples (c correct) containing a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_brute_force(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_closed_form_and_edges() -> None:
    assert pass_at_k(16, 4, 1) == pytest.approx(4 / 16)
    assert pass_at_k(16, 4, 4) == pytest.approx(1 - math.comb(12, 4) / math.comb(16, 4))
    assert pass_at_k(16, 0, 16) == 0.0
    assert pass_at_k(16, 1, 16) == 1.0
    assert pass_at_k(200, 13, 100) == pytest.approx(1 - math.comb(187, 100) / math.comb(200, 100))
    for bad in [(4, 5, 1), (4, 1, 0), (4, 1, 5), (4, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_k_values() -> None:
    assert k_values(1) == [1]
    assert k_values(16) == [1, 2, 4, 8, 16]
    assert k_values(10) == [1, 2, 4, 8, 10]
    with pytest.raises(ValueError):
        k_values(0)


def test_mean_stderr_is_sample_std_over_sqrt_n() -> None:
    values = [0.0, 1.0, 1.0, 0.5, 0.25]
    est = mean_stderr(values)
    assert est.mean == pytest.approx(statistics.mean(values))
    assert est.stderr == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)))
    assert est.n == 5
    assert mean_stderr([0.7]) == Estimate(0.7, 0.0, 1)
    with pytest.raises(ValueError):
        mean_stderr([])


def test_confidence_interval() -> None:
    lo, hi = confidence_interval(0.5, 0.1, 0.95)
    assert lo == pytest.approx(0.5 - 1.959964 * 0.1, abs=1e-6) and hi == pytest.approx(0.5 + 1.959964 * 0.1, abs=1e-6)
    assert Estimate(0.5, 0.1, 10).interval(0.9) == pytest.approx(confidence_interval(0.5, 0.1, 0.9))
    with pytest.raises(ValueError):
        confidence_interval(0.5, 0.1, 1.0)


def test_majority_correct_ties_and_abstentions() -> None:
    assert majority_correct([0, 0, 1], [True, True, False]) == 1.0
    assert majority_correct([0, 1, 1], [True, False, False]) == 0.0
    assert majority_correct([0, 1], [True, False]) == 0.5  # tie: expected value of a random break
    assert majority_correct([0, 1, 2, 2, None, None, None], [False, False, True, True, False, False, False]) == 1.0
    assert majority_correct([None, None], [False, False]) == 0.0
    with pytest.raises(ValueError):
        majority_correct([0], [True, False])


def test_maj_at_k_uses_disjoint_groups() -> None:
    clusters = [0, 0, 1, 1, 1, 0, 2, 2]
    correct = [True, True, False, False, False, True, False, False]
    assert maj_at_k(clusters, correct, 1) == pytest.approx(3 / 8)  # maj@1 is the mean accuracy
    assert maj_at_k(clusters, correct, 2) == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert maj_at_k(clusters, correct, 4) == pytest.approx((0.5 + 0.0) / 2)
    assert maj_at_k(clusters, correct, 8) == 0.5  # clusters 0 and 1 both have 3 votes: a tie
    with pytest.raises(ValueError):
        maj_at_k(clusters, correct, 9)


def test_estimates_over_problems() -> None:
    """Per-problem pass@k and maj@k, then the mean and stderr over problems (lm-eval's ``mean``)."""
    correct = [[True, False, False, False], [True, True, True, True], [False, False, False, False]]
    clusters = [[0, 1, 1, 1], [0, 0, 0, 0], [0, 1, 2, None]]
    avg = mean_stderr([sum(row) / len(row) for row in correct])
    assert avg.mean == pytest.approx((0.25 + 1 + 0) / 3)
    assert avg.stderr == pytest.approx(statistics.stdev([0.25, 1, 0]) / math.sqrt(3))
    p2 = mean_stderr([pass_at_k(4, sum(row), 2) for row in correct])
    assert p2.mean == pytest.approx((0.5 + 1 + 0) / 3)
    assert mean_stderr([pass_at_k(4, sum(row), 1) for row in correct]).mean == pytest.approx(avg.mean)
    assert mean_stderr([pass_at_k(4, sum(row), 4) for row in correct]).mean == pytest.approx(2 / 3)
    m4 = mean_stderr([maj_at_k(cl, ok, 4) for cl, ok in zip(clusters, correct)])
    assert m4.mean == pytest.approx((0 + 1 + 0) / 3)


def test_stderr_shrinks_with_more_problems() -> None:
    rng = random.Random(0)
    small = [[rng.random() < 0.4 for _ in range(8)] for _ in range(20)]
    large = small * 25

    def stderr(rows):
        return mean_stderr([pass_at_k(len(row), sum(row), 4) for row in rows]).stderr

    assert stderr(large) < stderr(small) / 4
