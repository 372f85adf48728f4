r"""Symbolic comparison with sympy, and the math-verify grader; both run in the grading worker.

This module imports sympy, latex2sympy2_extended and math-verify, and is only imported by
the child process of :mod:`em_eval.tasks.math.sympy_worker`, which enforces the time and memory
limits. LaTeX is parsed with ``latex2sympy2_extended`` (the parser math-verify ships);
the comparison itself is ours:

* equations: ``a = b`` and ``c = d`` are equivalent if ``a-b`` is a non-zero constant times ``c-d``;
* inequalities: same direction after canonicalisation and equal ``lhs - rhs``;
  :func:`condition_intervals` writes an inequality in one variable as interval notation (``2 - y < 0`` ->
  ``(2,\infty)``), solved over the reals;
* expressions: symbols are taken as positive reals (so ``\sqrt{1/n} = 1/\sqrt{n}``); equal if
  ``a - b`` expands to 0; without free symbols, numerically when a side has a decimal (relative 1e-4;
  an integer gold needs a match to 1e-12; a decimal never equals an exact irrational gold), else exactly
  (a rational difference must be 0; any other must vanish to 60 digits and be proved 0 by sympy);
  with free symbols, at five random positive points (1e-8),
  or, when floor or ceiling appear, at the integers 1-20 and some powers of 2 and 10; falling back to
  ``simplify`` when they cannot be evaluated.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import sympy
from sympy.core.relational import Equality, Relational

REL_TOL_APPROX = 1e-4
REL_TOL_EXACT = 1e-40  # exact sides, evaluated at EXACT_DIGITS
EXACT_DIGITS = 60
INTEGER_POINTS = (*range(1, 21), 32, 64, 100, 128, 1000, 1024)  # where floor/ceiling expressions are compared
SPOT_CHECKS = 5
_SPOT_RNG_SEED = 1729

logging.getLogger("math_verify").setLevel(logging.ERROR)
logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)


def to_sympy(latex: str) -> Any:
    """Parse normalised LaTeX into sympy; ``i`` is the imaginary unit, other symbols positive reals."""
    from latex2sympy2_extended import latex2sympy

    expr = latex2sympy(latex)
    if not isinstance(expr, sympy.Basic):
        raise ValueError(f"not a scalar expression: {latex!r}")
    subs = {}
    for sym in expr.free_symbols:
        if not isinstance(sym, sympy.Symbol):
            continue
        subs[sym] = sympy.I if sym.name == "i" else sympy.Symbol(sym.name, positive=True)
    return expr.xreplace(subs) if subs else expr


def sympy_equal(pred: str, gold: str) -> bool:
    """Whether two normalised scalar LaTeX answers are mathematically equal (see module doc)."""
    a, b = to_sympy(pred), to_sympy(gold)
    if isinstance(a, Relational) or isinstance(b, Relational):
        return _relations_equal(a, b)
    return _expressions_equal(a, b)


def _has_float(expr: Any) -> bool:
    return any(isinstance(atom, sympy.Float) for atom in expr.atoms(sympy.Number))


def _expressions_equal(a: Any, b: Any) -> bool:
    if not (isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr)):
        return a == b
    if a == b:
        return True
    if a.has(sympy.oo, -sympy.oo, sympy.zoo) or b.has(sympy.oo, -sympy.oo, sympy.zoo):
        return sympy.simplify(a - b) == 0 if not (a.is_infinite or b.is_infinite) else False
    approx = _has_float(a) or _has_float(b)
    exact_integer_gold = b.is_Integer and not _has_float(b)
    tol = REL_TOL_EXACT if not approx else (0.0 if exact_integer_gold else REL_TOL_APPROX)
    symbols = a.free_symbols | b.free_symbols
    if not symbols:
        if _has_float(a) and not _has_float(b) and b.is_rational is False:
            return False  # a decimal is not an exact irrational gold: 0.7854 is not pi/4
        return _close(a, b, tol) if approx else _exactly_equal(a, b)
    diff = a - b
    if diff == 0 or sympy.expand(diff) == 0:
        return True
    if a.has(sympy.floor, sympy.ceiling) or b.has(sympy.floor, sympy.ceiling):
        return _agree_at_integers(a, b, symbols)  # integer arguments: ceil(log2 n) is not floor(log2 n) + 1 at 2^k
    verdict = _spot_check(a, b, symbols, max(tol, 1e-8))
    return verdict if verdict is not None else sympy.simplify(diff) == 0


def _agree_at_integers(a: Any, b: Any, symbols: set) -> bool:
    """Floor and ceiling answers are about integers: equal at every point of INTEGER_POINTS (each
    symbol taking the same value) that both sides can be evaluated at, and at one at least."""
    evaluated = 0
    for n in INTEGER_POINTS:
        point = {s: sympy.Integer(n) for s in symbols}
        try:
            if abs(complex(sympy.N(a.xreplace(point) - b.xreplace(point), 30))) > 1e-9:
                return False
        except (TypeError, ValueError, ZeroDivisionError, AttributeError):
            continue
        evaluated += 1
    return evaluated > 0


def _close(a: Any, b: Any, tol: float) -> bool:
    """Within ``tol`` relative, at 60 significant digits (exact sides: ``1 + 10^{-30}`` is not 1)."""
    size = max(abs(sympy.N(a, EXACT_DIGITS)), abs(sympy.N(b, EXACT_DIGITS)), 1)
    gap = abs(sympy.N(a - b, EXACT_DIGITS))
    if tol == 0.0:
        return bool(gap <= 1e-12 * max(abs(sympy.N(b, EXACT_DIGITS)), 1))
    return bool(gap <= tol * size)


def _exactly_equal(a: Any, b: Any) -> bool:
    r"""Exact constants: equal only if the difference is 0, whatever the digit at which they part
    (``1 + 10^{-70}`` is not 1, ``\sqrt{2} + 10^{-80}`` is not ``\sqrt{2}``)."""
    diff = (a - b).doit()
    if diff == 0:
        return True
    if diff.is_Rational:
        return False
    if not _close(a, b, REL_TOL_EXACT):
        return False
    return sympy.simplify(diff) == 0 or diff.equals(0) is True


def _spot_check(a: Any, b: Any, symbols: set, tol: float) -> bool | None:
    """Compare at random positive points: False on any mismatch, True after two agreeing
    points, None when the expressions cannot be evaluated numerically."""
    rng = random.Random(_SPOT_RNG_SEED)
    valid = 0
    for _ in range(SPOT_CHECKS):
        point = {s: sympy.Float(rng.uniform(0.2, 3.0), 30) for s in sorted(symbols, key=str)}
        try:
            va, vb = complex(sympy.N(a.xreplace(point), 30)), complex(sympy.N(b.xreplace(point), 30))
        except (TypeError, ValueError, ZeroDivisionError, AttributeError):
            continue
        if any(v != v or abs(v) == float("inf") for v in (va, vb)):
            continue
        if abs(va - vb) > tol * max(abs(va), abs(vb), 1e-12):
            return False
        valid += 1
    return True if valid >= 2 else None


def _relations_equal(a: Any, b: Any) -> bool:
    if not (isinstance(a, Relational) and isinstance(b, Relational)):
        return False
    if isinstance(a, Equality) != isinstance(b, Equality):
        return False
    if isinstance(a, Equality):
        da, db = a.lhs - a.rhs, b.lhs - b.rhs
        if _expressions_equal(da, db) or _expressions_equal(da, -db):
            return True
        ratio = sympy.simplify(da / db)
        return bool(ratio.is_number and ratio != 0 and not ratio.has(sympy.zoo, sympy.nan))
    ca, cb = a.canonical, b.canonical
    return type(ca) is type(cb) and _expressions_equal(ca.lhs - ca.rhs, cb.lhs - cb.rhs)


def condition_intervals(latex: str) -> str | None:
    r"""An inequality in one variable as interval notation (``\cup`` between pieces), solved over the reals;
    None when ``latex`` is not one or has no such solution set."""
    from latex2sympy2_extended import latex2sympy

    rel = latex2sympy(latex)
    if not isinstance(rel, (Relational, sympy.And, sympy.Or)) or isinstance(rel, Equality):
        return None
    symbols = [s for s in rel.free_symbols if isinstance(s, sympy.Symbol)]
    if len(symbols) != 1 or rel.atoms(sympy.Float):
        return None
    real = sympy.Symbol(symbols[0].name, real=True)
    solution = rel.xreplace({symbols[0]: real}).as_set()
    pieces = solution.args if isinstance(solution, sympy.Union) else (solution,)
    if not pieces or not all(isinstance(p, sympy.Interval) for p in pieces):
        return None
    return "\\cup".join(
        ("(" if p.left_open else "[") + f"{sympy.latex(p.start)},{sympy.latex(p.end)}" + (")" if p.right_open else "]")
        for p in pieces
    )


def math_verify_verdict(response: str, gold: str) -> tuple[bool, str | None]:
    """math-verify's verdict on a whole response against a gold answer, and what it extracted."""
    from math_verify import parse, verify

    gold_parsed = parse(f"${gold}$", parsing_timeout=None) or parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
    pred_parsed = parse(response, parsing_timeout=None)
    extracted = str(pred_parsed[-1]) if pred_parsed else None
    if not gold_parsed or not pred_parsed:
        return False, extracted
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None)), extracted


OPS = {"sympy_equal": sympy_equal, "math_verify": math_verify_verdict, "condition_intervals": condition_intervals}
