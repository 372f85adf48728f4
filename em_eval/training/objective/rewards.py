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
    self_certainties: torch.Tensor | None = None  # [B, R] KL(U || p) per token (before the update)
    labels: list[str | None] | None = None  # each rollout's prompt's gold answer, where the prompt file has one


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


def self_certainty_reward(x: RewardInputs) -> torch.Tensor:
    """Intuitor (2505.19590): the response's mean token self-certainty, KL(U || p)."""
    if x.self_certainties is None:
        raise ValueError("the self_certainty reward needs the rollouts' self-certainties; the trainer computes them "
                         "with the policy stats (RewardInputs.self_certainties)")
    return masked_mean(x.self_certainties, x.mask, dim=1)


def last_third_entropy_reward(x: RewardInputs) -> torch.Tensor:
    """RENT (2505.22660), its best variant: minus the mean token entropy of the last third of the
    response (thirds as ``numpy.array_split``: the last is the shortest)."""
    lengths = x.mask.sum(1)
    start = lengths - lengths // 3
    position = torch.arange(x.mask.shape[1], device=x.mask.device)[None, :]
    last = x.mask & (position >= start[:, None]) & (lengths[:, None] >= 3)  # fewer than 3 tokens: no third
    return -masked_mean(x.entropies, last | (x.mask & (lengths[:, None] < 3)), dim=1)


def _group_majorities(texts: list[str], group_size: int) -> tuple[list[str | None], list[bool]]:
    """Each group's majority answer (the first of the largest cluster; None when no answer) and
    whether each rollout's answer is in that cluster."""
    answers = [extract_answer(text) for text in texts]
    majorities, agrees = [], []
    for start in range(0, len(answers), group_size):
        clusters = cluster_answers(answers[start:start + group_size])
        votes = [c for c in clusters if c is not None]
        top = max(set(votes), key=lambda c: (votes.count(c), -votes.index(c))) if votes else None
        majorities.append(None if top is None else answers[start + clusters.index(top)])
        agrees += [c is not None and c == top for c in clusters]
    return majorities, agrees


def majority_reward(x: RewardInputs) -> torch.Tensor:
    """TTRL (2504.16084): 1 when the answer is in the group's majority cluster (ties: the cluster
    seen first), else 0 (no answer: 0)."""
    _, agrees = _group_majorities(x.texts, x.group_size)
    return torch.tensor(agrees, dtype=torch.float32, device=x.mask.device)


def pseudo_label_accuracy(texts: list[str], group_size: int, labels: list[str | None]) -> float | None:
    """The share of groups with a gold label whose majority answer (the pseudo-label) equals it;
    None when no group has a label."""
    from em_eval.tasks.math.grade import is_equiv

    majorities, _ = _group_majorities(texts, group_size)
    gold = [labels[g * group_size] for g in range(len(majorities))]
    scored = [m is not None and is_equiv(m, y) for m, y in zip(majorities, gold) if y is not None]
    return sum(scored) / len(scored) if scored else None


def random_reward(x: RewardInputs) -> torch.Tensor:
    """Control: a fair coin per rollout (seeded by seed, step and process), unrelated to the output."""
    generator = torch.Generator().manual_seed((x.seed * 1_000_003 + x.step) * 1009 + x.rank)
    return torch.randint(0, 2, (len(x.texts),), generator=generator).float().to(x.mask.device)


REWARDS: dict[str, RewardFn] = {
    "token": token_reward,
    "sequence": sequence_reward,
    "self_consistency": self_consistency_reward,
    "random": random_reward,
    "self_certainty": self_certainty_reward,
    "last_third_entropy": last_third_entropy_reward,
    "majority": majority_reward,
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
