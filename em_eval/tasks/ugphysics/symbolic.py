r"""The grading worker's module for both UGPhysics judges (runs in the child process; sympy lives here).

``paper_type``: one answer type of the paper's ``is_equal`` (:mod:`~em_eval.tasks.ugphysics.paper_sympy`).

``equal``: ``accuracy``'s symbolic comparison of one predicted answer with one gold answer, both cleaned by
:mod:`~em_eval.tasks.ugphysics.judge`. LaTeX is read by the same ANTLR parser as the paper's, which keeps
subscripted symbols (``E_{v}``, ``\mu_{n}``, ``V_{bi}``) and reads ``e``, ``E``, ``i``, ``j`` and ``I`` as
symbols; physical constants are never deleted. In order:

* equations (one ``=`` on each side): the same up to a non-zero constant factor;
* intervals: the same brackets and bounds; tuples: the same elements in order;
* otherwise the parts after the last ``=``: numbers by the NV rule (:mod:`~em_eval.tasks.ugphysics.nv`);
  expressions with the same symbols when their difference simplifies to 0 (or to a number below the precision,
  as the paper's EX), their ratio to a number within the precision of 1, or they agree at random positive
  points (identities ``simplify`` leaves, such as ``\ln\frac{a}{b}`` and ``\ln a - \ln b``).
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from em_eval.tasks.ugphysics import nv
from em_eval.tasks.ugphysics.paper_sympy import parse_latex, try_type

POINTS = 3
_GREEK = (
    "alpha|beta|gamma|delta|Delta|epsilon|varepsilon|eta|theta|kappa|lambda|mu|nu|xi|rho|sigma|tau|phi|chi|psi|omega"
)
_CALL = re.compile(rf"((?<![\\A-Za-z])[A-Za-z]|\\(?:{_GREEK})(?![A-Za-z]))(_\{{[^{{}}]*\}}|_[A-Za-z0-9])?\(")
_IDENTITY = 1e-9  # random-point agreement of exact identities


def equal(pred: str, gold: str) -> bool:
    """``pred`` and ``gold`` (cleaned answers) are the same answer."""
    if pred.count("=") == 1 and gold.count("=") == 1 and _same_equation(pred, gold):
        return True
    if _is_interval(pred) and _is_interval(gold):
        return _same_interval(pred, gold)
    if _is_tuple(pred) and _is_tuple(gold):
        return _same_tuple(pred, gold)
    return same_value(pred.rsplit("=", 1)[-1], gold.rsplit("=", 1)[-1])


def same_value(pred: str, gold: str) -> bool:
    """Two expressions (no ``=``): numbers by the NV rule, otherwise symbolically. A symbol before a bracket
    reads as a function (``n_{i}(\\mu_{p}+\\mu_{n})``); when that reading differs, both are read again as
    products."""
    a, b = _parse(pred), _parse(gold)
    if a is None or b is None:
        return False
    if _same_expression(a, b, gold):
        return True
    if not (a.atoms(AppliedUndef) or b.atoms(AppliedUndef)):
        return False
    a, b = _parse(_as_products(pred)), _parse(_as_products(gold))
    return a is not None and b is not None and _same_expression(a, b, gold)


def _as_products(text: str) -> str:
    return _CALL.sub(lambda m: m.group(1) + (m.group(2) or "") + "\\cdot(", text)


def _same_expression(a: Any, b: Any, gold: str) -> bool:
    a, b = a.subs(sympy.pi, sympy.pi.evalf(30)), b.subs(sympy.pi, sympy.pi.evalf(30))
    if not a.free_symbols and not b.free_symbols:
        return _same_number(a, b, gold)
    if a.free_symbols != b.free_symbols:
        return False
    difference = sympy.simplify(a - b)
    if difference == 0 or (difference.is_number and abs(complex(difference)) < nv.PRECISION):
        return True
    ratio = sympy.simplify(a / b)
    if ratio.is_number and ratio.is_real and abs(float(ratio) - 1) <= float(nv.TOLERANCE):
        return True
    return _agree_at_points(a, b)


def _parse(text: str) -> Any:
    try:
        return sympy.sympify(parse_latex(text))
    except Exception:  # not readable LaTeX: no symbolic verdict
        return None


def _same_number(a: Any, b: Any, gold_text: str) -> bool:
    try:
        x, y = complex(sympy.N(a, 30)), complex(sympy.N(b, 30))
    except (TypeError, ValueError):
        return False
    if x.imag or y.imag:
        return abs(x - y) <= float(nv.TOLERANCE) * abs(y)
    return nv.close(Fraction(x.real), Fraction(y.real), gold_text)


def _agree_at_points(a: Any, b: Any) -> bool:
    symbols = sorted(a.free_symbols, key=str)
    rng = random.Random(20240521)
    for _ in range(POINTS):
        point = {s: sympy.Rational(rng.randint(50, 250), 100) for s in symbols}
        try:
            x, y = complex(sympy.N(a.subs(point), 20)), complex(sympy.N(b.subs(point), 20))
        except (TypeError, ValueError, ZeroDivisionError):
            return False
        if abs(x - y) > _IDENTITY * max(abs(x), abs(y), 1e-300):
            return False
    return True


def _same_equation(pred: str, gold: str) -> bool:
    sides = [[_parse(side) for side in text.split("=")] for text in (pred, gold)]
    if any(side is None for pair in sides for side in pair):
        return False
    d1, d2 = (sympy.simplify(lhs - rhs) for lhs, rhs in sides)
    if d1 == 0 or d2 == 0:
        return d1 == d2
    ratio = sympy.simplify(d1 / d2)
    return bool(ratio.is_number and ratio != 0 and not ratio.has(sympy.zoo, sympy.nan))


def _is_interval(text: str) -> bool:
    return len(text) > 2 and text[0] in "([" and text[-1] in ")]" and "," in text


def _is_tuple(text: str) -> bool:
    return text.startswith("(") and text.endswith(")") and "," in text


def _split(text: str) -> list[str]:
    from em_eval.tasks.ugphysics.paper_text import split_answers

    return split_answers(text[1:-1])


def _same_interval(pred: str, gold: str) -> bool:
    if (pred[0], pred[-1]) != (gold[0], gold[-1]):
        return False
    ours, theirs = _split(pred), _split(gold)
    return len(ours) == len(theirs) == 2 and all(_same_bound(p, g) for p, g in zip(ours, theirs))


def _same_bound(pred: str, gold: str) -> bool:
    infinite = {"\\infty", "+\\infty", "-\\infty", "\\infin"}
    if pred in infinite or gold in infinite:
        return pred.lstrip("+") == gold.lstrip("+")
    return same_value(pred, gold)


def _same_tuple(pred: str, gold: str) -> bool:
    ours, theirs = _split(pred), _split(gold)
    return len(ours) == len(theirs) and all(same_value(p, g) for p, g in zip(ours, theirs))


OPS = {"paper_type": try_type, "equal": equal}
