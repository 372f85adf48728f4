r"""Math answer grading: extraction, equivalence, majority clusters, and the math-verify second opinion.

Public API:

* :func:`extract_answer` / :func:`extract`: the final answer of a response (see
  :mod:`em_eval.tasks.math.extract`), with an "unfinished output" flag.
* :func:`is_equiv`: our grader. Normalise (:mod:`~em_eval.tasks.math.normalize`), compare
  structure (tuples and intervals in order with matching brackets, sets and comma lists in any
  order, matrices by shape), then each scalar: same string, exact numbers
  (:mod:`~em_eval.tasks.math.numeric`), and finally sympy (:mod:`~em_eval.tasks.math.symbolic`)
  in a time-limited child process (:mod:`~em_eval.tasks.math.sympy_worker`). Never raises, never hangs.
* :func:`math_verify_equiv`: the math-verify package's verdict on the whole response, in the same worker.
* :func:`grade_response`: both graders on one response, as a JSON-ready record.
* :func:`cluster_answers` / :func:`majority_answer`: equivalence clusters for majority voting.

Decisions: a written percent sign makes ``50\%`` equal to both ``50`` and ``0.5`` (without a
percent sign, ``0.5`` and ``50`` differ); units, degrees and ``\text{}`` wrappers are dropped;
``x = 3`` equals ``3`` when the left side is a plain variable or ``f(x)``; decimals match within
a relative 1e-4 (the paper's graders) except against an integer gold, and never equal an exact
irrational gold (``0.7854`` is not ``\pi/4``); exact values compare exactly (``1 + 10^{-30}`` is not
1); ``\pi`` is symbolic, never 3.14. Labelled answers compare by label (``m=1, n=2`` is not
``m=2, n=1``) or, against an unlabelled gold, by value in order (``BC=6, CA=8`` is ``6, 8``);
conditions on one variable compare as intervals (``y > 3`` is ``(3,\infty)``, ``2 - y < 0`` is ``y > 2``);
a label written once covers its values (``k = 2, 4, 6`` is not ``k = 2, 4, 8``); solutions joined by "or",
"and" or ``;`` are a list, ``{1, 4, 9}`` a set; clock times compare as times, not ratios (``3:15`` is not
``11:55``).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

from em_eval.tasks.math.answer_forms import (
    as_intervals,
    clean_notation,
    clock_times_equal,
    has_inequality,
    has_relation,
    labelled_items,
)
from em_eval.tasks.math.extract import Extraction, extract
from em_eval.tasks.math.normalize import MAX_ANSWER_CHARS, Node, normalize, parse
from em_eval.tasks.math.numeric import Number, numbers_equal, parse_number
from em_eval.tasks.math.sympy_worker import WorkerCallError, WorkerTimeout, worker_for

GRADER_VERSION = "em-eval-math-1"
TIMEOUT_S = 3.0  # per symbolic comparison (Qwen2.5-Math's evaluator allows 3 s per sample)
MATH_VERIFY_TIMEOUT_S = 5.0
TOTAL_BUDGET_CALLS = 5  # a whole comparison (tuples, sets, ...) gets at most 5 x TIMEOUT_S of sympy time
CLUSTER_BUDGET_S = 20.0  # all symbolic work of clustering one problem's answers; past it, answers match by text
MAX_SYMBOLIC_CHARS = 400
_SYMBOLIC = "em_eval.tasks.math.symbolic"

__all__ = [
    "Extraction",
    "GRADER_VERSION",
    "ResponseGrade",
    "cluster_answers",
    "extract",
    "extract_answer",
    "grade_response",
    "is_equiv",
    "majority_answer",
    "math_verify_equiv",
]


def extract_answer(text: str | None) -> str | None:
    """The final answer written in a model response, or None."""
    return extract(text).answer


def is_equiv(pred: str | None, gold: str | None, *, timeout_s: float = TIMEOUT_S) -> bool:
    """Whether answer ``pred`` is equivalent to ``gold``. Each sympy call is limited to ``timeout_s``
    and all of one comparison's sympy calls together to 5 x ``timeout_s``; what is left undecided is False."""
    if pred is None or gold is None:
        return False
    try:
        return forms_equal(comparable_form(str(pred)), comparable_form(str(gold)), timeout_s=timeout_s)
    except _MALFORMED:  # malformed input is a wrong answer, not a crash
        return False


_MALFORMED = (RecursionError, ValueError, ArithmeticError)


