"""Target ``HFLM``, ``VLLM`` and ``LocalCompletionsAPI.generate_until`` (lm-eval's stock ``hf``, ``vllm`` and
API models).

Those backends would pass our ``em_multistep`` marker or protocol keys on as unknown generate
kwargs (a crash deep in transformers, or a silently one-step run). The guard makes them refuse
such requests with a message naming ``--model em_inf``/``em_inf_vllm``/``em_inf_api``; every other request
passes through unchanged. em-eval's backends never reach the guarded method: their ``generate_until``
replaces lm-eval's.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

# lm-eval module -> its backend class
PLAIN_BACKENDS = {
    "lm_eval.models.huggingface": "HFLM",
    "lm_eval.models.vllm_causallms": "VLLM",
    "lm_eval.models.openai_completions": "LocalCompletionsAPI",  # and local-chat-completions, openai-*
}
_GUARDED = "_em_eval_multistep_guard"


def guard(backend_cls: Any, refuse: Callable[[list[Any], str], None]) -> None:
    """Make ``backend_cls.generate_until`` call ``refuse(requests, class name)`` first (idempotent)."""
    original = backend_cls.generate_until
    if getattr(original, _GUARDED, False):
        return

    @functools.wraps(original)
    def generate_until(self: Any, requests: list[Any], *args: Any, **kwargs: Any) -> list[str]:
        refuse(requests, type(self).__name__)
        return original(self, requests, *args, **kwargs)

    setattr(generate_until, _GUARDED, True)
    backend_cls.generate_until = generate_until
