r"""Exact parsing of plain numeric answers, in process (no sympy, no unbounded arithmetic).

Handles integers (signs, leading zeros), decimals (``.5``, ``27.0``), ``e`` and
``\times 10^{n}`` notation, ``a^{n}`` with a small result, ``\frac{a}{b}``, ``a/b`` and
mixed numbers (``1\frac{4}{5}``). Anything else returns None and goes to the symbolic stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

REL_TOL = 1e-4  # the paper's graders (PRIME math_equal, Qwen2.5-Math) use isclose(rel_tol=1e-4)
MAX_LOG10 = 400  # powers beyond 10^400 are left to the time-limited symbolic stage

_DEC = r"(?:\d+\.?\d*|\.\d+)"
_INT_POW = re.compile(r"(\d+)\^(?:\{([+-]?\d+)\}|([+-]?\d))")
_SCI_E = re.compile(rf"({_DEC})[eE]([+-]?\d+)")
_SCI_TIMES = re.compile(rf"({_DEC})\\times10\^(?:\{{([+-]?\d+)\}}|(\d))")
_DECIMAL = re.compile(_DEC)
_FRAC = re.compile(r"\\frac\{([^{}]+)\}\{([^{}]+)\}")
_MIXED = re.compile(r"(\d+)\\frac\{(\d+)\}\{(\d+)\}")


@dataclass(frozen=True)
class Number:
    """An exact rational value, whether it was written as a decimal approximation, and the place value of its
    last written digit (``2500.5`` -> 1/10, ``4.5e33`` -> 10^32; None when exact)."""

    value: Fraction
    approx: bool
    ulp: Fraction | None = None


def parse_number(text: str) -> Number | None:
    """The value of a plain numeric answer, or None if it is not one."""
    s = text.replace(" ", "")
    sign = 1
    while s[:1] in ("+", "-"):
        sign = -sign if s[0] == "-" else sign
        s = s[1:]
    if s.startswith("(") and s.endswith(")") and "(" not in s[1:-1]:
        inner = parse_number(s[1:-1])
        return Number(sign * inner.value, inner.approx, inner.ulp) if inner else None
    got = _unsigned(s)
    if got is None:
        return None
    return Number(sign * got.value, got.approx, got.ulp)


def _unsigned(s: str) -> Number | None:
    if not s or len(s) > 200:
        return None
    m = _MIXED.fullmatch(s)
    if m and int(m.group(3)) != 0:
        return Number(int(m.group(1)) + Fraction(int(m.group(2)), int(m.group(3))), False)
    m = _FRAC.fullmatch(s)
    if m:
        return _ratio(parse_number(m.group(1)), parse_number(m.group(2)))
    if s.count("/") == 1:
        num, den = s.split("/")
        return _ratio(parse_number(num), parse_number(den))
    m = _DECIMAL.fullmatch(s)
    if m:
        return Number(Fraction(s), "." in s, _last_place(s))
    m = _SCI_E.fullmatch(s) or _SCI_TIMES.fullmatch(s)
    if m:
        exponent = int(next(g for g in m.groups()[1:] if g is not None))
        if abs(exponent) > MAX_LOG10:
            return None
        scale = Fraction(10) ** exponent
        return Number(Fraction(m.group(1)) * scale, "." in m.group(1), _last_place(m.group(1)) * scale)
    m = _INT_POW.fullmatch(s)
    if m:
        base, exponent = int(m.group(1)), int(m.group(2) or m.group(3))
        if (base == 0 and exponent < 0) or (base > 1 and abs(exponent) * math.log10(base) > MAX_LOG10):
            return None
        return Number(Fraction(base) ** exponent, False)
    return None


def _last_place(decimal: str) -> Fraction:
    return Fraction(1, 10 ** len(decimal.partition(".")[2]))


def _ratio(num: Number | None, den: Number | None) -> Number | None:
    if num is None or den is None or den.value == 0:
        return None
    return Number(num.value / den.value, num.approx or den.approx)


def numbers_equal(pred: Number, gold: Number, rel_tol: float = REL_TOL) -> bool:
    """Equal values; a relative tolerance applies when either side is a decimal approximation,
    except that an integer gold must be matched exactly (115.99 is not 116), and a decimal gold must be
    matched to half its last digit as well (2500.6 is not 2500.5, although within 1e-4)."""
    if pred.value == gold.value:
        return True
    if not (pred.approx or gold.approx):
        return False
    if not gold.approx and gold.value.denominator == 1:
        return False
    scale = max(abs(pred.value), abs(gold.value))
    gap = abs(pred.value - gold.value)
    if gold.approx and gold.ulp is not None and gap > gold.ulp / 2:
        return False
    return gap <= rel_tol * scale
