"""SciCode's multi-step prompts, as ``scicode-bench/SciCode`` ``eval/scripts/gencode.py`` builds them.

Step k's prompt holds the earlier steps' descriptions (with their backgrounds in the
with-background variant) each followed by the model's own code for that step, then step k's
description and function header, then the problem's dependencies. The with-background
variant uses ``multistep_template.txt``; the other one ``background_comment_template.txt``,
which asks the model to write the background itself (upstream's names are swapped: its
``BACKGOUND_PROMPT_TEMPLATE`` is the multistep template).

Steps 13.6, 62.1 and 76.3 are never generated: their code is the pre-written
``eval_data/<step>.txt``, used whole. (Upstream extracts a single function from it with
``get_function_from_code`` and so drops the ``class`` wrappers of 13.6 and 62.1, which makes
problems 13 and 62 unsolvable; see sieval PR #42.)
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from em_eval.data import data_file, read_jsonl
from em_eval.tasks.scicode.extract import extract_scicode_code, strip_imports

PROTOCOL = "scicode-multistep"
PREWRITTEN_STEPS = frozenset({"13.6", "62.1", "76.3"})
SPLIT_FILES = {"dev": "scicode/problems_dev.jsonl", "test": "scicode/problems_all.jsonl"}


@lru_cache(maxsize=None)
def problems(split: str) -> tuple[dict[str, Any], ...]:
    """All problems of a split (``dev``: 15 with gold code; ``test``: 65)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown SciCode split {split!r}; use one of {', '.join(SPLIT_FILES)}")
    return tuple(read_jsonl(SPLIT_FILES[split]))


@lru_cache(maxsize=None)
def template(with_background: bool) -> str:
    name = "multistep_template.txt" if with_background else "background_comment_template.txt"
    return data_file(f"scicode/eval_data/{name}").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def prewritten_code(step_number: str) -> str:
    """The provided code of a pre-written step, import lines removed."""
    return strip_imports(data_file(f"scicode/eval_data/{step_number}.txt").read_text(encoding="utf-8"))


def is_generated(step: dict[str, Any]) -> bool:
    """Whether the model writes this step (all but the pre-written ones)."""
    return step["step_number"] not in PREWRITTEN_STEPS


def _description(step: dict[str, Any], with_background: bool) -> str:
    if with_background:
        return step["step_description_prompt"] + "\n" + step["step_background"]
    return step["step_description_prompt"]


def step_prompt(problem: dict[str, Any], index: int, previous_code: list[str], with_background: bool) -> str:
    """The prompt for step ``index`` (0-based) given the code of steps ``0..index-1``."""
    steps = problem["sub_steps"]
    if len(previous_code) != index:
        raise ValueError(
            f"step {index + 1} of problem {problem['problem_id']} needs the code of {index} "
            f"earlier steps, got {len(previous_code)}"
        )
    lines: list[str] = []
    for step, code in zip(steps[:index], previous_code):
        lines += [_description(step, with_background), code, "------"]
    current = steps[index]
    next_step = [_description(current, with_background), f"{current['function_header']}\n\n{current['return_line']}"]
    return (
        template(with_background)
        .format(
            problem_steps_str="\n\n".join(lines[:-1]),
            next_step_str="\n\n".join(next_step),
            dependencies=problem["required_dependencies"],
        )
        .strip()
    )


class ScicodeSession:
    """One problem's generation: yields each generated step's prompt, records the model's answer."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.problem = json.loads(doc["problem_json"])
        self.with_background = bool(doc["with_background"])
        self.codes: list[str] = []
        self.steps: list[dict[str, Any]] = []

    def next_prompt(self) -> str | None:
        """Prompt of the next step the model writes, or None when the problem is done."""
        sub_steps = self.problem["sub_steps"]
        while len(self.codes) < len(sub_steps) and not is_generated(sub_steps[len(self.codes)]):
            number = sub_steps[len(self.codes)]["step_number"]
            self.codes.append(prewritten_code(number))
            self.steps.append({"step": number, "source": "prewritten"})
        if len(self.codes) == len(sub_steps):
            return None
        return step_prompt(self.problem, len(self.codes), self.codes, self.with_background)

    def steps_to_generate(self) -> int:
        """How many steps the model writes (the others are prewritten)."""
        return sum(1 for step in self.problem["sub_steps"] if is_generated(step))

    def record(self, output: str) -> None:
        """Store the model's answer to the prompt :meth:`next_prompt` just returned."""
        number = self.problem["sub_steps"][len(self.codes)]["step_number"]
        self.codes.append(extract_scicode_code(output))
        self.steps.append({"step": number, "source": "model", "output": output})

    def result(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "problem_id": self.problem["problem_id"],
            "with_background": self.with_background,
            "steps": self.steps,
        }


def first_prompt(doc: dict[str, Any]) -> str:
    """The prompt of a problem's first generated step (the task's ``doc_to_text``)."""
    prompt = ScicodeSession(doc).next_prompt()
    if prompt is None:
        raise ValueError(f"SciCode problem {doc['problem_id']} has no step to generate")
    return prompt
