r"""Answer normalisation and structure: LaTeX string in, canonical string or :class:`Node` tree out.

Pure string work (no sympy), linear-time passes. ``normalize`` removes presentation
(``\left``, ``\text{}``, ``\dfrac``, spacing, ``$``, units, degrees, thousands separators,
markdown bold, ``x =`` prefixes); ``parse`` splits the result into tuples, intervals, sets,
unordered lists, unions and matrices whose leaves are scalars compared elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from em_eval.tasks.math.latex_braces import closing_brace

MAX_ANSWER_CHARS = 2000  # longer "answers" are compared as plain strings only

# ---- brace helpers -----------------------------------------------------------------------


def _group_end(s: str, i: int) -> int:
    """Index just past the ``{...}`` group opening at ``s[i] == '{'`` (or len(s) if unclosed)."""
    j = closing_brace(s, i)
    return len(s) if j is None else j + 1


def _unwrap_command(s: str, names: tuple[str, ...]) -> str:
    r"""Replace ``\name{X}`` by ``X`` for each command in ``names`` (brace matched, nested ok)."""
    pattern = re.compile(r"\\(?:%s)\s*\{" % "|".join(names))
    out, pos = [], 0
    for m in pattern.finditer(s):
        if m.start() < pos:
            continue
        brace = m.end() - 1
        end = _group_end(s, brace)
        closed = s[end - 1 : end] == "}" and end > brace + 1
        out.append(s[pos : m.start()])
        out.append(_unwrap_command(s[brace + 1 : end - 1] if closed else s[brace + 1 :], names))
        pos = end
    out.append(s[pos:])
    return "".join(out)


def _arg(s: str, i: int) -> tuple[str, int] | None:
    r"""One TeX argument at ``s[i]``: ``{...}``, a ``\command`` or a single character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] == "{":
        end = _group_end(s, i)
        return s[i + 1 : end - 1], end
    if s[i] == "\\":
        m = re.compile(r"\\[a-zA-Z]+").match(s, i)
        if m:
            return m.group(), m.end()
        return None
    return s[i], i + 1


def _brace_args(s: str, command: str, n_args: int) -> str:
    r"""Rewrite ``\frac12`` as ``\frac{1}{2}`` (and ``\sqrt2`` as ``\sqrt{2}``)."""
    out, pos = [], 0
    token = "\\" + command
    while True:
        k = s.find(token, pos)
        if k < 0:
            out.append(s[pos:])
            return "".join(out)
        after = k + len(token)
        if after < len(s) and s[after].isalpha():
            out.append(s[pos:after])
            pos = after
            continue
        out.append(s[pos:after])
        j, args = after, []
        if command == "sqrt" and j < len(s) and s[j] == "[":  # \sqrt[3]{x}: keep the index as is
            close = s.find("]", j)
            if close < 0:
                pos = j
                continue
            out.append(s[j : close + 1])
            j = close + 1
        for _ in range(n_args):
            got = _arg(s, j)
            if got is None:
                break
            text, j = got
            args.append(text)
        out.append("".join("{" + _brace_args(a, command, n_args) + "}" for a in args))
        pos = j


# ---- normalisation -----------------------------------------------------------------------

