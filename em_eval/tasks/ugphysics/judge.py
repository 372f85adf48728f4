r"""UGPhysics' judge for ``accuracy``: the paper's rules (:mod:`~em_eval.tasks.ugphysics.paper_judge`) without
their bugs, so it is right wherever the paper's judge is right (card: tasks/ugphysics/README.md).

* Extraction: the last ``\boxed{}`` after the last "herefore" (or, without one there, in the whole response);
  without a box, the answer after "the answer is" / "answer:" (its first ``$...$`` when it has one), or the clause
  before "is the answer". When the
  last box holds fewer answers than the item has, the last boxes count one answer each.
* Answers: split on commas outside every bracket (``50\%, 3`` is two answers), ``\pm`` doubling one; a unit
  written inside the box anyway (the item's own, or a trailing ``\text{...}``) is dropped.
* Matching: every gold answer paired with a different predicted answer, in any order (a perfect matching; the
  paper's greedy pass can miss one), the counts equal; all symbolic comparisons of one response share 30 s.
* One pair: the same text; true/false words (English and Chinese: 是 对 正确 能 / 否 错 错误 不能 不对 不是);
  option letters of a multiple-choice item in any case and order (``B``, ``(b)``, ``b: ...``); numbers by the
  NV rule (:mod:`~em_eval.tasks.ugphysics.nv`); the rest symbolically in the grading worker
  (:mod:`~em_eval.tasks.ugphysics.symbolic`: subscripts kept, no constants deleted, ``e``/``E``/``i``/``j``/``I``
  symbols, ``\approx``, ``\sim`` and ``\propto`` read as ``=``).

No LLM judge (the paper's is off).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from fractions import Fraction

from em_eval.tasks.math.extract import boxed_contents
from em_eval.tasks.math.normalize import strip_assignment
from em_eval.tasks.math.numeric import parse_number
from em_eval.tasks.ugphysics import nv
from em_eval.tasks.ugphysics.calls import Call, in_worker
from em_eval.tasks.ugphysics.prompt import answer_types

PAIR_TIMEOUT_S = 5.0  # as the paper's signal.alarm(5) per answer type
RESPONSE_BUDGET_S = 30.0  # all symbolic comparisons of one response together
TRUE_WORDS = {"yes", "true", "correct", "right", "t", "y", "对", "正确", "是", "能", "可以"}
FALSE_WORDS = {"no", "false", "incorrect", "wrong", "f", "n", "错", "错误", "否", "不对", "不是", "不能", "不可以"}
_BEFORE_MARKERS = ("is the answer", "is our answer", "is the final answer")
_MARKERS = ("answer is", "answer:", "answer :", "答案是", "答案为")
_OPTION = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]|\d+)(?![A-Za-z0-9])")
_LEADING_OPTION = re.compile(r"^\(?([A-Za-z])\)?\s*[:：.)]\s*\S")
_WRAPPERS = re.compile(r"\\(?:text|mathrm|textbf|mathbf|textrm|operatorname|rm|mbox)\s*\{([^{}]*)\}")
_RELATIONS = re.compile(r"\\(?:approx|simeq|sim|propto|equiv|cong)(?![A-Za-z])|≈")
_UNIT_TAIL = re.compile(
    r"^(.*?\d[^{}]*?|.*\})\s*(?:\\(?:text|mathrm)\s*\{(?:[^{}]|\{[^{}]*\})*\}(?:\s*\^\s*\{?-?\d+\}?)?\s*)+$"
)


@dataclass(frozen=True)
class Verdict:
    """The judgement of one response: overall, per gold answer, and what was compared."""

    correct: bool
    parts: tuple[bool, ...]
    predicted: tuple[str, ...] | None  # None: no answer found


def judge(response: str, doc: dict, call: Call = in_worker) -> Verdict:
    """Judge one response against an item (``answers``; ``answer_type`` and ``unit`` when present)."""
    golds = gold_answers(str(doc["answers"]))
    predicted = predicted_answers(response, len(golds))
    if predicted is None:
        return Verdict(False, tuple(False for _ in golds), None)
    deadline = time.monotonic() + RESPONSE_BUDGET_S

    def budgeted(op: str, args: list, timeout_s: float) -> bool:  # once the budget is spent, no more sympy
        left = deadline - time.monotonic()
        return left > 0.1 and bool(call(op, args, min(timeout_s, left)))

    units = [u for u in _units(doc.get("unit"), len(golds)) if u]
    preds = [_without_unit(p, units) for p in predicted]
    if _is_choice(doc, golds):
        parts = tuple(_options(" , ".join(preds)) == _options(" , ".join(golds)) for _ in golds)
        return Verdict(all(parts), parts, tuple(predicted))
    pairs = _pairing(golds, preds, lambda g, p: same_answer(p, g, budgeted))
    parts = tuple(i in pairs for i in range(len(golds)))
    return Verdict(len(preds) == len(golds) and all(parts), parts, tuple(predicted))


def split_answers(text: str) -> list[str]:
    r"""Answers separated by commas outside ``() [] {} \{\}``, ``\pm`` giving two."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in ",，" and depth <= 0 and not text[max(0, i - 1) : i] == "\\":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    out = []
    for part in (p.strip().strip("$").strip() for p in parts):
        if part:
            out += [part.replace("\\pm", "+"), part.replace("\\pm", "-")] if "\\pm" in part else [part]
    return out


