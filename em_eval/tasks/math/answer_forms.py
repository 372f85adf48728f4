r"""Rewrites that turn answer notations into the forms the grader compares (pure string functions).

* :func:`clean_notation`: unicode radicals and powers, currency signs, a trailing ``\pmod{n}``,
  a unit after a number (``3 m^2``, ``2,500.5cm^2``), ``\quad`` spacing, a bracketed ``array`` (a matrix),
  repeating decimals (``0.\overline{6}`` -> ``\frac{2}{3}``), a stray trailing backslash,
  ASCII ``>=``/``<=``, a 12-hour clock time (``3:15 P.M.`` -> ``3:15pm``).
* :func:`labelled_items`: ``BC=6, CA=8`` -> ``[("BC", "6"), ("CA", "8")]`` when every item has
  a simple label (a variable, ``f(x)``, ``|PQ|``, ``(x,y)``, ``S_1:S_2``).
* :func:`as_intervals`: a condition on one variable as interval notation: ``-1 \le t \le 4`` ->
  ``[-1,4]``, ``y > 3`` -> ``(3,\infty)``, ``x<0 \text{ or } x>1`` -> ``(-\infty,0)\cup(1,\infty)``,
  ``\{x \mid x \ge 2\}``, ``t \in [-1,4]``, ``x \ge 3 \text{ and } x < 5``, ``x \neq 2`` likewise.

Written here because math-verify's own rewrites work on whole responses inside its parser and
cannot be called on one answer string; latex2sympy2_extended parses relations but has no
inequality-to-interval step.
"""

from __future__ import annotations

import re
from fractions import Fraction

from em_eval.tasks.math.normalize import expand_pm, split_top
from em_eval.tasks.math.numeric import parse_number

_CURRENCY = re.compile(r"[€£¥₹]|\\euro\b|\\pounds\b|\\yen\b")
_POWERS = {"²": "^2", "³": "^3", "¹": "^1", "⁴": "^4"}
_RADICAL = re.compile(r"√\s*(\([^()]*\)|\{[^{}]*\}|[\w.]+)")
_PMOD = re.compile(r"\s*(?:\\pmod\s*\{[^{}]*\}|\\pmod\s*\w+|\(\s*\\bmod\s*[^()]*\)|\\bmod\s*\w+|\\mod\s*\w+)\s*$")
_UNIT = re.compile(
    r"(?<=\d)(?:\s+|(?=(?:cm|mm|km|kg|mg|mL|ml|kJ|kW|kPa|Hz|mol|ft)\b))"
    r"(?:m|cm|mm|km|kg|g|mg|s|ms|min|h|L|mL|ml|N|J|kJ|W|kW|V|A|K|Pa|kPa|Hz|mol|in|ft)"
    r"(?:\^\{?[23]\}?)?\s*$"
)
_BRACKETED_ARRAY = re.compile(
    r"^\s*(?:\\left\s*)?[\[(]\s*(\\begin\{array\}.*\\end\{array\})\s*(?:\\right\s*)?[\])]\s*$", re.DOTALL
)
_ASCII_RELATIONS = (
    (re.compile(r"(?<![<>=])(?:>=|=>)(?![<>=])"), r"\\geq "),
    (re.compile(r"(?<![<>=])(?:<=|=<)(?![<>=])"), r"\\leq "),
)
_CLOCK_HALF = re.compile(
    r"\b(\d{1,2}):(\d{2})\s*(?:\\(?:text|mathrm|textrm|mbox)\s*\{\s*)?([ap])\.?\s*m\b\.?\s*\}?", re.IGNORECASE
)
_SPELLED_CONNECTIVE = re.compile(r"\\text\{\s*(and|or)\s*\}")  # \text{or} joins items as \text{ or } does
_QUAD_BEFORE_LABEL = re.compile(r"\s*\\q?quad(?![a-zA-Z])\s*(?=(?:[A-Za-z](?:_\{?\w+\}?)?|\([^()=]*\))\s*=)")
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def clean_notation(s: str) -> str:
    """Notation that means the same as plainer LaTeX, rewritten (see the module doc)."""
    s = _CURRENCY.sub("", s)
    for char, power in _POWERS.items():
        s = s.replace(char, power)
    s = _RADICAL.sub(lambda m: "\\sqrt{" + m.group(1).strip("(){}") + "}", s)
    s = _PMOD.sub("", s)
    for pattern, repl in _ASCII_RELATIONS:
        s = pattern.sub(repl, s)
    s = _CLOCK_HALF.sub(_clock_12h, s)
    s = _SPELLED_CONNECTIVE.sub(r"\\text{ \1 }", s)
    s = _QUAD_BEFORE_LABEL.sub(", ", s)  # x = 1 \quad x = 4: two items
    s = re.sub(r"\\q?quad(?![a-zA-Z])", " ", s)
    s = _BRACKETED_ARRAY.sub(r"\1", s)  # [\begin{array}...\end{array}] is a matrix, as pmatrix is
    s = _UNIT.sub("", s)
    s = _REPEATING.sub(_repeating_fraction, s)
    s = s.rstrip()
    if s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1].rstrip()
    return s


