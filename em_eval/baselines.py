"""Inference-time baselines selectable as model args (self-consistency, iterative refinement).

Backends pop the arguments with :func:`pop_method_args` and route generation through
:func:`generate_with_method`. (The methods themselves are added by the baselines work.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

PlainGenerate = Callable[[list[Any]], list[str]]


@dataclass(frozen=True)
class DecodeMethod:
    """Which inference-time method wraps plain generation."""

    name: str = "plain"


def pop_method_args(args: dict[str, Any]) -> DecodeMethod:
    """Remove the method's model args from ``args`` and return the selected method."""
    return DecodeMethod()


def generate_with_method(method: DecodeMethod, requests: list[Any], plain: PlainGenerate) -> list[str]:
    """Generate ``requests`` with ``method`` built on ``plain`` generation."""
    return plain(requests)
