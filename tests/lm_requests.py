"""lm-eval ``generate_until`` requests for backend and decode-method tests (task "t" unless named)."""

from __future__ import annotations

from lm_eval.api.instance import Instance

SAMPLE = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 8}


def make_requests(prompts: list[str], gen_kwargs: dict = SAMPLE, task: str = "t") -> list[Instance]:
    return [
        Instance("generate_until", {"i": i}, (p, dict(gen_kwargs)), idx=0, metadata=(task, i, 1))
        for i, p in enumerate(prompts)
    ]