def _clock_12h(m: re.Match) -> str:
    """``3:15 P.M.`` -> ``3:15pm``, ``12:05 \\text{ am}`` -> ``12:05am`` (see :func:`clock_times_equal`)."""
    return f"{int(m.group(1))}:{m.group(2)}{m.group(3).lower()}m"


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})([ap]m)?")


def clock_times_equal(a: str, b: str) -> bool | None:
    """Whether two clock times are the same time; None unless both are clock times. A time without am/pm is
    read as written (``3:15`` is not ``15:15``, nor is ``1:30`` ``13:30``) except against one with am/pm, where
    it may mean either half of the day (``3:15`` is ``3:15pm`` and ``3:15am``)."""
    ma, mb = _CLOCK.fullmatch(a), _CLOCK.fullmatch(b)
    if not (ma and mb):
        return None
    if int(ma.group(2)) != int(mb.group(2)):
        return False
    hours_a, hours_b = _hours(ma, bool(mb.group(3))), _hours(mb, bool(ma.group(3)))
    return not hours_a.isdisjoint(hours_b)


def _hours(m: re.Match, other_marked: bool) -> set[int]:
    """The hours (0-23) a clock time may mean next to another that has (or lacks) am/pm."""
    hour = int(m.group(1))
    if m.group(3):
        return {hour % 12 + (12 if m.group(3) == "pm" else 0)}
    return {hour % 12, hour % 12 + 12} if other_marked and 1 <= hour <= 12 else {hour}


def _repeating_fraction(m: re.Match) -> str:
    sign, whole, fixed, cycle = m.groups()
    value = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    value += Fraction(int(cycle), (10 ** len(cycle) - 1) * 10 ** len(fixed))
    value = -value if sign else value
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}" if value.denominator != 1 else str(value.numerator)


# ---- labels ------------------------------------------------------------------------------

_NAME = r"(?:[A-Za-z]|\\[a-zA-Z]+)(?:_\{?[\w\\]+\}?)?'*"
_SEGMENT = r"[A-Z]{2,3}"
_LABEL = re.compile(
    rf"^\s*(?:{_SEGMENT}|{_NAME}(?:\(\s*{_NAME}\s*\))?|\|\s*[A-Za-z]{{1,3}}\s*\||\(\s*{_NAME}(?:\s*,\s*{_NAME})+\s*\)"
    rf"|{_NAME}(?:\s*:\s*{_NAME})+|{_SEGMENT}(?:\s*:\s*{_SEGMENT})+|\\frac\{{\s*{_SEGMENT}\s*\}}\{{\s*{_SEGMENT}\s*\}})"
    rf"\s*=(?!=)"
)
_CONNECTIVE = re.compile(r"\\text\{\s*(?:and|or)\s*\}|and|or|\\quad|\\qquad")
_SEPARATORS = (",", ";", "\\text{ and }", " and ", "\\quad", "\\qquad", "\\text{ or }", " or ")
_SOLUTION_SEPARATORS = (";", "\\text{ or }", " or ", "\\text{ and }", " and ")


def labelled_items(s: str) -> list[tuple[str, str]] | None:
    """``[(label, value), ...]`` when every top-level item is ``label = value`` with a simple label.

    A label written once covers the values after it (``k = 2, 4, 6``: three values of ``k``), and solutions
    that each assign the same labels (``a=1, b=3; a=3, b=1``) become one tuple label (``(a,b)``) per solution.
    """
    groups = [g for g in split_top(s, _SOLUTION_SEPARATORS) if g.strip()]
    if len(groups) > 1:
        solutions = [_items(g) for g in groups]
        labels = {tuple(label for label, _ in sol) for sol in solutions if sol}
        if all(solutions) and len(labels) == 1 and len(next(iter(labels))) > 1 and len(set(next(iter(labels)))) > 1:
            label = "(" + ",".join(next(iter(labels))) + ")"
            return [(label, "(" + ",".join(v for _, v in sol) + ")") for sol in solutions]
    return _items(s)


