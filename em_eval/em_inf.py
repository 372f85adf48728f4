"""EM-INF and adaptive temperature as pure tensor functions on ``[batch, vocab]`` logits.

No lm-eval, transformers or vLLM imports: the HF and vLLM backends both call these.
Every row is independent, everything runs under ``torch.inference_mode()`` (closed-form
gradient, no autograd), computes in fp32 and returns the input dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class EmInfStats:
    """Per-row telemetry of one :func:`minimize_entropy_with_stats` call."""

    entropy_before: torch.Tensor  # [batch] nats, temperature 1
    entropy_after: torch.Tensor  # [batch] nats, temperature 1
    steps: torch.Tensor  # [batch] Adam updates applied (int32)


def _valid_rows(z: torch.Tensor) -> torch.Tensor:
    """Rows that can be optimised: no NaN, no +inf, at least one finite logit."""
    return ~(torch.isnan(z).any(-1) | torch.isposinf(z).any(-1)) & torch.isfinite(z).any(-1)


def _entropy_terms(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``q = softmax(z)``, ``q*log q`` (0 where q == 0) and ``H`` per row (NaN for invalid rows)."""
    logq = torch.log_softmax(z, dim=-1)
    q = logq.exp()
    plogq = torch.where(q == 0, torch.zeros_like(q), q * logq)
    return q, plogq, -plogq.sum(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of ``softmax(logits)`` per row (``-inf`` entries contribute 0; NaN for rows
    with NaN, +inf or only ``-inf``)."""
    return _entropy_terms(logits.float())[2]


def minimize_entropy_with_stats(
    logits: torch.Tensor,
    *,
    threshold: float = 0.3,
    kl_weight: float = 0.05,
    lr: float = 0.1,
    steps: int = 3,
    compact: bool = False,
) -> tuple[torch.Tensor, EmInfStats]:
    """EM-INF on ``[batch, vocab]`` logits, plus per-row entropy before/after and steps taken.

    Minimises ``H(softmax(z)) + kl_weight * KL(p0 || softmax(z))`` with ``steps`` Adam
    updates (fresh state, torch defaults). Before each update a row whose entropy is below
    ``threshold`` stops for good. Rows with NaN, +inf or only ``-inf`` come back unchanged.

    ``compact=True`` optimises only the rows that start above the threshold (most tokens of a
    confident model do not), which reads the gate on the host: fine for HF ``generate``, which
    synchronises every token anyway; the default keeps the whole call free of host syncs (vLLM).
    """
    if logits.ndim != 2:
        raise ValueError(f"minimize_entropy expects [batch, vocab] logits, got shape {tuple(logits.shape)}")
    if steps < 0 or lr < 0 or kl_weight < 0:
        raise ValueError(f"steps, lr and kl_weight must be >= 0 (got steps={steps}, lr={lr}, kl_weight={kl_weight})")
    original = logits.float()
    if compact:
        return _minimize_compact(logits, original, threshold, kl_weight, lr, steps)
    valid = _valid_rows(original)
    z = torch.where(valid[:, None], original, torch.zeros_like(original))
    p0, plogq0, h0 = _entropy_terms(z)
    active = valid & (h0 >= threshold)
    z_opt, h_after, taken = _adam_on_entropy(z, p0, plogq0, h0, active, threshold, kl_weight, lr, steps)
    out = torch.where(valid[:, None], z_opt, original)
    nan = torch.full_like(h0, float("nan"))
    stats = EmInfStats(torch.where(valid, h0, nan), torch.where(valid, h_after, nan), taken)
    return out.to(logits.dtype), stats


def _minimize_compact(
    logits: torch.Tensor, original: torch.Tensor, threshold: float, kl_weight: float, lr: float, steps: int
) -> tuple[torch.Tensor, EmInfStats]:
    """Entropy of every row, then the Adam loop only on rows at or above the threshold.

    Invalid rows (NaN, +inf, all ``-inf``) get a NaN entropy, fail the gate and stay as they are.
    """
    h0 = _entropy_terms(original)[2]
    rows = torch.nonzero(h0 >= threshold).flatten()
    taken = torch.zeros(h0.shape[0], dtype=torch.int32, device=h0.device)
    if rows.numel() == 0:
        return logits, EmInfStats(h0, h0.clone(), taken)
    z = original[rows]
    p0, plogq0, h = _entropy_terms(z)
    z, h_rows, taken_rows = _adam_on_entropy(z, p0, plogq0, h, torch.ones_like(h, dtype=torch.bool), threshold, kl_weight, lr, steps)
    out = original.index_copy(0, rows, z)
    h_after = h0.index_copy(0, rows, h_rows)
    return out.to(logits.dtype), EmInfStats(h0, h_after, taken.index_copy(0, rows, taken_rows))


def _adam_on_entropy(
    z: torch.Tensor,
    p0: torch.Tensor,
    plogq: torch.Tensor,
    h: torch.Tensor,
    active: torch.Tensor,
    threshold: float,
    kl_weight: float,
    lr: float,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Adam loop on rows ``z`` (with their precomputed softmax terms); returns the new
    logits, their entropy and the number of updates each row took."""
    q, h0 = p0, h
    taken = torch.zeros(z.shape[0], dtype=torch.int32, device=z.device)
    m = torch.zeros_like(z)
    v = torch.zeros_like(z)
    for i in range(1, steps + 1):
        if i > 1:
            q, plogq, h = _entropy_terms(z)
        active = active & (h >= threshold)
        grad = plogq.addcmul_(q, h[:, None]).neg_()  # -q (log q + H), in place
        if kl_weight and i > 1:  # q == p0 on the first step, so the KL gradient is exactly 0
            grad.add_(q, alpha=kl_weight).sub_(p0, alpha=kl_weight)
        m.mul_(ADAM_BETA1).add_(grad, alpha=1 - ADAM_BETA1)
        v.mul_(ADAM_BETA2).addcmul_(grad, grad, value=1 - ADAM_BETA2)
        # Adam's bias-corrected step, lr * m_hat / (sqrt(v_hat) + eps), with the corrections as scalars
        denom = v.sqrt().div_(math.sqrt(1 - ADAM_BETA2**i)).add_(ADAM_EPS)
        update = torch.div(m, denom, out=denom).mul_(active[:, None] * (lr / (1 - ADAM_BETA1**i)))
        z.sub_(update)
        taken += active.to(torch.int32)
    h_after = _entropy_terms(z)[2] if steps else h0
    return z, h_after, taken


def minimize_entropy(
    logits: torch.Tensor,
    *,
    threshold: float = 0.3,
    kl_weight: float = 0.05,
    lr: float = 0.1,
    steps: int = 3,
) -> torch.Tensor:
    """EM-INF on ``[batch, vocab]`` logits (the paper's released defaults); see the ``_with_stats`` variant."""
    return minimize_entropy_with_stats(logits, threshold=threshold, kl_weight=kl_weight, lr=lr, steps=steps)[0]


def adaptive_temperature(
    logits: torch.Tensor,
    *,
    target_ratio: float = 0.85,
    threshold: float = 1e-5,
    t_min: float = 0.01,
    t_max: float = 1.0,
    tol: float = 0.1,
    max_iters: int = 100,
) -> torch.Tensor:
    """Per row, bisect a temperature so the entropy reaches ``max(threshold, target_ratio * H0)``.

    The paper's "Adaptive Temp" baseline. Rows with ``H0 <= threshold`` (and invalid rows)
    are unchanged. Runs a fixed number of iterations without host synchronisation:
    once the fp32 interval has collapsed (at most 48 halvings of ``[t_min, t_max]``), more
    iterations cannot change any row, so ``min(max_iters, 48)`` gives the same result.
    """
    return adaptive_temperature_with_stats(
        logits, target_ratio=target_ratio, threshold=threshold, t_min=t_min, t_max=t_max, tol=tol, max_iters=max_iters
    )[0]


def adaptive_temperature_with_stats(
    logits: torch.Tensor,
    *,
    target_ratio: float = 0.85,
    threshold: float = 1e-5,
    t_min: float = 0.01,
    t_max: float = 1.0,
    tol: float = 0.1,
    max_iters: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`adaptive_temperature`, also returning the chosen temperature per row."""
    if logits.ndim != 2:
        raise ValueError(f"adaptive_temperature expects [batch, vocab] logits, got shape {tuple(logits.shape)}")
    if not 0 < t_min <= t_max:
        raise ValueError(f"need 0 < t_min <= t_max (got t_min={t_min}, t_max={t_max})")
    original = logits.float()
    valid = _valid_rows(original)
    z = torch.where(valid[:, None], original, torch.zeros_like(original))
    h0 = _entropy_terms(z)[2]
    target = torch.clamp(h0 * target_ratio, min=threshold)
    searching = valid & (h0 > threshold)
    lo = torch.full_like(h0, t_min)
    hi = torch.full_like(h0, t_max)
    temp = torch.ones_like(h0)
    for _ in range(min(max_iters, 48)):
        mid = (lo + hi) / 2
        temp = torch.where(searching, mid, temp)
        h = _entropy_terms(z / mid[:, None])[2]
        searching &= (h - target).abs() >= tol
        too_hot = h >= target
        hi = torch.where(searching & too_hot, mid, hi)
        lo = torch.where(searching & ~too_hot, mid, lo)
    out = torch.where(valid[:, None], z / temp[:, None], original).to(logits.dtype)
    return out, temp
