"""How confident a (trained) model is on held-out prompts: mean token entropy of its own responses."""

from __future__ import annotations

from typing import Any

import torch

from em_eval.training.run.rollout import generate_rollouts, response_token_stats


@torch.no_grad()
def heldout_entropy(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    max_new_tokens: int = 64,
    greedy: bool = True,
    temperature: float = 1.0,
    batch_size: int = 8,
) -> float:
    """Mean full-vocabulary entropy (nats, at ``temperature``) over the response tokens the
    model writes for ``prompts`` (token id lists); greedy responses make it deterministic."""
    total, count = 0.0, 0
    for first in range(0, len(prompts), batch_size):
        batch = generate_rollouts(
            model,
            tokenizer,
            prompts[first : first + batch_size],
            samples=1,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            greedy=greedy,
        )
        was_training = model.training
        model.eval()
        _, entropy = response_token_stats(model, batch, temperature=temperature)
        model.train(was_training)
        total += (entropy * batch.response_mask).sum().item()
        count += int(batch.response_mask.sum())
    return total / max(count, 1)
