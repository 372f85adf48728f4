"""UGPhysics' judge with the math grader behind it (its sympy worker runs in a process): every gold
answer grades correct against itself, and symbolic, equation and interval answers are compared
by meaning, not by text."""

from __future__ import annotations

from em_eval.tasks.ugphysics.judge import judge
from em_eval.tasks.ugphysics.task import documents, judge_responses, process_results


def test_every_gold_answer_grades_correct_against_itself(data_dir) -> None:
    docs = documents("all")
    judged = judge_responses([[f"So the final answer is {d['answers']}."] for d in docs], docs)  # as lm-eval runs it
    wrong = [d["answers"] for d, out in zip(docs, judged) if process_results(d, [out])["accuracy"] != 1.0]
    assert len(docs) == 372 and wrong == []


def test_expressions_equations_and_intervals_by_meaning() -> None:
    ex = {"answers": r"\boxed{3 k T}", "answer_type": "EX", "unit": None}
    assert judge(r"\boxed{3kT}", ex).correct and judge(r"\boxed{kT \cdot 3}", ex).correct
    assert not judge(r"\boxed{2 k T}", ex).correct
    eq = {"answers": r"\boxed{\nu = \frac{2eV}{h}}", "answer_type": "EQ", "unit": None}
    assert judge(r"\boxed{\nu = 2 e V / h}", eq).correct and not judge(r"\boxed{\nu = \frac{eV}{h}}", eq).correct
    interval = {"answers": r"\boxed{(0, \frac{1}{2}]}", "answer_type": "IN", "unit": None}
    assert judge(r"\boxed{(0, 0.5]}", interval).correct and not judge(r"\boxed{(0, 0.5)}", interval).correct
    mixed = {
        "answers": r"\boxed{\Delta p(x)=(\Delta p)_{0} e^{-x/L_p}, 2.58 \times 10^{-3}}",
        "answer_type": "EX, NV",
        "unit": r"None, \mathrm{~A} / \mathrm{cm}^{2}",
    }
    assert judge(r"\boxed{\Delta p(x)=(\Delta p)_{0} e^{-x/L_p}, 2.6 \times 10^{-3}}", mixed).correct
