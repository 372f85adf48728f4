"""What a task tells the decode methods, from its YAML ``metadata`` (em-eval's tasks declare all three):

* ``refinement_rounds``: the paper's number of refinement rounds for the task (``decode_n`` overrides it);
* ``refinement_feedback``: what the next round is shown of a round's completion, a name in :data:`FEEDBACK`;
* ``sc_grouping``: how self-consistency decides that two samples agree, a name in :data:`SC_GROUPING`;
  ``none`` where the paper has no self-consistency (code tasks), and asking for it there is an error.

Names map to ``module:function`` targets (mostly in the tasks' own modules), imported when first used,
as :mod:`em_eval.decoding.multistep` does for its sessions. A task outside em-eval's ``tasks/`` folder, or
without a key, gets :data:`DEFAULTS` for it, with one warning.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from em_eval.user_errors import ArgumentValueError

log = logging.getLogger(__name__)

# feedback(completion, eos_token) -> the text between the previous round's prompt and the repeated question
Feedback = Callable[[str, str], str]
# votes(samples, doc) -> (each sample's answer, for the record; how many samples agree with each)
Votes = Callable[[Sequence[str], dict], tuple[list[Any], list[int]]]

FEEDBACK: dict[str, str] = {
    "completion": "em_eval.decoding.task_hooks:completion_feedback",
    "code_block": "em_eval.tasks.leetcode.extract:refinement_feedback",
    "scicode_code": "em_eval.tasks.scicode.extract:refinement_feedback",
}
EOS_FEEDBACK = ("code_block",)  # feedback that ends the model's turn with the tokenizer's EOS
SC_GROUPING: dict[str, str | None] = {
    "math": "em_eval.tasks.math.consistency:sc_votes",
    "ugphysics": "em_eval.tasks.ugphysics.consistency:sc_votes",
    "none": None,
}
DEFAULTS = {"refinement_rounds": 3, "refinement_feedback": "completion", "sc_grouping": "math"}
KEYS = tuple(DEFAULTS)


@dataclass(frozen=True)
class TaskDecoding:
    """A task's decode-method settings; ``declared`` names the keys its metadata set."""

    task: str
    refinement_rounds: int
    refinement_feedback: str
    sc_grouping: str
    declared: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key, value, known in (
            ("refinement_feedback", self.refinement_feedback, FEEDBACK),
            ("sc_grouping", self.sc_grouping, SC_GROUPING),
        ):
            if value not in known:
                raise ArgumentValueError(
                    f"task {self.task}: metadata {key}={value!r} is not one of {', '.join(known)}; fix the task's YAML"
                )
        if not isinstance(self.refinement_rounds, int) or self.refinement_rounds < 1:
            raise ArgumentValueError(
                f"task {self.task}: metadata refinement_rounds={self.refinement_rounds!r} "
                "must be an integer >= 1; fix the task's YAML"
            )

    def feedback(self) -> Feedback:
        return resolve(FEEDBACK[self.refinement_feedback])

    def votes(self) -> Votes | None:
        """The grouping function, or None where self-consistency is undefined for the task."""
        target = SC_GROUPING[self.sc_grouping]
        return resolve(target) if target else None


def completion_feedback(completion: str, eos_token: str) -> str:
    """Math and UGPhysics: the whole completion, then a blank line (EM_PT ``evaluate_math.py:243``,
    ``Qwen25-Math/math_eval.py:506``, ``UGPhysics/codes/generate_open.py:212``)."""
    return completion + "\n\n"


def resolve(target: str) -> Any:
    """The object named by ``module:name``."""
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def task_decoding(task: str | None) -> TaskDecoding:
    """The settings task ``task`` declares, with :data:`DEFAULTS` for what it does not (warned once)."""
    metadata = _metadata(str(task))
    declared = tuple(k for k in KEYS if k in metadata)
    if len(declared) < len(KEYS):
        _warn_defaults(str(task), tuple(k for k in KEYS if k not in declared))
    return TaskDecoding(str(task), **{k: metadata.get(k, DEFAULTS[k]) for k in KEYS}, declared=declared)


@functools.lru_cache(maxsize=None)
def _warn_defaults(task: str, missing: tuple[str, ...]) -> None:
    log.warning(
        "task %s declares no %s in its metadata: decode methods use em-eval's defaults (%s)",
        task,
        ", ".join(missing),
        ", ".join(f"{k}={DEFAULTS[k]}" for k in missing),
    )


def task_metadata(task: str) -> dict[str, Any]:
    """The ``metadata`` of one of em-eval's tasks (``{}`` for any other task)."""
    return _metadata(str(task))


def _metadata(task: str) -> dict[str, Any]:
    entry = _our_tasks().get(task)
    metadata = (entry.cfg or {}).get("metadata") if entry is not None else None
    return metadata if isinstance(metadata, dict) else {}


@functools.lru_cache(maxsize=1)
def _our_tasks() -> dict[str, Any]:
    """lm-eval's index of em-eval's ``tasks/`` folder (task name -> entry with the merged YAML)."""
    from lm_eval.tasks._index import TaskIndex

    from em_eval.asset_paths import asset_dir

    return TaskIndex.build([asset_dir("tasks")])
