r"""The symbolic side of the paper's UGPhysics judge (EM_PT cafe72e ``judge.py``), rewritten; runs in the worker.

LaTeX is read by sympy's ANTLR LaTeX parser, as the paper's ``parse_latex`` (sympy 1.14, the paper's
``requirements_em_inf.txt``). sympy refuses to run that parser unless antlr4-python3-runtime is 4.11
(math-verify needs 4.13 here); the generated parser reads the same with 4.13, so :func:`parse_latex` drives
sympy's lexer, parser and converter itself, without the version check.

Quirks kept (they change the paper's scores): NV rounds the prediction to the gold's decimal places as
``str(float)`` writes them (``1e-05`` has none); a scientific-notation fallback compares the two mantissas
(``{:.2e}``) within 0.101 and ignores the exponents (6000 is 6); EX compares the part after the first ``=``,
rejects answers where one side has symbols and the other none, and simplifies the difference (|d| < precision);
EQ accepts a non-zero integer ratio of ``lhs - rhs``; IN compares bounds with EX; TUP compares elements with NV.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from typing import Any, Callable

import sympy
from sympy import Eq, Mul, N, Pow, simplify, sympify

from em_eval.tasks.ugphysics.paper_text import split_answers


def parse_latex(text: Any) -> Any:
    """sympy's ``parse_latex`` (ANTLR backend), minus its runtime version check; remembered per text (the
    judge parses the same answer for several types)."""
    parsed, error = _parse_text(text.strip())  # a sympy object has no strip: AttributeError, as in the paper
    if error is not None:
        raise ValueError(error)
    return parsed


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[Any, str | None]:
    try:
        return _antlr_parse(text), None
    except Exception as exc:  # the paper catches every exception around a parse; so does every caller here
        return None, f"{type(exc).__name__}: {exc}"


def _antlr_parse(text: str) -> Any:
    """Two-stage ANTLR parsing: SLL prediction, and full LL only when SLL reports a syntax error (ANTLR
    guarantees an SLL parse without errors is the LL parse tree, so the result is sympy's; SLL is faster)."""
    from antlr4.atn.PredictionMode import PredictionMode

    try:
        tree = _math_tree(text, PredictionMode.SLL)
    except Exception:  # a syntax error under SLL: the input may need full LL
        tree = _math_tree(text, PredictionMode.LL)
    from sympy.parsing.latex import _parse_latex_antlr as antlr

    return antlr.convert_relation(tree.relation())


def _math_tree(text: str, mode: Any) -> Any:
    import antlr4
    from sympy.parsing.latex import _parse_latex_antlr as antlr

    errors = antlr.MathErrorListener(text)
    with contextlib.redirect_stdout(io.StringIO()):  # the generated code prints a version notice
        lexer = antlr.LaTeXLexer(antlr4.InputStream(text))
        lexer.removeErrorListeners()
        lexer.addErrorListener(errors)
        parser = antlr.LaTeXParser(antlr4.CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    parser._interp.predictionMode = mode
    return parser.math()


def _decimals(value: Any) -> int:
    text = str(value)
    return len(text.split(".")[1]) if "." in text else 0


def _sci_latex(number: float) -> str:
    base, exponent = f"{number:.2e}".split("e")
    return f"{base}\\times 10^{{{int(exponent)}}}"


def _is_sci(expr: Any) -> bool:
    return isinstance(expr, Mul) and isinstance(expr.args[1], Pow) and expr.args[1].args[0] == 10


def _mantissas_close(pred: Any, gold: Any) -> bool:
    base_pred, base_gold = N(pred.args[0]), N(gold.args[0])
    return abs(round(base_pred, _decimals(base_gold)) - base_gold) <= 0.1 * 1.01


def judge_nv(pred: Any, gold: Any, precision: float) -> bool:
    if pred == gold:
        return True
    with contextlib.suppress(Exception):
        p, g = float(pred), float(gold)
        if abs((round(p, _decimals(g)) - g) / g) <= precision * 1.01:
            return True
        sci_gold, sci_pred = parse_latex(_sci_latex(float(gold))), parse_latex(_sci_latex(float(pred)))
        N(sci_pred.args[1].args[1]), N(sci_gold.args[1].args[1])  # the exponents: read, then ignored
        if _mantissas_close(sci_pred, sci_gold):
            return True
    with contextlib.suppress(Exception):
        expr_pred, expr_gold = parse_latex(pred), parse_latex(gold)
        n_pred, n_gold = N(expr_pred), N(expr_gold)
        if abs((round(n_pred, _decimals(n_gold)) - n_gold) / n_gold) <= precision * 1.01:
            return True
        if _is_sci(expr_pred) != _is_sci(expr_gold):
            if _is_sci(expr_pred):
                expr_gold = parse_latex(_sci_latex(float(gold)))
            else:
                expr_pred = parse_latex(_sci_latex(float(pred)))
        if _is_sci(expr_pred) and _is_sci(expr_gold):
            N(expr_pred.args[1].args[1]), N(expr_gold.args[1].args[1])
            if _mantissas_close(expr_pred, expr_gold):
                return True
        elif N(expr_pred) == N(expr_gold):
            return True
    return False


def judge_ex(pred: str, gold: str, precision: float) -> bool:
    def rhs(text: str) -> str:
        return (text.split("=")[1] if "=" in text else text).strip()

    a, b = sympify(parse_latex(rhs(pred))), sympify(parse_latex(rhs(gold)))
    if a == b:
        return True
    a, b = a.subs(sympy.pi, math.pi), b.subs(sympy.pi, math.pi)
    a_sym, b_sym = a.has(sympy.Symbol), b.has(sympy.Symbol)
    if a_sym != b_sym:
        return False
    if not a_sym:
        try:
            return judge_nv(a, b, precision)
        except Exception:
            return False
    try:
        return bool(abs(simplify(a - b).evalf()) < precision)
    except Exception:
        return False


def judge_eq(pred: str, gold: str, precision: float) -> bool:
    def difference(text: str) -> Any:
        lhs, rhs = text.split("=")
        equation = Eq(parse_latex(lhs), parse_latex(rhs))
        return simplify(equation.lhs - equation.rhs)

    try:
        a, b = difference(pred), difference(gold)
        if simplify(a - b) == 0:
            return True
        ratios = simplify(a / b), simplify(b / a)
        return any(r.is_Integer and r != 0 for r in ratios)
    except Exception:
        return False


def judge_in(pred: str, gold: str, precision: float) -> bool:
    def intervals(text: str) -> list[tuple[list[str], str]]:
        out = []
        for part in text.split("\\cup"):
            bounds = part.strip()
            kind = ("open_left" if bounds.startswith("(") else "closed_left") + (
                "_open_right" if bounds.endswith(")") else "_closed_right"
            )
            out.append((bounds.strip("()[]").split(","), kind))
        return out

    ours, theirs = intervals(pred), intervals(gold)
    if len(ours) != len(theirs):
        return False
    for numbers, kind in ours:
        for j, (other, other_kind) in enumerate(theirs):
            if (
                kind == other_kind
                and judge_ex(numbers[0], other[0], precision)
                and judge_ex(numbers[1], other[1], precision)
            ):
                del theirs[j]
                break
        else:
            return False
    return True


def judge_tup(pred: str, gold: str, precision: float) -> bool:
    ours, theirs = split_answers(pred.strip("()")), split_answers(gold.strip("()"))
    return len(ours) == len(theirs) and all(judge_nv(p, g, precision) for p, g in zip(ours, theirs))


JUDGES: dict[str, Callable[[Any, Any, float], bool]] = {
    "NV": judge_nv,
    "IN": judge_in,
    "EX": judge_ex,
    "EQ": judge_eq,
    "TUP": judge_tup,
}


def try_type(kind: str, pred: str, gold: str, bare_pred: str, bare_gold: str, precision: float) -> bool:
    """One answer type of ``is_equal``: the answers as written, then with the constants removed; an exception in
    either is a failed type (the paper's ``try`` around both)."""
    judge = JUDGES[kind]
    try:
        return bool(
            judge(pred, gold, precision)
            or ((bare_pred, bare_gold) != (pred, gold) and judge(bare_pred, bare_gold, precision))
        )
    except Exception:
        return False
