"""EM-RL rewards: one scalar per rollout, computed before the update and detached.

Each reward takes a :class:`RewardInputs` and returns a ``[B]`` float tensor. ``reward=`` in
a recipe names one of :data:`REWARDS` or any ``package.module:function`` with that signature.
:func:`score_rollouts` also returns what a reward logs beside it (majority voting: how often its
pseudo-labels match the true labels, when the prompt file has them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from em_eval.tasks.math.grade import cluster_answers, extract_answer, is_equiv
from em_eval.training.objective.token_stats import masked_mean


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
    self_certainties: torch.Tensor | None = None  # [B, R] per-token KL(U || p); given to self_certainty only
    labels: list[str] | None = None  # each group's true answer (prompt file `answer`); never a reward input


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
    """Intuitor (arXiv 2505.19590): the mean self-certainty ``KL(U || p)`` over the response's tokens."""
    if x.self_certainties is None:
        raise ValueError("the self_certainty reward needs per-token self-certainties (RewardInputs.self_certainties)")
    return masked_mean(x.self_certainties, x.mask, dim=1)


def last_third_entropy_reward(x: RewardInputs) -> torch.Tensor:
    """RENT (arXiv 2505.22660): minus the mean token entropy over the last third of the response,
    its last ``ceil(n / 3)`` tokens (0 for an empty response)."""
    mask = x.mask.bool()
    n = mask.sum(1, keepdim=True)
    position = mask.long().cumsum(1)  # 1-based index among the response's tokens
    last = mask & (position > n - (n + 2) // 3)
    return -masked_mean(x.entropies, last, dim=1)


def majority_vote(x: RewardInputs) -> tuple[torch.Tensor, dict[str, float]]:
    """TTRL (arXiv 2504.16084): each group's majority answer is its pseudo-label (the largest cluster of
    equivalent answers; a tie goes to the answer seen first); reward 1 for an answer equivalent to it, else 0
    (no answer: 0). With true labels, also ``pseudo_label_accuracy`` (groups whose pseudo-label is right)
    and ``pseudo_reward_accuracy`` (rollouts whose reward equals the reward the true label would give)."""
    answers = [extract_answer(text) for text in x.texts]
    rewards, label_hits, reward_hits = [], [], []
    for g, start in enumerate(range(0, len(answers), x.group_size)):
        group = answers[start:start + x.group_size]
        clusters = cluster_answers(group)
        counts = {c: clusters.count(c) for c in clusters if c is not None}
        majority = max(counts, key=lambda c: (counts[c], -c)) if counts else None
        pseudo = [float(c is not None and c == majority) for c in clusters]
        rewards += pseudo
        if x.labels is not None:
            first = {c: group[i] for i, c in reversed(list(enumerate(clusters))) if c is not None}
            right = {c: is_equiv(answer, x.labels[g]) for c, answer in first.items()}
            label_hits.append(float(majority is not None and right[majority]))
            reward_hits += [float(p == float(c is not None and right[c])) for p, c in zip(pseudo, clusters)]
    metrics = {} if x.labels is None else {"pseudo_label_accuracy": sum(label_hits) / len(label_hits),
                                           "pseudo_reward_accuracy": sum(reward_hits) / len(reward_hits)}
    return torch.tensor(rewards, dtype=torch.float32, device=x.mask.device), metrics


def majority_reward(x: RewardInputs) -> torch.Tensor:
    """TTRL's majority-vote reward (:func:`majority_vote`) alone."""
    return majority_vote(x)[0]


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
WITH_METRICS = {"majority": majority_vote}  # rewards that also log metrics


def score_rollouts(name: str, x: RewardInputs) -> tuple[torch.Tensor, dict[str, float]]:
    """The rewards of reward ``name`` and the metrics it logs (the same keys on every call)."""
    if name in WITH_METRICS:
        return WITH_METRICS[name](x)
    return get_reward(name)(x), {}


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
        raise ValueError(
            f"reward {name!r} cannot be imported ({exc}); check the module path and function name") from exc
