"""Self-consistency's vote on UGPhysics samples, as EM_PT's ``UGPhysics/codes/self_consistency_utils.py:9-47``:
every ordered pair of samples (a sample with itself included) is judged by the UGPhysics judge, one sample's
boxed answers standing as the other's gold; a sample's votes are the samples it agrees with, so a sample
without a boxed answer gets none (the paper's ``auto_judge_for_self_consistency`` returns False for it).

Departure: the judge is em-eval's (:mod:`em_eval.tasks.ugphysics.judge`, numbers within its 1e-2 relative
precision); the paper's self-consistency called its judge with ``precision=1e-8``.
"""

from __future__ import annotations

from typing import Sequence

from em_eval.tasks.ugphysics.judge import gold_answers, judge, predicted_answers


def sc_votes(samples: Sequence[str], doc: dict) -> tuple[list[list[str] | None], list[int]]:
    """Each sample's boxed answers and the number of samples whose answers it matches."""
    count = len(gold_answers(str(doc["answers"])))
    answers = [predicted_answers(s, count) for s in samples]
    memo: dict[tuple, bool] = {}

    def agree(mine: list[str] | None, theirs: list[str] | None) -> bool:
        if mine is None or theirs is None:
            return False
        key = (tuple(mine), tuple(theirs))
        if key not in memo:
            memo[key] = same_answer(mine, theirs, doc)
        return memo[key]

    return answers, [sum(agree(mine, theirs) for theirs in answers) for mine in answers]


def same_answer(mine: list[str], theirs: list[str], doc: dict) -> bool:
    """Whether answers ``mine`` match ``theirs`` under the item's judge (its answer types and unit): the one
    place self-consistency calls the judge."""
    return judge("\\boxed{" + ", ".join(mine) + "}", {**doc, "answers": "\\boxed{" + ", ".join(theirs) + "}"}).correct