@dataclass(frozen=True)
class Form:
    """An answer parsed once: its normal text, structure, interval reading and labels."""

    text: str
    key: str  # the text without spaces: equal keys are equal answers
    node: Node | None  # None when the answer is too long to parse
    intervals: Node | None  # the answer read as a condition on one variable, as intervals
    labels: tuple[tuple[str, Node], ...] | None  # (label, value) of a labelled answer
    relation: bool  # an ``=`` outside brackets
    condition: bool = False  # an inequality that is not a plain bound on a variable (``2 - y < 0``)


@lru_cache(maxsize=1 << 16)
def comparable_form(answer: str) -> Form:
    """The :class:`Form` of one answer string, computed once per distinct string (golds are
    compared with every sample, clusters with every representative)."""
    try:
        text = normalize(_prepared(answer))
    except _MALFORMED:
        return Form("", "", None, None, None, False)  # no usable answer
    if len(text) > MAX_ANSWER_CHARS:
        return Form(text, _squash(text), None, None, None, False)
    try:
        intervals, labels = as_intervals(text), labelled_items(text)
        return Form(
            text,
            _squash(text),
            parse(text),
            parse(intervals) if intervals is not None else None,
            tuple((label, parse(value)) for label, value in labels) if labels else None,
            has_relation(text),
            intervals is None and has_inequality(text),
        )
    except _MALFORMED:  # compared by its text only
        return Form(text, _squash(text), None, None, None, False)


def forms_equal(p: Form, g: Form, *, timeout_s: float = TIMEOUT_S, deadline: float | None = None) -> bool:
    """:func:`is_equiv` on two parsed answers; no symbolic call runs past ``deadline`` (``time.monotonic``)."""
    if not p.text or not g.text:
        return False
    if p.key == g.key:
        return True
    if p.node is None or g.node is None:
        return False
    budget = _Budget(timeout_s, deadline)
    verdict = _special_forms_equal(p, g, budget)
    return verdict if verdict is not None else _nodes_equal(p.node, g.node, budget)


def _prepared(answer: str) -> str:
    """A whole sentence with a box becomes the box's content; notation is cleaned (answer_forms)."""
    if "\\boxed" in answer or "\\fbox" in answer:
        answer = extract_answer(answer) or answer
    return clean_notation(answer)


def _special_forms_equal(p: Form, g: Form, budget: _Budget) -> bool | None:
    """Conditions on one variable as intervals, labelled answers and equations; None: none of these."""
    if p.condition or g.condition:
        solved_p, solved_g = _solved(p, budget), _solved(g, budget)
        if solved_p is not None or solved_g is not None:
            return _nodes_equal(solved_p or p.node, solved_g or g.node, budget)
    if p.intervals is not None or g.intervals is not None:
        return _nodes_equal(p.intervals or p.node, g.intervals or g.node, budget)
    lp, lg = p.labels, g.labels
    if lp and lg:
        return _labelled_equal(list(lp), list(lg), budget)
    if (lp and not g.relation) or (lg and not p.relation):
        items, other = (lp, g.node) if lp else (lg, p.node)
        values = [v for _, v in items]
        if len(values) == 1:
            return _nodes_equal(values[0], other, budget)
        others = _as_vector(other) if other.kind != "set" else other.children
        if others is None:
            return False
        same_variable = len({label for label, _ in items}) == 1  # x = 3 or x = 5: solutions, any order
        return (_multiset_equal if same_variable else _sequence_equal)(values, others, budget)
    if p.relation and g.relation:
        return _symbolic_equal(p.text, g.text, budget)
    return None


def _solved(form: Form, budget: _Budget) -> Node | None:
    """The intervals of a form: read from its text, or by sympy for a condition such as ``2 - y < 0``."""
    if not form.condition:
        return form.intervals
    seconds = budget.next_call()
    if len(form.text) > MAX_SYMBOLIC_CHARS or seconds < 0.05:
        return None
    if form.text not in _SOLVED:
        try:
            solved = worker_for(_SYMBOLIC).call("condition_intervals", [form.text], seconds)
        except (WorkerTimeout, WorkerCallError):
            return None  # not remembered: a later comparison with more time may solve it
        if len(_SOLVED) > 1 << 12:
            _SOLVED.clear()
        _SOLVED[form.text] = parse(solved) if solved else None
    return _SOLVED[form.text]


_SOLVED: dict[str, Node | None] = {}  # condition text -> its intervals, as sympy solved it


