"""Which token ids end a response: the tokenizer's EOS (and PAD, where finished rows are padded)
plus every EOS id of the model's generation config."""

from __future__ import annotations

from typing import Any


def stop_token_ids(tokenizer: Any, model: Any, *, with_pad: bool = False) -> list[int]:
    """Sorted unique stop ids; ``with_pad`` adds the pad id (HF ``generate`` pads finished rows)."""
    ids = [tokenizer.eos_token_id] + ([tokenizer.pad_token_id] if with_pad else [])
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += eos if isinstance(eos, list) else [eos]
    return sorted({int(i) for i in ids if i is not None})