_SPACING = re.compile(r"\\\\|\\[!,]\s*|\\[;:> ]|\\q?quad\b|~|\\(?:displaystyle|textstyle|limits|nolimits)\b")
_SIZING = re.compile(
    r"\\(?:left|right|[bB]igg?[lr]?|middle)(?![a-zA-Z])\s*"
    r"(\\?[()\[\]{}|.]|\\[lr](?:vert|brace|brack|angle)|\\[lr]?[vV]ert|\\langle|\\rangle)?"
)
_DEGREES = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?(?:\s*(?:\\mathrm\{\s*[CFK]\s*\}|[CFK]\b))?|°|\\degree\b|\^\s*\{\s*\}\s*\\circ|\\circ\b"
)
_PERCENT = re.compile(r"\\?%")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TRAILING_TEXT_GROUP = re.compile(
    r"\\(?:text|textrm|mbox|mathrm|textnormal|operatorname)\s*\{([^{}]*)\}"
    r"\s*(?:\^\s*\{?\s*-?\d\s*\}?)?\s*$"
)
_UNIT_TAIL = re.compile(
    r"(?<=[\d}).])((?:\s+(?:per\s+)?[a-zA-Z]+\.?(?:\s*/\s*[a-zA-Z]+\.?)?(?:\^\{?-?\d\}?)?){1,4})\s*$"
)
_MATH_WORDS = {
    "and",
    "or",
    "pi",
    "inf",
    "infinity",
    "infty",
    "sqrt",
    "frac",
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "log",
    "ln",
    "exp",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "mod",
    "max",
    "min",
    "gcd",
    "lcm",
    "det",
    "i",
    "e",
    "no",
    "yes",
    "none",
    "true",
    "false",
    "even",
    "odd",
}
_SIMPLE_LHS = re.compile(
    r"^\s*(?:[a-zA-Z](?:_\{?[\w\\]+\}?)?(?:\s*\(\s*[a-zA-Z](?:\s*,\s*[a-zA-Z])*\s*\))?"
    r"|\\[a-zA-Z]+(?:_\{?\w+\}?)?)\s*(?:=|\\in\b)\s*(?!=)"
)
_LITERALS = (
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\(?:geqslant|geq|ge)(?![a-zA-Z])"), r"\\geq "),
    (re.compile(r"\\(?:leqslant|leq|le)(?![a-zA-Z])"), r"\\leq "),
    (re.compile(r"\\(?:neq|ne)(?![a-zA-Z])"), r"\\neq "),
    (re.compile(r"≤"), r"\\leq "),
    (re.compile(r"≥"), r"\\geq "),
    (re.compile(r"π"), r"\\pi "),
    (re.compile(r"∞|(?<![a-zA-Z\\])(?:infinity|inf)(?![a-zA-Z])"), r"\\infty "),
    (re.compile(r"(?<![a-zA-Z\\])pi(?![a-zA-Z])"), r"\\pi "),
    (re.compile(r"\\(?:emptyset|varnothing)(?![a-zA-Z])"), r"\\{\\}"),
    (re.compile(r"\\lbrace(?![a-zA-Z])"), r"\\{"),
    (re.compile(r"\\rbrace(?![a-zA-Z])"), r"\\}"),
    (re.compile(r"\\\$|\$|(?<!\\)\\[()\[\]]"), ""),  # $, \( \) \[ \] but not a row break \\ before (
    (re.compile(r"\*\*|__"), ""),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\(?:cdot|times)\s*10\s*\^"), r"\\times10^"),
    (re.compile(r"\\(?:dots|ldots|cdots)(?![a-zA-Z])"), r"\\dots"),
    (re.compile(r"−"), "-"),
)


def normalize(text: str) -> str:
    """Canonical form of one answer string (pure, linear time; see the module docstring)."""
    s = re.sub(r"\s+", " ", text).strip()
    if len(s) > MAX_ANSWER_CHARS:
        return s
    s = _unwrap_command(s, ("boxed", "fbox"))
    for pattern, repl in _LITERALS:
        s = pattern.sub(repl, s)
    s = _strip_trailing_units(s)
    s = _unwrap_command(
        s,
        (
            "text",
            "textrm",
            "textbf",
            "textit",
            "textnormal",
            "mbox",
            "mathrm",
            "mathbf",
            "mathit",
            "mathsf",
            "boldsymbol",
            "bm",
            "operatorname",
        ),
    )
    s = _SPACING.sub(_spacing, s)
    s = _SIZING.sub(_sizing, s)
    s = _DEGREES.sub("", s)
    s = _brace_args(s, "frac", 2)
    s = _brace_args(s, "sqrt", 1)
    s = re.sub(r"([_^])\{\s*(\w)\s*\}", r"\1\2", s)  # x^{2} -> x^2, 4210_{5} -> 4210_5
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip(" .;,").strip()
    s = _strip_word_units(s)
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    m = re.fullmatch(r"\(\s*([A-Za-z])\s*\)", s)  # multiple choice "(C)"
    if m:
        s = m.group(1)
    return s