def _labelled_equal(lp: list[tuple[str, Node]], lg: list[tuple[str, Node]], budget: _Budget) -> bool:
    """Both labelled: the same value for each label (``m=1, n=2`` is not ``m=2, n=1``); values in
    order when the labels differ, any order when every label is one variable (solutions)."""
    if len(lp) != len(lg):
        return False
    distinct = sorted(len({label for label, _ in side}) for side in (lp, lg))
    if distinct[0] == 1 < distinct[1]:
        return False  # k = 1, 2 (values of one variable) is not a = 1, b = 2
    gold = dict(lg)
    if len(gold) == len(lg) and set(dict(lp)) == set(gold) and len(dict(lp)) == len(lp):
        return all(_nodes_equal(v, gold[label], budget) for label, v in lp)
    values_p, values_g = [v for _, v in lp], [v for _, v in lg]
    if len({label for label, _ in lp + lg}) == 1:
        return _multiset_equal(values_p, values_g, budget)
    return _sequence_equal(values_p, values_g, budget)


def _squash(s: str) -> str:
    return s.replace(" ", "")


# ---- structure ---------------------------------------------------------------------------

_UNORDERED = {"set", "list"}
_WORDS = re.compile(r"[A-Za-z][A-Za-z ]*")


class _Budget:
    """Time for the symbolic calls of one comparison: ``per_call`` each, TOTAL_BUDGET_CALLS x that for all."""

    def __init__(self, per_call: float, deadline: float | None = None) -> None:
        self.per_call = per_call
        own = time.monotonic() + TOTAL_BUDGET_CALLS * per_call
        self.deadline = own if deadline is None else min(own, deadline)

    def next_call(self) -> float:
        return min(self.per_call, self.deadline - time.monotonic())


def _nodes_equal(p: Node, g: Node, budget: _Budget) -> bool:
    if p.kind == "scalar" and g.kind == "scalar":
        return _scalars_equal(p, g, budget)
    if p.kind in _UNORDERED and g.kind in _UNORDERED:
        return _multiset_equal(p.children, g.children, budget)
    if p.kind == "union" and g.kind == "union":
        return _multiset_equal(p.children, g.children, budget)
    if {p.kind, g.kind} <= {"tuple", "interval"}:
        if (p.kind == "interval" or g.kind == "interval") and p.brackets != g.brackets:
            return False
        return _sequence_equal(p.children, g.children, budget)
    if p.kind == "matrix" and g.kind == "matrix":
        return len(p.children) == len(g.children) and all(
            _sequence_equal(pr.children, gr.children, budget) for pr, gr in zip(p.children, g.children)
        )
    vector_p, vector_g = _as_vector(p), _as_vector(g)
    if vector_p is not None and vector_g is not None:
        return _sequence_equal(vector_p, vector_g, budget)
    single_p, single_g = _single(p), _single(g)
    if single_p is not None or single_g is not None:
        return _nodes_equal(single_p or p, single_g or g, budget)
    return False


def _as_vector(node: Node) -> tuple[Node, ...] | None:
    """Entries of a one-row/one-column matrix, a tuple, or an ordered comma list."""
    if node.kind == "matrix":
        rows = node.children
        if len(rows) == 1:
            return rows[0].children
        if all(len(r.children) == 1 for r in rows):
            return tuple(r.children[0] for r in rows)
        return None
    if node.kind in ("tuple", "list"):
        return node.children
    return None


def _single(node: Node) -> Node | None:
    """The only element of a one-element set or list (``\\{5\\}`` vs ``5``)."""
    if node.kind in _UNORDERED and len(node.children) == 1:
        return node.children[0]
    return None


def _sequence_equal(ps: Sequence[Node], gs: Sequence[Node], budget: _Budget) -> bool:
    return len(ps) == len(gs) and all(_nodes_equal(p, g, budget) for p, g in zip(ps, gs))


def _multiset_equal(ps: Sequence[Node], gs: Sequence[Node], budget: _Budget) -> bool:
    if len(ps) != len(gs):
        return False
    unmatched = list(gs)
    for p in ps:
        for k, g in enumerate(unmatched):
            if _nodes_equal(p, g, budget):
                del unmatched[k]
                break
        else:
            return False
    return True


# ---- scalars ------------------------------------------------------------------------------


def _scalars_equal(p: Node, g: Node, budget: _Budget) -> bool:
    pt, gt = p.text, g.text
    if _squash(pt) == _squash(gt) and p.percent == g.percent:
        return True
    if _WORDS.fullmatch(pt) and _WORDS.fullmatch(gt):
        return _squash(pt).lower() == _squash(gt).lower()
    same_time = clock_times_equal(_squash(pt), _squash(gt))
    if same_time is not None:  # a clock time, not a ratio: 3:00 is not 11:00
        return same_time
    pn, gn = parse_number(pt), parse_number(gt)
    if pn is not None and gn is not None:
        return any(numbers_equal(a, b) for a, b in _percent_variants(pn, p.percent, gn, g.percent))
    if p.percent or g.percent:
        return False
    return _symbolic_equal(pt, gt, budget)