def gold_answers(answers: str) -> list[str]:
    r"""The gold answers of an item, from its ``\boxed{...}`` field."""
    boxes = boxed_contents(answers)
    return split_answers(_percentless(boxes[-1] if boxes else answers))


def predicted_answers(response: str, count: int) -> list[str] | None:
    """The response's answers (see the module docstring); None when it gives none."""
    text = _answer_region(str(response))
    boxes = boxed_contents(text)
    if not boxes:
        found = _after_marker(text)
        return split_answers(_percentless(found)) if found else None
    last = split_answers(_percentless(boxes[-1]))
    if len(last) >= count or len(boxes) < count:
        return last
    return [a for box in boxes[-count:] for a in split_answers(_percentless(box))]


def same_answer(pred: str, gold: str, call: Call = in_worker) -> bool:
    """One predicted answer against one gold answer (any answer type)."""
    p, g = clean(pred), clean(gold)
    if p == g:
        return True
    truth = _truth(gold, letters=False)
    if truth is not None:
        return _truth(pred) == truth
    pn, gn = number_of(p), number_of(g)
    if pn is not None and gn is not None:
        return nv.close(pn, gn, strip_assignment(g))
    return bool(call("equal", [p, g], PAIR_TIMEOUT_S))


def clean(answer: str) -> str:
    r"""An answer without presentation: ``$``, ``\left``/``\right``, spacing commands, text wrappers, degrees,
    ``\dfrac``; ``\approx``-like relations as ``=`` (a leading one dropped); spaces kept only between a command and
    a letter or between two letters."""
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", answer).replace("$", "")
    s = re.sub(r"\\[,;:!]|\\quad|\\qquad|~", " ", s)
    for _ in range(3):
        s = _WRAPPERS.sub(r"\1", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _RELATIONS.sub("=", s).replace("−", "-").replace("\\cdot", "\\cdot ")
    s = re.sub(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])", r"\1 ", s.strip())
    s = re.sub(r"(?<![A-Za-z])\s+|\s+(?![A-Za-z])", "", s)
    return s.lstrip("=").rstrip(".。")


def number_of(text: str) -> Fraction | None:
    r"""The value of a plain number (decimal, ``a \times 10^{n}``, ``a e n``, ``\frac{a}{b}``), also after
    ``x =``; None for anything else."""
    for candidate in (text, strip_assignment(text)):
        number = parse_number(candidate.replace("\\cdot", "\\times").replace("*", "\\times"))
        if number is not None:
            return number.value
    return None


def _percentless(text: str) -> str:
    return text.replace("\\%", "").replace("%", "")


