"""lm-eval ``generate_until`` requests for backend and decode-method tests (task "t" unless named), and a
stand-in for lm-eval's cache hook."""

from __future__ import annotations

import copy

from lm_eval.api.instance import Instance

SAMPLE = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 8}


def make_requests(prompts: list[str], gen_kwargs: dict = SAMPLE, task: str = "t") -> list[Instance]:
    return [
        Instance("generate_until", {"i": i}, (p, dict(gen_kwargs)), idx=0, metadata=(task, i, 1))
        for i, p in enumerate(prompts)
    ]


class RecordingHook:
    """Stands in for lm-eval's CacheHook: what ``generate_until`` would cache, in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, str]] = []

    def add_partial(self, attr: str, req: tuple, res: str) -> None:
        self.calls.append((attr, copy.deepcopy(req), res))
