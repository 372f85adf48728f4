"""EM-RL rewards: one scalar per rollout, computed before the update and detached.

Each reward takes a :class:`RewardInputs` and returns a ``[B]`` float tensor. ``reward=`` in
a recipe names one of :data:`REWARDS` or any ``package.module:function`` with that signature.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from em_eval.training.objective.token_stats import masked_mean
from em_eval.tasks.math.grade import cluster_answers, extract_answer


@dataclass(frozen=True)
class RewardInputs:
    """What a reward may look at; rows of one prompt are contiguous groups of ``group_size``."""

    texts: list[str]  # decoded responses
    log_probs: torch.Tensor  # [B, R] policy log-probs of the sampled tokens (before the update)
    entropies: torch.Tensor  # [B, R] full-vocabulary entropies (before the update)
    mask: torch.Tensor  # [B, R] valid response tokens
    group_size: int
    seed: int
    step: int
    rank: int


RewardFn = Callable[[RewardInputs], torch.Tensor]


def token_reward(x: RewardInputs) -> torch.Tensor:
    """EM-RL token: minus the mean token entropy of the response (the paper's code, not the sum)."""
    return -masked_mean(x.entropies, x.mask, dim=1)


def sequence_reward(x: RewardInputs) -> torch.Tensor:
    """EM-RL sequence: the mean token log-probability of the response."""
    return masked_mean(x.log_probs, x.mask, dim=1)


def self_consistency_reward(x: RewardInputs) -> torch.Tensor:
    """SC-RL: the fraction of the group's answers equivalent to this one (itself included);
    a response with no extractable answer gets ``1 / group_size``. Answers are grouped by the math grader's
    clustering, whose symbolic work per group is bounded (hostile answers cannot stall a step)."""
    answers = [extract_answer(text) for text in x.texts]
    out = []
    for start in range(0, len(answers), x.group_size):
        clusters = cluster_answers(answers[start:start + x.group_size])
        for cid in clusters:
            agree = 1 if cid is None else clusters.count(cid)
            out.append(agree / x.group_size)
    return torch.tensor(out, dtype=torch.float32, device=x.mask.device)


def random_reward(x: RewardInputs) -> torch.Tensor:
    """Control: a fair coin per rollout (seeded by seed, step and process), unrelated to the output."""
    generator = torch.Generator().manual_seed((x.seed * 1_000_003 + x.step) * 1009 + x.rank)
    return torch.randint(0, 2, (len(x.texts),), generator=generator).float().to(x.mask.device)


REWARDS: dict[str, RewardFn] = {
    "token": token_reward,
    "sequence": sequence_reward,
    "self_consistency": self_consistency_reward,
    "random": random_reward,
}


def get_reward(name: str) -> RewardFn:
    """A shipped reward by name, or ``package.module:function``."""
    if name in REWARDS:
        return REWARDS[name]
    module, sep, attr = name.partition(":")
    if not sep:
        raise ValueError(f"unknown reward {name!r}; use one of {', '.join(REWARDS)} or 'package.module:function'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"reward {name!r} cannot be imported ({exc}); check the module path and function name") from exc
