r"""UGPhysics' answer-type-aware judge (``Judger(strict_extract=True)``, em_methods.md section 4.6).

The response's last ``\boxed{}`` holds the answer(s); several answers are split on top-level
commas (or taken from the last boxes, one each) and matched to the gold answers in order, each
by its type:

* NV (numerical value): relative precision 1e-2, as UGPhysics' ``--precision`` default;
  values that do not parse as numbers fall back to symbolic equivalence;
* EX / EQ (expression / equation) and IN (interval): em-eval's math grader (sympy in its worker);
* TF (true/false, also yes/no and the Chinese words) and MC (option letters or numbers): exact option.

When an item lists one type for several answers it covers them all; when several types do not
line up with the answers (two items), every answer is judged by generic equivalence.

Units belong outside the box; a unit written inside it anyway (the item's own unit, or a
trailing ``\text{...}``) is not part of the comparison. No LLM judge (the paper's is disabled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from em_eval.tasks.math.extract import boxed_contents
from em_eval.tasks.math.grade import is_equiv
from em_eval.tasks.math.normalize import normalize, split_top, strip_assignment
from em_eval.tasks.math.numeric import parse_number
from em_eval.tasks.ugphysics.prompt import answer_types

REL_PRECISION = 1e-2
TRUE_WORDS = {"yes", "true", "correct", "right", "t", "y", "对", "正确", "是"}
FALSE_WORDS = {"no", "false", "incorrect", "wrong", "f", "n", "错", "错误", "否", "不对", "不是"}
_TIMES_TEN = re.compile(r"^(.*?)\s*(?:\\times|\\cdot|\*|×)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?$")
_OPTION = re.compile(r"(?<![A-Za-z0-9])([A-Ha-h]|\d+)(?![A-Za-z0-9])")  # letters, or numbered options


@dataclass(frozen=True)
class Verdict:
    """The judgement of one response: overall, per gold answer, and what was compared."""

    correct: bool
    parts: tuple[bool, ...]
    predicted: tuple[str, ...] | None  # None: no boxed answer


def split_answers(text: str) -> list[str]:
    """Answers separated by top-level commas (commas inside brackets, like intervals', stay)."""
    return [p.strip() for p in split_top(text, (",",)) if p.strip()]


def gold_answers(answers: str) -> list[str]:
    r"""The gold answers of an item, from its ``\boxed{...}`` field."""
    boxes = boxed_contents(answers) or [answers]
    return split_answers(boxes[0]) if len(boxes) == 1 else boxes


def predicted_answers(response: str, count: int) -> list[str] | None:
    """The response's answers: the last box split on commas, or the last ``count`` boxes."""
    boxes = boxed_contents(response)
    if not boxes:
        return None
    last = split_answers(boxes[-1])
    if len(last) >= count or len(boxes) < count:
        return last
    return boxes[-count:]


def judge(response: str, doc: dict) -> Verdict:
    """Judge one response against an item (``answers``, ``answer_type``, ``unit``)."""
    golds = gold_answers(str(doc["answers"]))
    types = answer_types(doc.get("answer_type")) or ["EX"]
    if len(types) != len(golds):  # one type covers every answer; several that do not line up, none
        types = [types[0] if len(types) == 1 else "EX"] * len(golds)
    units = _units(doc.get("unit"), len(golds))
    predicted = predicted_answers(response, len(golds))
    if predicted is None:
        return Verdict(False, tuple(False for _ in golds), None)
    parts = tuple(i < len(predicted) and judge_one(predicted[i], gold, kind, unit)
                  for i, (gold, kind, unit) in enumerate(zip(golds, types, units)))
    return Verdict(len(predicted) == len(golds) and all(parts), parts, tuple(predicted))


def judge_one(predicted: str, gold: str, kind: str, unit: str | None = None) -> bool:
    """One answer against one gold answer of type ``kind``."""
    predicted = _without_unit(predicted, unit)
    if kind == "NV":
        p, g = number_of(predicted), number_of(gold)
        if p is not None and g is not None:
            return close(p, g)
    elif kind == "TF":
        truth = _truth(predicted)
        return truth is not None and truth == _truth(gold)
    elif kind == "MC":
        options = _options(predicted)
        return bool(options) and options == _options(gold)
    return is_equiv(predicted, gold)


def close(predicted: Fraction, gold: Fraction, rel: float = REL_PRECISION) -> bool:
    """``|p - g| <= rel * |g|`` (exactly equal when the gold is 0)."""
    return abs(predicted - gold) <= Fraction(rel) * abs(gold)


def number_of(text: str) -> Fraction | None:
    r"""The value of a plain number, ``a \times 10^{n}`` (``a`` may be a fraction), a percentage
    (``50\%`` -> 50) or ``x = <number>``; None for anything else."""
    s = strip_assignment(text.replace("\\%", "").replace("%", "").strip())
    for candidate in (s, normalize(s)):
        number = parse_number(candidate)
        if number is not None:
            return number.value
        m = _TIMES_TEN.match(candidate)
        if m:
            mantissa = parse_number(m.group(1)) if m.group(1).strip() else None
            if mantissa is not None:
                return mantissa.value * Fraction(10) ** int(m.group(2))
    return None


def _units(raw: object, count: int) -> list[str | None]:
    parts = split_answers(str(raw)) if raw not in (None, "") else []
    units = [None if p.replace("\\text{None}", "None").strip() in ("None", "") else p for p in parts]
    if len(units) == 1 and count > 1:  # one unit for several answers
        return units * count
    return (units + [None] * count)[:count]


def _without_unit(answer: str, unit: str | None) -> str:
    """``answer`` without a trailing copy of the item's unit (spacing ignored)."""
    tail = re.sub(r"\s+", "", unit or "")
    i, seen = len(answer), ""
    while tail and i > 0 and len(seen) < len(tail):
        i -= 1
        seen = seen if answer[i].isspace() else answer[i] + seen
    return answer[:i].rstrip() if tail and seen == tail and answer[:i].strip() else answer


def _plain(text: str) -> str:
    s = re.sub(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}", r"\1", text)
    return re.sub(r"[\s$().。,，:：]+", " ", s).strip()


def _truth(text: str) -> bool | None:
    word = _plain(text).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _options(text: str) -> frozenset[str]:
    return frozenset(o.upper() for o in _OPTION.findall(_plain(text)))