def _items(s: str) -> list[tuple[str, str]] | None:
    items = [i.strip() for i in split_top(s, _SEPARATORS) if i.strip() and not _CONNECTIVE.fullmatch(i.strip())]
    out: list[tuple[str, str]] = []
    for item in items:
        m = _LABEL.match(item)
        if not m and out and len({label for label, _ in out}) == 1 and "=" not in item:
            out.append((out[0][0], item))  # k = 2, 4, 6: the label covers the values after it
            continue
        value = item[m.end() :].strip() if m else ""
        if not m or not value or "=" in value:
            return None
        label = re.sub(r"\s+", "", item[: m.end() - 1])
        out += [(label, v) for v in expand_pm([value])]  # x = \pm 3: two values of x
    return out or None


def has_relation(s: str) -> bool:
    """Whether ``s`` holds an ``=`` outside brackets (an equation or a labelled answer)."""
    return len(split_top(s, ("=",))) > 1


# ---- conditions on one variable as intervals ------------------------------------------------

_LESS = {"<": False, "\\lt": False, "\\le": True, "\\leq": True, "\\leqslant": True, "≤": True}
_MORE = {">": False, "\\gt": False, "\\ge": True, "\\geq": True, "\\geqslant": True, "≥": True}
_OPS = sorted({**_LESS, **_MORE}, key=len, reverse=True)
_OP = re.compile("(" + "|".join(re.escape(o) + (r"(?![a-zA-Z])" if o[0] == "\\" else "") for o in _OPS) + ")")
_VARIABLE = re.compile(rf"^{_NAME}$")
_SET_BUILDER = re.compile(rf"^\\\{{\s*({_NAME})\s*(?:\\mid|\||:)\s*(.+?)\s*\\\}}$")
_NOT_EQUAL = re.compile(rf"^\s*({_NAME})\s*\\neq?(?![a-zA-Z])\s*([^,;=]+?)\s*$")
_IN = re.compile(rf"^\s*({_NAME})\s*\\in\s*(.+)$")
_OR = ("\\text{ or }", " or ", "\\text{or}", "\\lor", "\\vee", ",")
INFINITY = "\\infty"


def as_intervals(s: str) -> str | None:
    """``s`` as interval notation when it is a condition on one variable (see the module doc)."""
    s = s.strip()
    m = _SET_BUILDER.match(s)
    if m:
        return _conditions(m.group(2), m.group(1))
    m = _NOT_EQUAL.match(s)
    if m and not _OP.search(m.group(2)):  # x \neq 2: all reals but 2
        return f"(-{INFINITY},{m.group(2)})\\cup({m.group(2)},{INFINITY})"
    m = _IN.match(s)
    if m and not _OP.search(m.group(2)):
        return m.group(2).strip()
    return _conditions(s, None) if _OP.search(s) else None


def has_inequality(s: str) -> bool:
    """Whether ``s`` holds an inequality sign (``<``, ``\\geq``, ...)."""
    return _OP.search(s) is not None


def _conditions(s: str, variable: str | None) -> str | None:
    parts = [p.strip() for p in split_top(s, _OR) if p.strip()]
    intervals = []
    for part in parts:
        found = _conjunction(part)
        if found is None or (variable is not None and found[0] != variable):
            return None
        variable = found[0]
        intervals.append(_interval(*found[1]))
    return "\\cup".join(intervals) if intervals else None


_AND = ("\\text{ and }", "\\text{and}", " and ", "\\land", "\\wedge")
Bounds = tuple[str, bool, str, bool]  # low, low closed, high, high closed


def _conjunction(s: str) -> tuple[str, Bounds] | None:
    """``x \\ge 3 \\text{ and } x < 5`` as ``3 \\le x < 5``: one lower and one upper bound of one variable."""
    parts = [p.strip() for p in split_top(s, _AND) if p.strip()]
    if len(parts) == 1:
        return _chain(parts[0])
    found = [_chain(p) for p in parts]
    if len(found) != 2 or None in found or found[0][0] != found[1][0]:
        return None
    (var, a), (_, b) = found
    lower, upper = (a, b) if b[0] == "-" + INFINITY else (b, a)
    if lower[2] != INFINITY or upper[0] != "-" + INFINITY:
        return None
    return var, (lower[0], lower[1], upper[2], upper[3])


