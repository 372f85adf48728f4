r"""``accuracy_paper``: the verdict of the paper's UGPhysics judge, reproduced (EM_PT cafe72e
``eval/UGPhysics/codes/judge.py`` ``Judger(strict_extract=True).auto_judge`` at precision 1e-2, ``eval.py``).

It never reads ``answer_type``. The gold and the response are extracted and split alike
(:mod:`~em_eval.tasks.ugphysics.paper_text`); the counts must match; then the gold answers are taken in
turn (cycling) and each is matched to the first unused predicted answer that ``is_equal`` accepts, so
several answers match as a multiset. ``is_equal`` tries MC, TF, NV, IN, EX, EQ, TUP in that order, each on
the answers as written and then with physical constants deleted, each type within 5 s (the paper's
``signal.alarm(5)``); the symbolic types run in the grading worker
(:mod:`~em_eval.tasks.ugphysics.paper_sympy`,
through :mod:`~em_eval.tasks.ugphysics.calls`). No LLM judge (``--use_lm_judger`` is off).
"""

from __future__ import annotations

from em_eval.tasks.ugphysics import paper_text as text
from em_eval.tasks.ugphysics.calls import Call, in_worker
from em_eval.tasks.ugphysics.paper_text import PaperTextError

PRECISION = 1e-2  # eval.py --precision default; run.sh passes none
TYPE_TIMEOUT_S = 5.0
_TEXT_JUDGES = {"MC": text.judge_mc, "TF": text.judge_tf}


def paper_verdict(response: str, answers: str, call: Call = in_worker) -> bool:
    """The paper's verdict on ``response`` against an item's ``answers`` field (``call`` runs the sympy side)."""
    try:
        pred_text, gold_text = text.extract(response), text.extract(answers)
        if not pred_text:
            return False
        golds = text.prepared_answers(gold_text or "")
        preds = text.prepared_answers(pred_text)
    except (PaperTextError, IndexError):  # the paper's evaluation would have crashed: no point for it
        return False
    if len(preds) != len(golds):
        return False
    idx = -1
    while golds:
        idx = (idx + 1) % len(golds)
        gold = golds[idx]
        match = next((p for p in preds if is_equal(gold, p, call)), None)
        if match is None:
            return False
        golds.remove(gold)
        preds.remove(match)
    return True


def is_equal(gold: str, pred: str, call: Call = in_worker) -> bool:
    """Any answer type accepts ``pred`` for ``gold``, as written or with the constants deleted."""
    bare_pred, bare_gold = text.remove_constants(pred), text.remove_constants(gold)
    for kind in text.TYPE_ORDER:
        if kind in _TEXT_JUDGES:
            judge = _TEXT_JUDGES[kind]
            try:
                if judge(pred, gold) or judge(bare_pred, bare_gold):
                    return True
            except (PaperTextError, IndexError):
                pass
            continue
        if call("paper_type", [kind, pred, gold, bare_pred, bare_gold, PRECISION], TYPE_TIMEOUT_S):
            return True
    return False
