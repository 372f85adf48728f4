"""Semantic entropy of one problem (EMPO 2504.05812, SEED-GRPO 2505.12346): the entropy of the
answer distribution over equivalence clusters, ``-sum_c p_c log p_c`` in nats with ``p_c`` the
share of samples in cluster c. A sample without an answer is a cluster of its own (it agrees with
nothing), so a model that never answers scores ``log n``, not 0."""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Sequence


def semantic_entropy(clusters: Sequence[Hashable | None]) -> float:
    """Entropy (nats) of the samples' answer clusters; None entries are singletons."""
    if not clusters:
        raise ValueError("semantic entropy needs at least one sample")
    counts = list(Counter(c for c in clusters if c is not None).values()) + [1] * sum(c is None for c in clusters)
    n = len(clusters)
    return -math.fsum(c / n * math.log(c / n) for c in counts) + 0.0
