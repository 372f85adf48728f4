"""Rollouts through HF ``generate`` and the per-token statistics of a batch of them (vLLM rollouts:
``vllm_rollout.py``, same :class:`Rollouts`).

A rollout batch is one rectangle: prompts left-padded to a common length ``P``, responses
right-padded to ``R``. Every response therefore starts at column ``P``, so one forward pass
with ``logits_to_keep=R+1`` gives the logits that predicted every response token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from em_eval.models.stop_tokens import stop_token_ids
from em_eval.training.objective import token_entropy, token_log_probs

# Plain sampling, as the paper's vLLM rollouts (top_p 1, top_k -1): these override any
# filtering a model's own generation_config would add (P4 in em_methods.md).
NEUTRAL_SAMPLING = {
    "top_k": 0,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
}


@dataclass(frozen=True)
class Rollouts:
    """Prompt + response token ids of a batch; rows of one prompt are contiguous."""

    input_ids: torch.Tensor  # [B, P + R]
    attention_mask: torch.Tensor  # [B, P + R]: prompt padding and tokens after the stop are 0
    response_mask: torch.Tensor  # [B, R] bool: response tokens up to and including the stop token
    prompt_len: int  # P
    texts: list[str]  # decoded responses (special tokens skipped)
    sampler_log_probs: torch.Tensor | None = None  # [B, R]: the sampling engine's log-probs (vLLM), 0 past the end

    @property
    def response_ids(self) -> torch.Tensor:
        return self.input_ids[:, self.prompt_len :]

    @property
    def position_ids(self) -> torch.Tensor:
        return (self.attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, start: int, stop: int) -> Rollouts:
        """A contiguous slice of rows (a micro-batch)."""
        sampler = None if self.sampler_log_probs is None else self.sampler_log_probs[start:stop]
        return Rollouts(
            self.input_ids[start:stop],
            self.attention_mask[start:stop],
            self.response_mask[start:stop],
            self.prompt_len,
            self.texts[start:stop],
            sampler,
        )


def left_pad(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ``input_ids`` and ``attention_mask``."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, tokens in enumerate(prompts):
        ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        mask[row, width - len(tokens) :] = 1
    return ids.to(device), mask.to(device)


def response_mask(responses: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """True up to and including the first stop token of each row."""
    is_stop = torch.isin(responses, torch.tensor(stop_ids, device=responses.device))
    stops_before = is_stop.long().cumsum(-1) - is_stop.long()
    return stops_before == 0


@torch.no_grad()
def generate_rollouts(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    greedy: bool = False,
) -> Rollouts:
    """``samples`` responses per prompt from ``model`` (unwrapped), sampled at ``temperature``."""
    stop_ids = stop_token_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    input_ids, attention = left_pad(prompts, pad_id, device)
    was_training = model.training
    model.eval()
    sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature, **NEUTRAL_SAMPLING}
    try:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new_tokens,
            num_return_sequences=samples,
            pad_token_id=pad_id,
            eos_token_id=stop_ids,
            **sampling,
        )
    finally:
        model.train(was_training)
    prompt_len = input_ids.shape[1]
    responses = out[:, prompt_len:]
    mask = response_mask(responses, stop_ids)
    full_mask = torch.cat([attention.repeat_interleave(samples, 0), mask.long()], dim=1)
    texts = tokenizer.batch_decode([r[m] for r, m in zip(responses, mask)], skip_special_tokens=True)
    return Rollouts(out, full_mask, mask, prompt_len, texts)


def response_token_stats(
    model: Any, batch: Rollouts, *, temperature: float = 1.0, entropy: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-response-token log-probs and full-vocabulary entropies ``[B, R]`` (fp32).

    Differentiable unless called under ``no_grad``; positions outside ``response_mask`` hold
    values that must be masked out.
    """
    logits = response_logits(model, batch)
    log_probs = token_log_probs(logits, batch.response_ids, temperature)
    return log_probs, (token_entropy(logits, temperature) if entropy else None)


def response_logits(model: Any, batch: Rollouts) -> torch.Tensor:
    """The logits that predicted each response token, ``[B, R, V]`` (one forward pass)."""
    width = batch.response_ids.shape[1]
    return model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=width + 1,
        use_cache=False,
    ).logits[:, :-1]
