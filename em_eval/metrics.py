"""Sampling metrics per problem (unbiased pass@k, maj@k) and means with standard errors.

Pure functions of per-problem outcomes; no lm-eval, no grading imports. The unit of sampling
is the problem: a per-problem score is computed first (pass@k estimate, majority-vote
correctness, mean accuracy), then averaged over problems; the standard error is the sample
standard deviation of those per-problem scores over sqrt(number of problems). That is what
lm-eval's ``mean`` aggregation reports as ``*_stderr`` for the same per-problem values.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Hashable, Sequence


@dataclass(frozen=True)
class Estimate:
    """A mean over problems with its standard error and the number of problems."""

    mean: float
    stderr: float
    n: int

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval at ``level``."""
        return confidence_interval(self.mean, self.stderr, level)


def mean_stderr(values: Sequence[float]) -> Estimate:
    """Mean and standard error (sample std, ddof=1, over sqrt(n)); stderr is 0 for n < 2."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_stderr needs at least one value")
    mean = math.fsum(values) / n
    if n < 2:
        return Estimate(mean, 0.0, n)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return Estimate(mean, math.sqrt(var / n), n)


def confidence_interval(mean: float, stderr: float, level: float = 0.95) -> tuple[float, float]:
    """``mean ± z·stderr`` with z the two-sided normal quantile for ``level``."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return mean - z * stderr, mean + z * stderr


def k_values(n: int) -> list[int]:
    """The k reported for n samples: 1, 2, 4, ... up to n, plus n itself."""
    if n < 1:
        raise ValueError(f"need at least one sample per problem, got n={n}")
    ks = [1 << i for i in range(n.bit_length()) if (1 << i) <= n]
    return ks if ks[-1] == n else ks + [n]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct out of ``n`` samples (Chen et al., 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k), as a product to stay exact-ish for large n
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_correct(clusters: Sequence[Hashable | None], correct: Sequence[bool]) -> float:
    """Majority-vote correctness of one group of samples.

    ``clusters[i]`` is sample i's answer cluster (None: no answer, no vote). A cluster counts
    as correct if its first sample is. Ties between top clusters score the fraction of them
    that are correct (the expected value of a random tie break). No votes at all scores 0.
    """
    if len(clusters) != len(correct):
        raise ValueError("clusters and correct must have the same length")
    votes = Counter(c for c in clusters if c is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winners = [c for c, v in votes.items() if v == top]
    first = {}
    for c, ok in zip(clusters, correct):
        if c is not None and c not in first:
            first[c] = bool(ok)
    return sum(first[c] for c in winners) / len(winners)


def maj_at_k(clusters: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """maj@k of one problem: mean majority-vote correctness over the n // k disjoint groups of k samples."""
    n = len(clusters)
    if not 1 <= k <= n:
        raise ValueError(f"maj@k needs 1 <= k <= n; got k={k}, n={n}")
    groups = n // k
    return (
        sum(majority_correct(clusters[g * k : (g + 1) * k], correct[g * k : (g + 1) * k]) for g in range(groups))
        / groups
    )


def mean_of_members(items: Sequence[tuple[bool, float]]) -> float:
    """Mean score of the items that belong to a breakdown group, ``(belongs, score)`` each (NaN for none)."""
    scores = [score for member, score in items if member]
    return sum(scores) / len(scores) if scores else math.nan