def _chain(s: str) -> tuple[str, Bounds] | None:
    """``(variable, bounds)`` of ``a < x``, ``x \\ge b`` or ``a \\le x < b``."""
    pieces = _OP.split(s)
    terms, ops = [p.strip() for p in pieces[0::2]], pieces[1::2]
    if len(ops) not in (1, 2) or any(not t for t in terms):
        return None
    terms, ops = _isolated(terms, ops)
    if len(ops) == 2:
        if not _VARIABLE.match(terms[1]):
            return None
        lower_op, upper_op = ops
        if lower_op in _MORE and upper_op in _MORE:  # b > x > a
            return terms[1], (terms[2], _MORE[upper_op], terms[0], _MORE[lower_op])
        if lower_op in _LESS and upper_op in _LESS:
            return terms[1], (terms[0], _LESS[lower_op], terms[2], _LESS[upper_op])
        return None
    op = ops[0]
    if _VARIABLE.match(terms[0]) and not _VARIABLE.match(terms[1]):
        var, bound, var_left = terms[0], terms[1], True
    elif _VARIABLE.match(terms[1]) and not _VARIABLE.match(terms[0]):
        var, bound, var_left = terms[1], terms[0], False
    else:
        return None
    below = (op in _LESS) == var_left  # x < b, or b > x: bounded above
    closed = _LESS.get(op, _MORE.get(op))
    return var, (("-" + INFINITY, False, bound, closed) if below else (bound, closed, INFINITY, False))


_MIRROR = {"<": ">", "\\lt": "\\gt", "\\le": "\\ge", "\\leq": "\\geq", "\\leqslant": "\\geqslant", "≤": "≥"}
_MIRROR.update({v: k for k, v in _MIRROR.items()})
_COEFFICIENT = r"\d+(?:\.\d+)?|\\frac\{\d+\}\{\d+\}"
_LINEAR_TERM = re.compile(rf"({_COEFFICIENT})?(?:\\cdot)?((?![ei](?![\w{{]))[A-Za-z](?:_\{{?\w+\}}?)?)")


def _isolated(terms: list[str], ops: list[str]) -> tuple[list[str], list[str]]:
    """``-3 \\le 2x + 1 < 5`` as ``-2 \\le x < 2``, ``2 - y < 0`` as ``2 < y``: a linear side in one variable,
    numbers elsewhere, solved exactly; anything else unchanged."""
    middle = 1 if len(ops) == 2 else next((k for k in (0, 1) if not _number(terms[k])), None)
    linear = _linear(terms[middle]) if middle is not None else None
    others = [_number(t) for k, t in enumerate(terms) if k != middle]
    if linear is None or None in others or _VARIABLE.match(terms[middle]):
        return terms, ops
    var, slope, shift = linear
    bounds = iter(_latex_number((value - shift) / slope) for value in others)
    terms = [var if k == middle else next(bounds) for k in range(len(terms))]
    return terms, ops if slope > 0 else [_MIRROR[op] for op in ops]


def _linear(term: str) -> tuple[str, Fraction, Fraction] | None:
    """``(x, a, b)`` for a term ``a x + b`` (``2 - y``, ``\\frac{1}{2}x + 3``) with a != 0."""
    parts = re.findall(r"[+-]?[^+-]+", term.replace(" ", ""))
    var, slope, shift = None, Fraction(0), Fraction(0)
    for part in parts:
        sign, body = (-1 if part[0] == "-" else 1), part.lstrip("+-")
        m = _LINEAR_TERM.fullmatch(body)
        if m and var in (None, m.group(2)):
            var, slope = m.group(2), slope + sign * (_number(m.group(1)) if m.group(1) else 1)
            continue
        value = _number(body)
        if value is None:
            return None
        shift += sign * value
    return (var, slope, shift) if var is not None and slope != 0 else None


def _number(s: str) -> Fraction | None:
    found = parse_number(s)
    return found.value if found is not None else None


def _latex_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return ("-" if value < 0 else "") + f"\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _interval(low: str, low_closed: bool, high: str, high_closed: bool) -> str:
    return ("[" if low_closed else "(") + f"{low},{high}" + ("]" if high_closed else ")")
