"""What a run optimises, as pure tensor code, in the order a training step uses it.

* Token statistics: differentiable entropy, self-certainty and log-probabilities on ``[..., vocab]``
  logits. Unlike :func:`em_eval.em_inf.core.entropy`, which runs without autograd at decoding time,
  these keep the graph: EM-FT's loss is the entropy itself, so gradients must flow through it.
  Logits are computed in at least fp32 (the paper's verl fork does the same under bf16 autocast)
  and must be finite, as a model's raw output is.
* EM-RL rewards: one scalar per rollout, computed before the update and detached. Each reward takes
  a :class:`RewardInputs` and returns a ``[B]`` float tensor. ``reward=`` in a recipe names one of
  :data:`REWARDS` or any ``package.module:function`` with that signature. :func:`score_rollouts`
  also returns what a reward logs beside it (majority voting: how often its pseudo-labels match
  the true labels, when the prompt file has them).
* Group-relative advantages: one scalar per rollout from the rewards of its prompt's group. Rows of
  one prompt are contiguous groups of ``group_size`` (``generate``'s ``num_return_sequences`` layout).
* Losses: the per-token loss terms of EM-RL (verl's forms) and how a micro-batch's tokens are
  averaged into the loss.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from em_eval.tasks.math.grade import cluster_answers, extract_answer, is_equiv

# ---- token statistics ---------------------------------------------------------------------------


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def token_entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy in nats of ``softmax(logits / temperature)`` over the last dim, differentiable."""
    # -sum(p log p) adds non-negative terms; logsumexp(z) - sum(p z) cancels two large numbers
    # and is biased by ~1e-4 nats in fp32 over a 50k vocabulary.
    log_p = torch.log_softmax(_at_least_fp32(logits) / temperature, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def token_self_certainty(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Self-certainty (Intuitor, arXiv 2505.19590) of each position: ``KL(U || p)`` in nats, with U uniform
    over the vocabulary: ``-log V - mean_j log p_j``. 0 for a uniform ``p``, large for a peaked one."""
    log_p = torch.log_softmax(_at_least_fp32(logits) / temperature, dim=-1)
    return -log_p.mean(-1) - torch.log(torch.tensor(float(logits.shape[-1]), dtype=log_p.dtype, device=log_p.device))


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``log softmax(logits / temperature)[token]`` for each position, differentiable."""
    z = _at_least_fp32(logits) / temperature
    picked = z.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(z, dim=-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true (over ``dim``, or all); 0 where nothing is masked in."""
    mask = mask.to(values.dtype)
    total = (values * mask).sum() if dim is None else (values * mask).sum(dim)
    count = mask.sum() if dim is None else mask.sum(dim)
    return total / count.clamp(min=1)


# ---- rewards ------------------------------------------------------------------------------------


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
        clusters = cluster_answers(answers[start : start + x.group_size])
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
        group = answers[start : start + x.group_size]
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
    metrics = (
        {}
        if x.labels is None
        else {
            "pseudo_label_accuracy": sum(label_hits) / len(label_hits),
            "pseudo_reward_accuracy": sum(reward_hits) / len(reward_hits),
        }
    )
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
            f"reward {name!r} cannot be imported ({exc}); check the module path and function name"
        ) from exc


# ---- advantages ---------------------------------------------------------------------------------


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


# ---- losses -------------------------------------------------------------------------------------


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


def aggregate_tokens(
    values: torch.Tensor, mask: torch.Tensor, *, mode: str, mini_rows: int, mini_tokens: torch.Tensor
) -> torch.Tensor:
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


def forking_token_mask(entropies: torch.Tensor, mask: torch.Tensor, share: float) -> torch.Tensor:
    """The ``ceil(share * n)`` valid tokens of highest entropy among the ``n`` of ``mask`` ("forking tokens",
    arXiv 2506.01939: with share 0.2 only they carry the policy gradient); ties go to the earlier token."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    valid = mask.bool()
    keep = math.ceil(share * int(valid.sum()))
    flat = torch.where(valid, entropies.float(), float("-inf")).flatten()
    # a stable sort keeps equal entropies in position order, so ties go to the earlier token
    order = torch.sort(flat, descending=True, stable=True).indices[:keep]
    out = torch.zeros_like(flat, dtype=torch.bool)
    out[order] = True
    return out.view_as(valid) & valid
