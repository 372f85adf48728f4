r"""UGPhysics' numerical-value rule as ``accuracy`` applies it: relative precision 1e-2, or equal after rounding
to the gold's decimals.

The paper's ``judge_single_numerical_value`` rounds the prediction to the gold's decimal places (``str(float)``:
at least one) and accepts a relative error within ``precision * 1.01``; here the same holds for a gold in
scientific notation, whose mantissa's decimals count at the gold's own power of ten (``4.86 \times 10^{23}`` is
``4.9 \times 10^{23}``, ``4.9 \times 10^{24}`` is not). Exact golds (``\sqrt{5}``, ``\frac{1}{3}``) have no
decimals: only the relative precision applies.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction

PRECISION = 1e-2  # eval.py --precision default
TOLERANCE = Fraction(PRECISION) * Fraction(101, 100)  # the paper's ``precision * 1.01``
_MANTISSA = r"([+-]?(?:\d+\.?\d*|\.\d+))"
_GOLD_FORMS = (
    re.compile(rf"^{_MANTISSA}$"),
    re.compile(rf"^{_MANTISSA}(?:\\times|\\cdot|\*|×)10\^(?:\{{([+-]?\d+)\}}|([+-]?\d))$"),
    re.compile(rf"^{_MANTISSA}[eE]([+-]?\d+)$"),
    re.compile(r"^()10\^(?:\{([+-]?\d+)\}|([+-]?\d))$"),
)


def written_form(gold: str) -> tuple[Decimal, int, int] | None:
    r"""``(mantissa, power of ten, decimals)`` of a gold written as a decimal, ``m \times 10^{k}``, ``m e k`` or
    ``10^{k}``; decimals as ``str(float(m))`` has them (trailing zeros dropped, at least one). None otherwise."""
    s = re.sub(r"\s+", "", gold)
    for form in _GOLD_FORMS:
        m = form.match(s)
        if m:
            mantissa = m.group(1) or "1"
            power = next((g for g in m.groups()[1:] if g), "0")
            places = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
            try:
                return Decimal(mantissa), int(power), max(places, 1)
            except InvalidOperation:
                return None
    return None


def close(pred: Fraction | float, gold: Fraction | float, gold_text: str = "") -> bool:
    """``pred`` is ``gold`` within the relative precision, or after rounding to ``gold_text``'s decimals."""
    p, g = Fraction(pred), Fraction(gold)
    if p == g:
        return True
    if g == 0:
        return False
    if abs(p - g) <= TOLERANCE * abs(g):
        return True
    form = written_form(gold_text)
    if form is None:
        return False
    mantissa, power, places = form
    with localcontext() as context:
        context.prec = 60
        try:
            scaled = Decimal(p.numerator) / Decimal(p.denominator) / Decimal(10) ** power
            rounded = scaled.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # more digits than 60: nowhere near the gold
            return False
    return mantissa != 0 and abs(Fraction(rounded) - Fraction(mantissa)) <= TOLERANCE * abs(Fraction(mantissa))
