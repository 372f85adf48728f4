"""Paired comparisons of two runs on the same problems (pure functions, numpy/scipy only).

* One 0/1 outcome per problem: the exact McNemar test (a two-sided binomial test on the
  discordant pairs) and the matching exact interval for the difference, conditional on the
  number of discordant pairs (Clopper-Pearson for the share of candidate wins, mapped to
  ``(wins - losses) / n``). For the null difference 0 the interval excludes 0 exactly when
  the test rejects.
* Per-problem scores in [0, 1] (n samples per problem): a paired bootstrap over problems,
  the percentile interval of the mean difference and the two-sided p-value of the shifted
  bootstrap distribution (Efron & Tibshirani 1993, §16.4).
* Power: the smallest true drop that this comparison would detect with probability
  ``power`` under the decision rule "CI upper bound below -margin". The background churn
  (problems that flip either way) is estimated from the observed pairs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
from scipy import stats

EXACT_POWER_MAX_N = 1000


@dataclass(frozen=True)
class PairedComparison:
    """Candidate minus baseline on the same problems."""

    test: str
    n: int
    baseline: float
    candidate: float
    diff: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    min_detectable_drop: float | None
    power: float
    losses: int | None = None
    wins: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_pairs(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if b.shape != c.shape or b.ndim != 1 or b.size == 0:
        raise ValueError(f"paired comparison needs two equally long, non-empty score lists ({b.shape} vs {c.shape})")
    if ((b < 0) | (b > 1) | (c < 0) | (c > 1)).any():
        raise ValueError("per-problem scores must lie in [0, 1]")
    return b, c


# ---- one outcome per problem ----------------------------------------------------------------
def mcnemar_exact(
    baseline: Sequence[int], candidate: Sequence[int], alpha: float = 0.05, margin: float = 0.0, power: float = 0.8
) -> PairedComparison:
    """Exact McNemar test and interval for paired 0/1 outcomes."""
    b, c = _check_pairs(baseline, candidate)
    if not (np.isin(b, (0, 1)).all() and np.isin(c, (0, 1)).all()):
        raise ValueError("exact McNemar needs 0/1 outcomes; use paired_bootstrap for fractional scores")
    n = b.size
    losses = int(((b == 1) & (c == 0)).sum())
    wins = int(((b == 0) & (c == 1)).sum())
    low, high, p = _mcnemar_interval(losses, wins, n, alpha)
    churn = 2 * min(losses, wins) / n
    return PairedComparison(
        test="exact McNemar",
        n=n,
        baseline=float(b.mean()),
        candidate=float(c.mean()),
        diff=(wins - losses) / n,
        ci_low=low,
        ci_high=high,
        confidence=1 - alpha,
        p_value=p,
        min_detectable_drop=min_detectable_drop_binary(
            n, churn, alpha, margin, power, max_drop=float(b.mean()) - churn / 2
        ),
        power=power,
        losses=losses,
        wins=wins,
    )


def _mcnemar_interval(losses: int, wins: int, n: int, alpha: float) -> tuple[float, float, float]:
    m = losses + wins
    if m == 0:
        return 0.0, 0.0, 1.0
    p = float(stats.binomtest(wins, m, 0.5).pvalue)
    share = stats.binomtest(wins, m).proportion_ci(confidence_level=1 - alpha, method="exact")
    return m / n * (2 * share.low - 1), m / n * (2 * share.high - 1), p


def min_detectable_drop_binary(
    n: int, churn: float, alpha: float, margin: float, power: float, max_drop: float = 1.0
) -> float | None:
    """Smallest drop d (fraction of problems) that the exact rule detects with probability ``power``,
    or None if no drop up to ``max_drop`` (what the baseline can lose) is detectable.

    Model: each problem is independently a loss with probability churn/2 + d and a win with
    probability churn/2. Exact enumeration for n <= 1000, normal approximation above."""
    if n > EXACT_POWER_MAX_N:
        return min_detectable_drop_normal(n, churn, alpha, margin, power, max_drop)
    rejects = _rejection_table(n, alpha, margin)

    def prob(d: float) -> float:
        total = churn + d
        if total <= 0:
            return 0.0
        m = np.arange(n + 1)
        pm = stats.binom.pmf(m, n, min(total, 1.0))
        win_share = (churn / 2) / total
        # P(reject | m) = P(wins <= largest rejecting wins count for m)
        cond = np.where(rejects >= 0, stats.binom.cdf(rejects, m, win_share), 0.0)
        return float((pm * cond).sum())

    return _smallest(prob, power, upper=min(1.0 - churn / 2, max_drop))


@lru_cache(maxsize=32)
def _rejection_table(n: int, alpha: float, margin: float) -> np.ndarray:
    """For each discordant count m, the largest win count whose interval lies below -margin (-1: none)."""
    out = np.full(n + 1, -1)
    for m in range(1, n + 1):
        wins = np.arange(m + 1)
        upper_share = stats.beta.ppf(1 - alpha / 2, wins + 1, m - wins)
        upper_share = np.where(wins == m, 1.0, upper_share)
        ok = np.nonzero(m / n * (2 * upper_share - 1) < -margin)[0]
        out[m] = ok.max() if ok.size else -1
    out.flags.writeable = False
    return out


# ---- n samples per problem --------------------------------------------------------------------
def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    alpha: float = 0.05,
    margin: float = 0.0,
    power: float = 0.8,
    resamples: int = 10000,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap over problems of the mean per-problem difference."""
    b, c = _check_pairs(baseline, candidate)
    d = c - b
    n = d.size
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    mean = float(d.mean())
    if np.allclose(d, d[0]):
        low = high = mean
        p = 1.0 if mean == 0 else 0.0
    else:
        low, high = (float(x) for x in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
        p = float((1 + np.sum(np.abs(boot - mean) >= abs(mean))) / (1 + resamples))
    var = float(d.var(ddof=1)) if n > 1 else 0.0
    return PairedComparison(
        test="paired bootstrap",
        n=n,
        baseline=float(b.mean()),
        candidate=float(c.mean()),
        diff=mean,
        ci_low=low,
        ci_high=high,
        confidence=1 - alpha,
        p_value=min(p, 1.0),
        min_detectable_drop=min_detectable_drop_normal(n, var, alpha, margin, power, max_drop=float(b.mean())),
        power=power,
    )


def min_detectable_drop_normal(
    n: int, noise_var: float, alpha: float, margin: float, power: float, max_drop: float = 1.0
) -> float | None:
    """Smallest drop d <= ``max_drop`` with d - margin = (z_{1-alpha/2} + z_power) * sqrt((noise_var + d(1-d)) / n).

    ``noise_var`` is the per-problem variance of the differences without a drop; a drop d
    concentrated on whole problems adds d(1-d)."""
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)

    def detected(d: float) -> float:
        return 1.0 if d - margin >= z * math.sqrt(max(noise_var + d * (1 - d), 0.0) / n) else 0.0

    return _smallest(detected, 0.5, upper=max_drop)


def _smallest(prob, target: float, upper: float, tol: float = 1e-4) -> float | None:
    """Smallest d in (0, upper] with prob(d) >= target (prob non-decreasing), or None."""
    if upper <= 0 or prob(upper) < target:
        return None
    lo, hi = 0.0, upper
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if prob(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


# ---- several tasks ------------------------------------------------------------------------------
def bonferroni(alpha: float, tests: int) -> float:
    """Per-test level that keeps the family-wise false-alarm rate at ``alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return alpha / max(tests, 1)
