"""Does a confidence signal predict correctness? AUROC (any score, higher meaning more confident)
and, for scores that are probabilities, the expected calibration error and reliability bins."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class Bin:
    """One reliability-diagram bin ``[lo, hi)`` (the last one closed)."""

    lo: float
    hi: float
    count: int
    confidence: float  # mean predicted probability (NaN when empty)
    accuracy: float  # share correct (NaN when empty)


def auroc(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """The probability that a correct response scores above an incorrect one (ties count half):
    the Mann-Whitney statistic from average ranks. NaN when either class is empty."""
    s, y = _paired(scores, correct)
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def reliability(probabilities: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[Bin]:
    """``bins`` equal-width bins over [0, 1] of predicted probability against observed accuracy."""
    p, y = _paired(probabilities, correct)
    if bins < 1:
        raise ValueError(f"reliability needs at least one bin, got {bins}")
    if len(p) and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"probabilities must lie in [0, 1]; got values from {p.min():g} to {p.max():g}")
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        member = index == b
        count = int(member.sum())
        out.append(
            Bin(
                b / bins,
                (b + 1) / bins,
                count,
                float(p[member].mean()) if count else math.nan,
                float(y[member].mean()) if count else math.nan,
            )
        )
    return out


def expected_calibration_error(probabilities: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """``sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|`` over :func:`reliability`'s bins."""
    table = reliability(probabilities, correct, bins)
    total = sum(b.count for b in table)
    if not total:
        return math.nan
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in table if b.count)


def _paired(scores: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    if len(scores) != len(correct):
        raise ValueError(f"{len(scores)} scores for {len(correct)} outcomes")
    s = np.asarray(scores, dtype=float)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; leave out the responses without a signal")
    return s, np.asarray(correct, dtype=bool)