def _spacing(m: re.Match) -> str:
    token = m.group()
    if token == "\\\\":  # a LaTeX row break stays
        return token
    return "" if token.startswith(("\\!", "\\,")) else " "  # 1,\!000 and 1\,000 are thousands


def _sizing(m: re.Match) -> str:
    delim = m.group(1) or ""
    if delim == ".":
        return ""
    return "|" if "vert" in delim else delim


def _strip_trailing_units(s: str) -> str:
    r"""Drop trailing ``\text{ cm}^2``-style groups (and ``/`` between them) that follow some math."""
    for _ in range(6):
        s = re.sub(r"(?:\s|/|\\cdot|\\[ ,;:!]|~)+$", "", s)
        m = _TRAILING_TEXT_GROUP.search(s)
        head = re.sub(r"(?:\s|\\[ ,;:!]|~)+$", "", s[: m.start()]) if m else ""
        if not m or not head or head.endswith(("=", "\\in")) or m.group(1).strip(" ~").lower() in {"and", "or"}:
            return s
        s = head
    return s


def _strip_word_units(s: str) -> str:
    """Drop trailing plain unit words ("5 cm", "30 degrees", "4 square units") after a number."""
    m = _UNIT_TAIL.search(s)
    if not m:
        return s
    words = re.findall(r"[a-zA-Z]+", m.group(1))
    if len(words[0]) < 2 or any(w.lower() in _MATH_WORDS for w in words):
        return s
    return s[: m.start()].rstrip()


def strip_assignment(s: str) -> str:
    r"""``x = 3`` -> ``3``, ``f(x) = 2x`` -> ``2x``, ``x \in [1,2]`` -> ``[1,2]`` (simple left sides only)."""
    m = _SIMPLE_LHS.match(s)
    if m and "=" not in s[m.end() :] and s[m.end() :].strip():
        return s[m.end() :].strip()
    return s


