"""Group-relative advantages: one scalar per rollout from the rewards of its prompt's group.

Rows of one prompt are contiguous groups of ``group_size`` (``generate``'s
``num_return_sequences`` layout).
"""

from __future__ import annotations

import torch


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if group_size < 2 or rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"need [groups * {group_size}] rewards with group_size >= 2, got shape {tuple(rewards.shape)}")
    return rewards.float().view(-1, group_size)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO: ``r_i`` minus the mean of the other rollouts of its prompt; no std normalisation."""
    r = _groups(rewards, group_size)
    others = (r.sum(1, keepdim=True) - r) / (group_size - 1)
    return (r - others).view(-1)


def grpo_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO: ``(r_i - mean) / (std + eps)`` within the group (unbiased std, as verl)."""
    r = _groups(rewards, group_size)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps)).view(-1)


ADVANTAGES = {"rloo": rloo_advantages, "grpo": grpo_advantages}
