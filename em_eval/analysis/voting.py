"""Voting over one problem's stored samples: majority, confidence-weighted, and DeepConf's
offline filtering (keep the most confident share, then vote weighted by confidence), each scored
like maj@k (a tie between winning clusters scores the share of them that are correct), and a
plain majority at the same token budget as a filtered vote."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Hashable, Sequence

from em_eval.metrics import majority_correct


def weighted_correct(clusters: Sequence[Hashable | None], correct: Sequence[bool], weights: Sequence[float]) -> float:
    """Correctness of the cluster with the largest total weight (samples without an answer do
    not vote; a cluster is correct if its first sample is); 0 without votes."""
    if not len(clusters) == len(correct) == len(weights):
        raise ValueError("clusters, correct and weights must have the same length")
    if any(w < 0 for w in weights):
        raise ValueError("vote weights must be >= 0")
    total: dict[Hashable, float] = defaultdict(float)
    first: dict[Hashable, bool] = {}
    for c, ok, w in zip(clusters, correct, weights):
        if c is not None:
            total[c] += w
            first.setdefault(c, bool(ok))
    if not total:
        return 0.0
    top = max(total.values())
    winners = [c for c, w in total.items() if math.isclose(w, top, rel_tol=1e-12, abs_tol=0.0)]
    return sum(first[c] for c in winners) / len(winners)


def most_confident(confidence: Sequence[float], share: float) -> list[int]:
    """Indices of the ``ceil(share * n)`` most confident samples (at least one; ties: earlier first)."""
    if not 0 < share <= 1:
        raise ValueError(f"the share of samples kept must be in (0, 1], got {share}")
    keep = max(1, math.ceil(share * len(confidence) - 1e-9))
    return sorted(sorted(range(len(confidence)), key=lambda i: -confidence[i])[:keep])


def filtered_correct(
    clusters: Sequence[Hashable | None],
    correct: Sequence[bool],
    confidence: Sequence[float],
    weights: Sequence[float],
    share: float,
) -> tuple[float, list[int]]:
    """DeepConf's offline vote: keep the top ``share`` by ``confidence``, vote weighted by ``weights``;
    returns the score and the samples kept."""
    kept = most_confident(confidence, share)
    return weighted_correct([clusters[i] for i in kept], [correct[i] for i in kept], [weights[i] for i in kept]), kept


def budget_majority(
    clusters: Sequence[Hashable | None], correct: Sequence[bool], tokens: Sequence[int], budget: int
) -> float:
    """Majority vote over the first samples whose tokens add up to at most ``budget`` (at least one)."""
    used, m = 0, 0
    for t in tokens:
        if m and used + t > budget:
            break
        used += t
        m += 1
    return majority_correct(clusters[:m], correct[:m])
