"""Where EM-INF acts in a response, token by token.

At each step EM-INF adjusts the next-token distribution the model gives for the prefix. One
forward pass over context + response yields those distributions for every response token at
once, so the adjustment replays on them exactly as it ran during decoding (up to batching
numerics): :func:`replay` on logits (pure), :func:`trace_response` on a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from em_eval.em_inf.settings import EmSettings


@dataclass(frozen=True)
class TokenStep:
    """One response token and what the method did to the distribution it was drawn from."""

    text: str
    entropy_before: float  # nats, temperature 1
    entropy_after: float
    adjusted: bool  # the method changed this distribution (EM-INF: entropy above its threshold)
    p_before: float  # probability of this token when sampling at the run's temperature, unadjusted
    p_after: float  # ... after the adjustment
    tv: float  # total-variation distance between the two sampling distributions


def replay(
    logits: torch.Tensor, token_ids: torch.Tensor, settings: EmSettings, temperature: float
) -> dict[str, torch.Tensor]:
    """Per-row stats of ``settings`` applied to ``[rows, vocab]`` logits whose sampled tokens are
    ``token_ids`` ``[rows]``: entropies (temperature 1), whether a row was adjusted, the sampled
    token's probability at ``temperature`` before and after, and their total-variation distance."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to compare sampling distributions (got {temperature})")
    logits = logits.float()
    out, stats = settings.transform(logits.clone())
    before = torch.softmax(logits / temperature, -1)
    after = torch.softmax(out / temperature, -1)
    picked = token_ids.long()[:, None]
    adjusted = stats.get("adjusted", torch.zeros(logits.shape[0], dtype=torch.bool))
    return {
        "entropy_before": stats["entropy_before"],
        "entropy_after": stats["entropy_after"],
        "adjusted": adjusted,
        "p_before": before.gather(1, picked)[:, 0],
        "p_after": after.gather(1, picked)[:, 0],
        "tv": 0.5 * (before - after).abs().sum(-1),
    }


@torch.no_grad()
def trace_response(
    model: Any,
    tokenizer: Any,
    context: str,
    response: str,
    settings: EmSettings,
    temperature: float,
    max_tokens: int = 256,
) -> list[TokenStep]:
    """The first ``max_tokens`` tokens of ``response`` (re-tokenized) after ``context`` (the exact
    prompt string the model saw), each with :func:`replay`'s stats."""
    prompt = tokenizer(context, add_special_tokens=False)["input_ids"]
    answer = tokenizer(response, add_special_tokens=False)["input_ids"][:max_tokens]
    if not answer:
        return []
    ids = torch.tensor([prompt + answer], device=next(model.parameters()).device)
    logits = model(input_ids=ids, logits_to_keep=len(answer) + 1).logits[0, :-1]
    stats = replay(logits, ids[0, len(prompt) :], settings, temperature)
    rows = {k: v.cpu().tolist() for k, v in stats.items()}
    texts = [tokenizer.decode(answer[: i + 1])[len(tokenizer.decode(answer[:i])) :] for i in range(len(answer))]
    return [
        TokenStep(
            texts[i],
            rows["entropy_before"][i],
            rows["entropy_after"][i],
            bool(rows["adjusted"][i]),
            rows["p_before"][i],
            rows["p_after"][i],
            rows["tv"][i],
        )
        for i in range(len(answer))
    ]