def _percent_variants(p: Number, p_pct: bool, g: Number, g_pct: bool) -> list[tuple[Number, Number]]:
    """``50%`` may be read as 50 or 0.5, but only on the side that wrote the percent sign."""
    ps = [p, _hundredth(p)] if p_pct else [p]
    gs = [g, _hundredth(g)] if g_pct else [g]
    return [(a, b) for a in ps for b in gs]


def _hundredth(n: Number) -> Number:
    return Number(n.value / 100, n.approx, n.ulp / 100 if n.ulp is not None else None)


def _symbolic_equal(pred: str, gold: str, budget: _Budget) -> bool:
    seconds = budget.next_call()
    if len(pred) > MAX_SYMBOLIC_CHARS or len(gold) > MAX_SYMBOLIC_CHARS or seconds < 0.05:
        return False
    try:
        return bool(worker_for(_SYMBOLIC).call("sympy_equal", [pred, gold], seconds))
    except (WorkerTimeout, WorkerCallError):
        return False


# ---- second grader and per-response record ------------------------------------------------


def math_verify_equiv(response: str, gold: str, *, timeout_s: float = MATH_VERIFY_TIMEOUT_S) -> tuple[bool, str | None]:
    """math-verify's verdict on a full response (its own extraction) and the answer it extracted."""
    try:
        ok, answer = worker_for(_SYMBOLIC).call("math_verify", [response or "", gold], timeout_s)
        return bool(ok), answer
    except (WorkerTimeout, WorkerCallError):
        return False, None


@dataclass(frozen=True)
class ResponseGrade:
    """Both graders' verdicts on one response, plus the flags a leaderboard shows per sample."""

    answer: str | None
    exact_match: bool
    math_verify: bool
    math_verify_answer: str | None
    no_answer: bool
    unfinished: bool
    disagree: bool

    def as_record(self) -> dict:
        """A JSON-ready dict (long extracted strings cut to 200 characters)."""
        record = asdict(self)
        for key in ("answer", "math_verify_answer"):
            if isinstance(record[key], str) and len(record[key]) > 200:
                record[key] = record[key][:200] + "..."
        return record


def grade_response(response: str, gold: str) -> ResponseGrade:
    """Grade one response against ``gold`` with our grader and with math-verify."""
    found = extract(response)
    ours = is_equiv(found.answer, gold)
    theirs, their_answer = math_verify_equiv(response, gold)
    return ResponseGrade(
        answer=found.answer,
        exact_match=ours,
        math_verify=theirs,
        math_verify_answer=their_answer,
        no_answer=found.answer is None,
        unfinished=found.unfinished,
        disagree=ours != theirs,
    )


# ---- majority voting ----------------------------------------------------------------------


def cluster_answers(answers: Sequence[str | None], *, budget_s: float = CLUSTER_BUDGET_S) -> list[int | None]:
    """An equivalence-cluster id per answer (None for no answer); ids count up from 0 in order of first appearance.

    All symbolic comparisons of one call share ``budget_s`` seconds, so hostile answers cannot make one problem
    cost minutes (every pair of distinct answers is compared); once it is spent, answers match by normal text only.
    """
    deadline = time.monotonic() + budget_s
    representatives: list[Form] = []
    by_key: dict[str, int] = {}
    ids: list[int | None] = []
    for answer in answers:
        form = comparable_form(answer) if answer is not None else None
        if form is None or not form.text:
            ids.append(None)
            continue
        if form.key not in by_key:
            by_key[form.key] = next(
                (k for k, rep in enumerate(representatives) if _safe_forms_equal(form, rep, deadline)),
                len(representatives),
            )
            if by_key[form.key] == len(representatives):
                representatives.append(form)
        ids.append(by_key[form.key])
    return ids


def _safe_forms_equal(p: Form, g: Form, deadline: float) -> bool:
    try:
        return forms_equal(p, g, deadline=deadline)
    except _MALFORMED:
        return False


def majority_answer(answers: Sequence[str | None]) -> tuple[str | None, int]:
    """The most common answer up to equivalence (first seen wins ties) and its vote count."""
    ids = cluster_answers(answers)
    counts: dict[int, int] = {}
    for cid in ids:
        if cid is not None:
            counts[cid] = counts.get(cid, 0) + 1
    if not counts:
        return None, 0
    best = max(counts, key=lambda c: (counts[c], -c))
    return next(a for a, cid in zip(answers, ids) if cid == best), counts[best]
