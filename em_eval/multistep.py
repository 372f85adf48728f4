"""Multi-step generation (SciCode): requests whose later prompts depend on earlier outputs.

Backends call :func:`generate_until_with_steps` from ``generate_until``. Requests that are
not multi-step go straight to ``plain``. (The SciCode protocol is added by the code-tasks work.)
"""

from __future__ import annotations

from typing import Any, Callable

PlainGenerate = Callable[[list[Any]], list[str]]


def generate_until_with_steps(requests: list[Any], plain: PlainGenerate) -> list[str]:
    """Generate every request; multi-step ones step by step, batched across problems."""
    return plain(requests)
