"""Per-token loss terms of EM-RL (verl's forms) and how a micro-batch's tokens are averaged into the loss."""

from __future__ import annotations

import torch


def ppo_clip_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_ratio: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token, ``max(-A r, -A clip(r, 1 +- eps))``, and where clipping bit.

    ``advantages`` is ``[B]`` (one per rollout) or ``[B, R]``.
    """
    adv = advantages[:, None] if advantages.ndim == 1 else advantages
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1 - clip_ratio, 1 + clip_ratio)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def low_var_kl(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """The low-variance (k3) KL estimate per sampled token: ``exp(d) - d - 1``, ``d = ref - logp``,
    clamped to [-10, 10] as in verl."""
    d = ref_log_probs - log_probs
    return torch.clamp(torch.exp(d) - d - 1, min=-10, max=10)


LOSS_AGGREGATIONS = ("micro_batch_token_mean", "mini_batch_token_mean")


def aggregate_tokens(values: torch.Tensor, mask: torch.Tensor, *, mode: str, mini_rows: int,
                     mini_tokens: torch.Tensor) -> torch.Tensor:
    """One micro-batch's share of its mini-batch's loss, from per-token ``values`` ``[b, R]``.

    Summed over the mini-batch's micro-batches (gradient accumulation), the shares give:

    * ``micro_batch_token_mean`` (the paper's verl fork): each micro-batch's masked token mean,
      weighted by its share of the mini-batch's sequences, ``b / mini_rows`` (``1 / #micro-batches``
      when they are equal). A token's weight depends on the lengths of the responses it shares
      its micro-batch with.
    * ``mini_batch_token_mean``: the masked token sum over the mini-batch's ``mini_tokens``:
      every token of the mini-batch weighs the same.
    """
    mask = mask.to(values.dtype)
    total = (values * mask).sum()
    if mode == "micro_batch_token_mean":
        return total / mask.sum().clamp(min=1) * (values.shape[0] / mini_rows)
    if mode == "mini_batch_token_mean":
        return total / mini_tokens.clamp(min=1)
    raise ValueError(f"loss_agg must be one of {', '.join(LOSS_AGGREGATIONS)} (got {mode!r})")
