"""Per-token loss terms of EM-RL (verl's forms); the trainer takes their masked token mean."""

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
