"""UGPhysics: the numeric / true-false / multiple-choice judge, units, multiple answers,
and the task's breakdown metrics (no grading worker here: see tests/integration)."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import pytest

from em_eval.records import decode_records
from em_eval.tasks.ugphysics import task
from em_eval.tasks.ugphysics.calls import in_process
from em_eval.tasks.ugphysics.judge import gold_answers, judge, number_of
from em_eval.tasks.ugphysics.task import TYPES, documents, mean_of_members, process_results


@pytest.fixture(scope="module")
def docs(data_dir) -> list[dict]:
    return documents("all")


def test_both_languages_are_there_with_every_answer_type(docs) -> None:
    assert len(docs) == 372 and len(documents("en")) == len(documents("zh")) == 186
    assert {d["language"] for d in docs} == {"en", "zh"}
    assert {d["type_group"] for d in docs} == set(TYPES)
    with pytest.raises(ValueError, match="all, en or zh"):
        documents("fr")


def _scientific(value: Fraction) -> str:
    mantissa, exponent = f"{float(value):.6e}".split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def test_numeric_answers_pass_within_one_percent_and_fail_far_beyond(docs) -> None:
    single = [d for d in docs if d["answer_type"] == "NV" and len(gold_answers(d["answers"])) == 1]
    values = [(d, number_of(gold_answers(d["answers"])[0])) for d in single]
    numeric = [(d, v) for d, v in values if v]
    assert len(numeric) >= 0.9 * len(single), "most NV golds must parse as numbers"
    for d, value in numeric:
        near, far = _scientific(value * Fraction(1005, 1000)), _scientific(value * Fraction(12, 10))
        assert judge(rf"So the final answer is \boxed{{{near}}}.", d).correct, (d["answers"], near)
        assert not judge(rf"So the final answer is \boxed{{{far}}}.", d).correct, (d["answers"], far)


def test_units_inside_the_box_do_not_count() -> None:
    doc = {"answers": r"\boxed{4.88 \times 10^{23}}", "answer_type": "NV", "unit": r"\text{m}^{-3}"}
    assert judge(r"\boxed{4.88 \times 10^{23} \text{m}^{-3}}", doc).correct
    assert judge(r"\boxed{4.88e23}(\text{m}^{-3})", doc).correct
    assert judge(r"\boxed{48.8 \%}", {"answers": r"\boxed{48.8\%}", "answer_type": "NV", "unit": r"\%"}).correct


def test_multiple_answers_match_in_order_from_one_box_or_several() -> None:
    doc = {"answers": r"\boxed{281, 761}", "answer_type": "NV, NV", "unit": r"\text{K}, \text{K}"}
    assert judge(r"so \boxed{281, 761}", doc).correct
    assert judge(r"T_1 = \boxed{280} and T_2 = \boxed{760}", doc).correct  # the last two boxes, one each
    assert judge(r"\boxed{761, 281}", doc).correct  # the other order: matched as the paper does, as a multiset
    verdict = judge(r"\boxed{281}", doc)
    assert not verdict.correct and verdict.parts == (True, False)  # one answer short
    assert judge("no box at all: 281, 761", doc).predicted is None
    labelled = {
        "answers": r"\boxed{n = 1 \times 10^{16}, p = 2.3 \times 10^{4}}",
        "answer_type": "NV, NV",
        "unit": None,
    }
    assert judge(r"\boxed{n = 1.0 \times 10^{16}, p = 2.31 \times 10^{4}}", labelled).correct


def test_true_false_and_multiple_choice_are_exact_options() -> None:
    tf = {"answers": r"\boxed{No}", "answer_type": "TF", "unit": None}
    assert judge(r"\boxed{No}", tf).correct and judge(r"\boxed{\text{False}}", tf).correct
    assert judge(r"\boxed{错误}", tf).correct and judge(r"\boxed{不能}", tf).correct
    assert not judge(r"\boxed{Yes}", tf).correct and not judge(r"\boxed{maybe}", tf).correct
    mc = {"answers": r"\boxed{b}", "answer_type": "\\\nMC", "unit": None}
    assert judge(r"\boxed{(B)}", mc).correct and judge(r"\boxed{\text{b}}", mc).correct
    assert not judge(r"\boxed{C}", mc).correct and not judge(r"\boxed{B, C}", mc).correct
    numbered = {"answers": r"\boxed{1, 2}", "answer_type": "MC", "unit": None}
    assert judge(r"\boxed{1, 2}", numbered).correct and judge(r"\boxed{2, 1}", numbered).correct  # a set of options
    assert not judge(r"\boxed{1}", numbered).correct and not judge(r"\boxed{1, 3}", numbered).correct


def _judged(doc: dict, response: str) -> tuple[dict, list[dict]]:
    """process_results' metrics and the judge's records, as lm-eval runs them: the task's filter on the one
    request's responses, then process_results on its output."""
    filtered = task.judge_responses([[response]], [doc])
    return process_results(doc, filtered), decode_records(filtered)


def test_process_results_reports_accuracy_by_type_and_language(docs, monkeypatch) -> None:
    monkeypatch.setattr(task, "judge", functools.partial(judge, call=in_process))  # sympy here, not in the worker
    monkeypatch.setattr(task, "paper_verdict", functools.partial(task.paper_verdict, call=in_process))
    doc = next(d for d in docs if d["language"] == "zh" and d["answer_type"] == "TF")
    right, (right_record,) = _judged(doc, f"所以最终答案是{doc['answers']}。")
    wrong, _ = _judged(doc, "所以最终答案是\\boxed{42}。")
    assert right["accuracy"] == 1.0 and wrong["accuracy"] == 0.0 and right_record["correct"] is True
    assert right["accuracy_paper"] == 1.0 and wrong["accuracy_paper"] == 0.0 and right["graders_disagree"] == 0.0
    upper, (upper_record,) = _judged({**doc, "answers": "\\boxed{b}", "answer_type": "MC"}, "\\boxed{B}")
    assert upper["accuracy"] == 1.0 and upper["accuracy_paper"] == 0.0 and upper_record["disagree"] is True
    assert upper_record == {"correct": True, "parts": [True], "predicted": ["B"], "paper": False, "disagree": True}
    assert not {"judged"} & set(right) and {type(right[k]) for k in ("accuracy", "graders_disagree")} == {float}
    with pytest.raises(ValueError, match="filter_list must end with its grading filter"):
        process_results(doc, ["\\boxed{B}"])  # lm-eval's default filter instead of the task's judge
    assert right["acc_TF"] == (True, 1.0) and right["acc_NV"] == (False, 1.0) and right["acc_zh"] == (True, 1.0)
    assert mean_of_members([right["acc_TF"], wrong["acc_TF"], right["acc_NV"]]) == 0.5
    assert mean_of_members([(True, 1.0), (False, 0.0)]) == 1.0 and math.isnan(mean_of_members([(False, 1.0)]))
