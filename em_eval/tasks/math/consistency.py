"""Self-consistency's vote on math samples, as EM_PT's ``eval/utils/self_consistency_generator.py:87-129``:
each sample's final answer, two samples agree when their answers are equivalent (em-eval's math grader
in place of ``grade_answer`` / ``math_equal``), and a sample without an answer agrees only with itself."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from em_eval.tasks.math.grade import cluster_answers, extract_answer


def sc_votes(samples: Sequence[str], doc: dict) -> tuple[list[str | None], list[int]]:
    """Each sample's answer and the number of samples (itself included) that agree with it."""
    answers = [extract_answer(s) for s in samples]
    ids = cluster_answers(answers)
    counts = Counter(c for c in ids if c is not None)
    return answers, [counts[c] if c is not None else 1 for c in ids]