# ---- structure ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A parsed answer: ``kind`` is scalar | tuple | interval | set | list | union | matrix.

    Scalars keep their text and whether a percent sign was written; containers keep children
    (matrix children are rows, each a ``tuple`` node); tuples and intervals keep their brackets.
    """

    kind: str
    text: str = ""
    children: tuple["Node", ...] = ()
    brackets: str = ""
    percent: bool = False


_MATRIX = re.compile(r"^\\begin\{([pbBvV]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_ESCAPED_BRACKETS = (("\\{", 1), ("\\langle", 1), ("\\}", -1), ("\\rangle", -1))


def _escaped_bracket(s: str, i: int) -> tuple[int, int] | None:
    """(depth change, length) of the LaTeX bracket ``\\{ \\langle \\} \\rangle`` at ``s[i]``, if one is there."""
    for token, change in _ESCAPED_BRACKETS:
        if s.startswith(token, i):
            return change, len(token)
    return None


def split_top(s: str, seps: tuple[str, ...]) -> list[str]:
    """Split ``s`` at separators that are outside every bracket pair."""
    parts, depth, start, i, n = [], 0, 0, 0, len(s)
    while i < n:
        escaped = _escaped_bracket(s, i) if s[i] == "\\" else None
        if escaped:
            depth += escaped[0]
            i += escaped[1]
            continue
        if s[i] == "\\" and i + 1 < n and not s[i + 1].isalpha():
            if depth == 0 and any(s.startswith(sep, i) for sep in seps):
                pass
            else:
                i += 2
                continue
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            for sep in seps:
                if s.startswith(sep, i) and (not sep[-1].isalpha() or not s[i + len(sep) : i + len(sep) + 1].isalpha()):
                    parts.append(s[start:i])
                    i += len(sep)
                    start = i
                    break
            else:
                i += 1
            continue
        i += 1
    parts.append(s[start:])
    return parts


def _wrapped(s: str, open_: str, close: str) -> str | None:
    """Inside of ``s`` if one bracket pair encloses all of it (``(a)(b)`` is not wrapped)."""
    if not (s.startswith(open_) and s.endswith(close)) or len(s) < len(open_) + len(close):
        return None
    inner = s[len(open_) : len(s) - len(close)]
    depth = 0
    i = 0
    while i < len(inner):
        escaped = _escaped_bracket(inner, i) if inner[i] == "\\" else None
        if escaped:
            depth += escaped[0]
            if depth < 0:
                return None
            i += escaped[1]
            continue
        c = inner[i]
        if c == "\\":
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        i += 1
    return inner if depth == 0 else None


def expand_pm(items: list[str]) -> list[str]:
    r"""``a \pm b`` -> ``a+b``, ``a-b`` (one top-level ``\pm`` or ``\mp`` per item)."""
    out = []
    for item in items:
        parts = split_top(item, ("\\pm", "\\mp"))
        if len(parts) == 2 and parts[1].strip():
            a, b = parts[0].strip(), parts[1].strip()
            sign = "+" if "\\pm" in item else "-"
            other = "-" if sign == "+" else "+"
            out += [f"{a}{sign}{b}" if a else f"{sign}{b}", f"{a}{other}({b})" if a else f"{other}({b})"]
        else:
            out.append(item)
    return out


def parse(text: str, depth: int = 0) -> Node:
    """The structure of a normalised answer (see :class:`Node`)."""
    s = strip_assignment(text.strip())
    if depth > 8 or len(s) > MAX_ANSWER_CHARS:
        return Node("scalar", s)
    m = _MATRIX.match(s)
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip() and not re.fullmatch(r"\s*\\hline\s*", r)]
        return Node(
            "matrix",
            children=tuple(
                Node("tuple", children=tuple(parse(c, depth + 1) for c in r.split("&")), brackets="()") for r in rows
            ),
        )
    union = split_top(s, ("\\cup",))
    if len(union) > 1:
        return Node("union", children=tuple(parse(p, depth + 1) for p in union))
    inner = _wrapped(s, "\\{", "\\}")
    if inner is not None:
        items = [i for i in expand_pm(split_top(inner, (",", ";"))) if i.strip()]
        return Node("set", children=tuple(parse(i, depth + 1) for i in items))
    inner = _wrapped(s, "{", "}")
    if inner is not None:  # a bare-brace group: {1, 4, 9} is a set, {5} is 5
        items = [i for i in expand_pm(split_top(inner, (",", ";"))) if i.strip()]
        return (
            Node("set", children=tuple(parse(i, depth + 1) for i in items))
            if len(items) > 1
            else parse(inner, depth + 1)
        )
    inner = _wrapped(s, "\\langle", "\\rangle")
    if inner is not None:
        return Node("tuple", children=tuple(parse(i, depth + 1) for i in split_top(inner, (",",))), brackets="()")
    if s and s[0] in "([" and s[-1] in ")]":
        inner = _wrapped("(" + s[1:-1] + ")", "(", ")")
        if inner is not None:
            items = split_top(inner, (",",))
            if len(items) > 1:
                closed = s[0] == "[" or s[-1] == "]"
                kind = "interval" if len(items) == 2 and (closed or "\\infty" in inner) else "tuple"
                return Node(kind, children=tuple(parse(i, depth + 1) for i in items), brackets=s[0] + s[-1])
            if s[0] == "(" and s[-1] == ")":
                return parse(inner, depth + 1)
    items = split_top(s, (",", ";", "\\text{ and }", " and ", " or ", "\\text{ or }"))
    items = [i for i in expand_pm(items) if i.strip()]
    if len(items) > 1:
        return Node("list", children=tuple(parse(i, depth + 1) for i in items))
    if items and items[0].strip() != s.strip():
        return parse(items[0], depth + 1)
    percent = bool(_PERCENT.search(s))
    if percent:
        s = _PERCENT.sub("", s).strip()
    return Node("scalar", s, percent=percent)
