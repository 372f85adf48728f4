"""Sampling from the request alone under transformers' ``generate``.

transformers 5.x fills every generation setting a call leaves unset from ``model.generation_config``
(Qwen2.5-7B-Instruct's adds ``repetition_penalty=1.05``, ``top_k=20``, ``top_p=0.8``), then from its
global defaults (``top_k=50``), even when the call passes a ``GenerationConfig`` of its own (see
``GenerationMixin._prepare_generation_config``). vLLM, given explicit ``SamplingParams``, takes
only the model's EOS ids. So during ``generate`` the ``em_inf`` backend swaps in a neutral
``generation_config``: the model's special token ids and transformers' defaults, and a sampling
request that sets no ``top_k`` gets ``top_k=0`` (else transformers' default of 50 applies).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from transformers import GenerationConfig

TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
# What a generation config holds besides sampling: never reported as dropped sampling settings
NOT_SETTINGS = (
    "transformers_version",
    "_from_model_config",
    "use_cache",
    "return_dict_in_generate",
    "cache_implementation",
    "cache_config",
    "compile_config",
    "disable_compile",
)


def neutral_generation_config(model: Any) -> tuple[GenerationConfig, dict[str, Any]]:
    """The config to generate with (the model's token ids only) and what the model's would have added."""
    config = getattr(model, "generation_config", None) or GenerationConfig()
    keep = {k: getattr(config, k) for k in TOKEN_FIELDS if getattr(config, k, None) is not None}
    neutral = GenerationConfig(**keep)
    dropped = {
        k: v
        for k, v in config.to_diff_dict().items()
        if k not in keep and k not in NOT_SETTINGS and not k.startswith("output_")
    }
    return neutral, dropped


@contextlib.contextmanager
def sampling_from_kwargs_only(model: Any, neutral: GenerationConfig) -> Iterator[None]:
    """``model.generation_config`` is ``neutral`` inside the block (also the base model's of a PEFT
    model, whose ``generate`` reads the base model's)."""
    targets = [model, *([model.get_base_model()] if hasattr(model, "get_base_model") else [])]
    originals = [target.generation_config for target in targets]
    for target in targets:
        target.generation_config = neutral
    try:
        yield
    finally:
        for target, original in zip(targets, originals):
            target.generation_config = original