def _answer_region(response: str) -> str:
    """The text after the last "herefore" when it holds a box or an answer marker, else the whole response."""
    tail = response.rsplit("herefore", 1)[-1]
    if "herefore" in response and ("oxed" in tail or "fbox" in tail or _after_marker(tail)):
        return tail
    return response


def _after_marker(text: str) -> str | None:
    lower = text.lower()
    before = max((lower.rfind(m) for m in _BEFORE_MARKERS), default=-1)
    if before >= 0:  # "..., X is the answer": the clause before
        clause = re.split(r",|(?<!\d)\.(?!\d)|!|\n", text[:before])[-1].strip()
        math = re.fullmatch(r"\$([^$]+)\$", clause)
        return (math.group(1) if math else clause).strip() or None
    at = max((lower.rfind(m) + len(m) for m in _MARKERS if m in lower), default=-1)
    if at < 0:
        return None
    rest = text[at:].strip()
    math = re.search(r"\$([^$]+)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", rest, re.DOTALL)
    if math:
        return next(g for g in math.groups() if g is not None).strip()
    rest = re.split(r"(?<!\d)\.(?!\d)|。|\n", rest)[0]
    return rest.strip(" :.,") or None


def _pairing(golds: list[str], preds: list[str], same) -> dict[int, int]:
    """A gold -> predicted index pairing, as large as possible (augmenting paths; verdicts remembered). Each gold
    tries first the answers written as it is, then the one in its own position, then the rest."""
    memo: dict[tuple[int, int], bool] = {}
    texts = [clean(p) for p in preds]
    order = [sorted(range(len(preds)), key=lambda j: (texts[j] != clean(g), j != i)) for i, g in enumerate(golds)]

    def ok(i: int, j: int) -> bool:
        if (i, j) not in memo:
            memo[(i, j)] = same(golds[i], preds[j])
        return memo[(i, j)]

    owner: dict[int, int] = {}  # predicted index -> gold index

    def augment(i: int, seen: set[int]) -> bool:
        for j in order[i]:
            if j not in seen and ok(i, j):
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(golds)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def _is_choice(doc: dict, golds: list[str]) -> bool:
    types = answer_types(doc.get("answer_type"))
    return bool(types) and set(types) == {"MC"} and all(_OPTION.fullmatch(clean(g)) for g in golds)


def _options(text: str) -> frozenset[str]:
    for _ in range(3):
        text = _WRAPPERS.sub(r"\1", text)
    out = set()
    for part in split_answers(text.replace("$", "")):
        lead = _LEADING_OPTION.match(part)
        out |= {lead.group(1).lower()} if lead else {o.lower() for o in _OPTION.findall(part.strip("()[] "))}
    return frozenset(out)


def _truth(text: str, letters: bool = True) -> bool | None:
    """True / False for a yes-no word (``letters``: also T, F, Y, N), else None."""
    word = re.sub(r"[\s$().。,，!！]+", "", clean(text)).lower()
    if len(word) == 1 and not letters:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _units(raw: object, count: int) -> list[str | None]:
    parts = split_answers(str(raw)) if raw not in (None, "") else []
    units = [None if p.replace("\\text{None}", "None").strip() in ("None", "") else p for p in parts]
    if len(units) == 1 and count > 1:  # one unit for several answers
        return units * count
    return (units + [None] * count)[:count]


def _without_unit(answer: str, units: list[str]) -> str:
    r"""``answer`` without a trailing copy of one of the item's units (spacing ignored) or trailing ``\text{...}``
    units after a number."""
    squeezed = re.sub(r"\s+", "", answer)
    for tail in (re.sub(r"\s+", "", unit) for unit in units):
        if tail and squeezed.endswith(tail) and len(squeezed) > len(tail):
            i, seen = len(answer), ""
            while len(seen) < len(tail):
                i -= 1
                seen = seen if answer[i].isspace() else answer[i] + seen
            return answer[:i].rstrip()
    spaced = re.sub(r"\\[,;:!]|~", " ", answer)
    m = _UNIT_TAIL.match(spaced) if len(spaced) <= 300 else None
    return m.group(1).rstrip() if m and number_of(clean(m.group(1))) is not None else answer
