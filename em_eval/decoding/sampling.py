"""lm-eval's rule for whether generation samples: ``do_sample`` when it is given, else temperature > 0."""

from __future__ import annotations

from typing import Any


def is_sampling(gen_kwargs: dict[str, Any]) -> bool:
    """Whether these generation kwargs sample (rather than decode greedily)."""
    if gen_kwargs.get("do_sample") is not None:
        return bool(gen_kwargs["do_sample"])
    return float(gen_kwargs.get("temperature") or 0.0) > 0
