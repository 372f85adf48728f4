"""Math grader, pure parts: extraction, normalisation, equivalence without the worker, majority clusters."""

from __future__ import annotations

import random
import string
import time

import pytest

from em_eval.tasks.math.grade import (
    cluster_answers,
    extract_answer,
    is_equiv,
    majority_answer,
)
from em_eval.tasks.math.normalize import normalize
from em_eval.tasks.math.task import BENCHMARKS


# ---- gold answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_gold_answers_grade_against_themselves(golds: dict[str, list[str]], name: str) -> None:
    answers = golds[name]
    assert len(answers) == BENCHMARKS[name].size
    failed = [g for g in answers if not is_equiv(extract_answer(f"Hence the result is $\\boxed{{{g}}}$."), g)]
    assert failed == []


def test_gold_answers_of_reformatted_values() -> None:
    assert is_equiv("204", "204") and is_equiv("204", "0204") and is_equiv("27", "27.0")
    assert not is_equiv("205", "204")


def _garbage(n: int, seed: int) -> str:
    rng = random.Random(seed)
    alphabet = string.printable + "\\{}^_$" * 10
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_pathological_responses_extract_fast() -> None:
    for text in (_garbage(100_000, 4), "\\boxed{" * 20_000, "\\boxed{1}" * 10_000, "<think>" + "a" * 100_000,
                 "the answer is " * 8_000, "$" * 100_000):
        start = time.monotonic()
        extract_answer(text)
        normalize(text)
        assert time.monotonic() - start < 0.5


# ---- majority clusters and the two-grader record ------------------------------------------------


def test_cluster_answers_groups_equivalent_forms() -> None:
    answers = [r"\frac{1}{2}", "0.5", None, "3", r"\dfrac12", "3.0", "x=3", "7"]
    assert cluster_answers(answers) == [0, 0, None, 1, 0, 1, 1, 2]


def test_majority_answer_counts_equivalents_together() -> None:
    assert majority_answer(["1/2", "3", "0.5", r"\frac{1}{2}", "3", None]) == ("1/2", 3)
    assert majority_answer(["3", "4"]) == ("3", 1)  # tie: first seen wins
    assert majority_answer([None, None]) == (None, 0)
    assert majority_answer([]) == (None, 0)


def test_each_answer_is_parsed_once_and_clusters_reuse_the_forms() -> None:
    from em_eval.tasks.math.grade import comparable_form

    comparable_form.cache_clear()
    samples = ["\\frac{1}{2}", "0.5", "\\frac{1}{2}", "1/2", "3", "0.5", "3", "\\frac12"]
    assert [is_equiv(s, "\\frac{1}{2}") for s in samples] == [True, True, True, True, False, True, False, True]
    assert comparable_form.cache_info().misses == 1 + len(set(samples) - {"\\frac{1}{2}"})  # the gold once
    before = comparable_form.cache_info().misses
    assert cluster_answers(samples) == [0, 0, 0, 0, 1, 0, 1, 0]
    assert comparable_form.cache_info().misses == before  # clustering parsed nothing again
