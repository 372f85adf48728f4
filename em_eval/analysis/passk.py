"""pass@k curves: the unbiased estimator (Chen et al., 2021) per problem, averaged over problems
with its standard error, for every k up to the samples drawn (Yue et al., 2504.13837, compare a
trained model's curve with its base model's at large k)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from em_eval.metrics import Estimate, mean_stderr, pass_at_k


@dataclass(frozen=True)
class CurvePoint:
    k: int
    estimate: Estimate


def curve_ks(n: int, dense_up_to: int = 16) -> list[int]:
    """Every k up to ``dense_up_to``, then powers of two, then ``n`` itself."""
    if n < 1:
        raise ValueError(f"a pass@k curve needs at least one sample per problem, got n={n}")
    ks = list(range(1, min(n, dense_up_to) + 1))
    power = 1 << dense_up_to.bit_length()
    while power < n:
        ks.append(power)
        power <<= 1
    return ks if ks[-1] == n else ks + [n]


def pass_at_k_curve(outcomes: Sequence[Sequence[bool]], ks: Sequence[int] | None = None) -> list[CurvePoint]:
    """Mean unbiased pass@k over problems (``outcomes[i]``: problem i's per-sample correctness),
    with its standard error, for each k in ``ks`` (default :func:`curve_ks` of the smallest n)."""
    if not outcomes:
        raise ValueError("a pass@k curve needs at least one problem")
    n_min = min(len(o) for o in outcomes)
    ks = curve_ks(n_min) if ks is None else list(ks)
    if max(ks) > n_min:
        raise ValueError(f"pass@{max(ks)} needs at least {max(ks)} samples per problem; the fewest here is {n_min}")
    return [CurvePoint(k, mean_stderr([pass_at_k(len(o), sum(map(bool, o)), k) for o in outcomes])) for k in ks]
