r"""The recorded bank of issue 23 (``tests/data/math_grader_bank.json``): hand-labelled answer pairs with the
verdicts of math-verify and of Qwen2.5-Math's ``math_equal`` on the same strings.

Targets: accuracy >= 0.99 against the hand labels and no false positive (a wrong answer accepted); each kind of
pair is checked on its own, so a kind that regresses names itself. The figures quoted in the math
card are checked against the recorded data.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from em_eval.tasks.math.grade import is_equiv

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "tests" / "data" / "math_grader_bank.json"


def _cases() -> list[dict]:
    return json.loads(BANK.read_text(encoding="utf-8"))["cases"]


@lru_cache(maxsize=1)
def _our_verdicts() -> tuple[bool, ...]:
    return tuple(is_equiv(c["pred"], c["gold"]) for c in _cases())


def _score(verdicts, cases) -> tuple[float, int]:
    """(accuracy against the hand labels, false positives)."""
    right = sum(v == c["label"] for v, c in zip(verdicts, cases))
    return right / len(cases), sum(v and not c["label"] for v, c in zip(verdicts, cases))


def test_bank_is_new_large_and_balanced() -> None:
    from test_grading_math_cases import EQUIV_CASES

    cases = _cases()
    pairs = [(c["pred"], c["gold"]) for c in cases]
    assert len(cases) >= 200 and len(set(pairs)) == len(pairs)
    assert not set(pairs) & {(p, g) for p, g, _ in EQUIV_CASES}, "the bank holds pairs beyond today's tests"
    assert sum(not c["label"] for c in cases) >= len(cases) // 3
    assert all(isinstance(c[k], bool) for c in cases for k in ("label", "math_verify", "qwen_math_equal"))


@pytest.mark.parametrize("kind", sorted({c["kind"] for c in _cases()}))
def test_every_pair_of_a_kind(kind: str) -> None:
    wrong = [
        (c["pred"], c["gold"], c["label"])
        for c, v in zip(_cases(), _our_verdicts())
        if c["kind"] == kind and v != c["label"]
    ]
    assert wrong == []


def test_accuracy_and_no_false_positive() -> None:
    accuracy, false_positives = _score(_our_verdicts(), _cases())
    assert accuracy >= 0.99
    assert false_positives == 0


def test_documented_agreement_matches_the_record() -> None:
    cases = _cases()
    figures = {"em-eval": _score(_our_verdicts(), cases)}
    for key, name in (("math_verify", "math-verify"), ("qwen_math_equal", "math_equal")):
        figures[name] = _score([c[key] for c in cases], cases)
    expected = [f"{len(cases)} hand-labelled pairs"] + [
        f"{name} {accuracy:.3f} ({fp} false positive{'s' if fp != 1 else ''})"
        for name, (accuracy, fp) in figures.items()
    ]
    card = re.sub(r"\s+", " ", (ROOT / "tasks" / "math" / "README.md").read_text(encoding="utf-8"))
    assert all(e in card for e in expected), expected
