"""Differentiable token entropy and log-probabilities on ``[..., vocab]`` logits (for training).

Unlike :func:`em_eval.em_inf.core.entropy`, which runs without autograd at decoding time, these
keep the graph: EM-FT's loss is the entropy itself, so gradients must flow through it.
Logits are computed in at least fp32 (the paper's verl fork does the same under bf16
autocast) and must be finite, as a model's raw output is.
"""

from __future__ import annotations

import torch


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def token_entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy in nats of ``softmax(logits / temperature)`` over the last dim, differentiable."""
    # -sum(p log p) adds non-negative terms; logsumexp(z) - sum(p z) cancels two large numbers
    # and is biased by ~1e-4 nats in fp32 over a 50k vocabulary.
    log_p = torch.log_softmax(_at_least_fp32(logits) / temperature, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


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
