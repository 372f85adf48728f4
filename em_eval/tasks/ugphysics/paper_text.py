r"""The text side of the paper's UGPhysics judge (EM_PT cafe72e ``eval/UGPhysics/codes/judge.py``), rewritten.

Its steps as ``Judger.auto_judge`` runs them, quirks kept on purpose (they change the paper's scores):

* extraction: trailing ``( [ { \ : . / , # ? $ " '`` dropped; only the text after the last "herefore";
  the last ``\boxed{}`` (or the first balanced one, or the whole text); without "oxed{", the text after
  "is the ans" / "is our ans" / "answer is" / "answer:" / "answer :";
* normalisation of the whole box, then of each answer again: ``%`` deleted (``50\%, 3`` becomes ``503``),
  ``\approx`` read as ``=``, spaces deleted, ``x = v`` read as ``v`` when ``x`` has at most two characters,
  ``0.5`` written ``\frac{1}{2}``;
* answers split on commas outside ``()`` and ``[]`` (braces do not protect), ``\pm`` doubling an answer;
* constant removal: every listed constant name deleted as a substring (``e`` and ``h`` inside ``\hbar``,
  ``\theta``, ``\mathrm{e}`` ...).

The symbolic judges (NV, IN, EX, EQ, TUP) are in :mod:`em_eval.tasks.ugphysics.paper_sympy`.
"""

from __future__ import annotations

import re

TYPE_ORDER = ("MC", "TF", "NV", "IN", "EX", "EQ", "TUP")
PHYSICAL_CONSTANTS = (  # utils.py PHY_CONST, in its order (removal is sequential substring deletion)
    "G",
    "N_A",
    "N_{A}",
    "R",
    "V_m",
    "V_{m}",
    "e",
    "m_e",
    "m_{e}",
    "m_p",
    "m_{p}",
    "m_n",
    "m_{n}",
    "\\varepsilon_0",
    "\\varepsilon_{0}",
    "\\epsilon_0",
    "\\epsilon_{0}",
    "\\mu_0",
    "\\mu_{0}",
    "\\mu_e",
    "\\mu_{e}",
    "\\mu_p",
    "\\mu_{p}",
    "a_0",
    "a_{0}",
    "\\mu_B",
    "\\mu_{B}",
    "\\mu_N",
    "\\mu_{N}",
    "\\hbar",
    "h",
    "\\alpha",
    "R_\\infty",
    "R_{\\infty}",
)
TRAILING = set("([{\\:./,#?$\"'ки")  # NO_TRAILING_STRS as the one-character test uses it
TRUE_WORDS = ("TRUE", "YES", "T", "Y")
FALSE_WORDS = ("FALSE", "NO", "F", "N")
CHINESE_TRUE, CHINESE_FALSE = ("是", "对", "正确", "能"), ("否", "错", "错误", "不能")
_MARKERS = ("is the ans", "is our ans")
_TAIL_MARKERS = ("answer is", "answer:", "answer :")
_SIGNALS = (
    ("\\left", ""),
    ("\\right", ""),
    ("∶", ":"),
    ("，", ","),
    ("$", ""),
    ("\\approx", "="),
    ("\\simeq", "="),
    ("\\sim", "="),
    ("^\\prime", "'"),
    ("^{\\prime}", "'"),
    ("^\\circ", ""),
    ("%", ""),
)


class PaperTextError(ValueError):
    """The paper's text handling raised (its evaluation would have crashed on this response)."""


def extract(response: str) -> str | None:
    """``extract_ans`` with strict extraction: the answer text, or None."""
    s = clean_trailing(response)
    if "herefore" in s:
        s = s.split("herefore")[-1].strip()
    if "oxed{" in s:
        return _boxed(s)
    for marker in _MARKERS:
        if marker in s:
            before = s.split(marker)[-2].strip()
            s = re.split(r"(,|\.|!\|?)", before)[-1].strip()
            break
    else:
        for marker in _TAIL_MARKERS:
            if marker in s:
                s = s.split(marker)[-1].strip()
                break
        else:
            return None
    return s[1:-1] if s.startswith("$") and s.endswith("$") else s


def clean_trailing(s: str) -> str:
    s = str(s).strip()
    while s and s[-1] in TRAILING:
        s = s[:-1].strip()
    return s


def _boxed(text: str) -> str:
    start = text.rfind("\\boxed")
    start = text.rfind("\\fbox") if start < 0 else start
    content = None
    if start >= 0:
        end = _close_of_first_group(text, start)
        whole = text[start : end + 1] if end is not None else ""
        if whole.startswith("\\boxed{") and whole.endswith("}"):
            content = whole[len("\\boxed{") : -1]
    if content is None:
        m = re.search(r"\\boxed{", text)
        if m is None:
            return text
        end = _close_of_first_group(text, m.end() - 1)
        if end is None:
            return text
        content = text[m.end() : end]
        if not content:
            return text
    return normalize(content)


def _close_of_first_group(text: str, start: int) -> int | None:
    """Index of the brace closing the first ``{`` at or after ``start`` (None if it never closes)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def normalize(answer: str) -> str:
    """``normalize_answer``: signal replacements, text wrappers dropped, then the MATH ``_strip_string``."""
    s = answer
    for old, new in _SIGNALS:
        s = s.replace(old, new)
    s = re.sub(r"\\(?:mathrm|mathbf)\{~?([^}]*)\}", r"\1", s)
    s = re.sub(r"\\text\{(.*?)\}", r"\1", s)
    s = re.sub(r"\\textbf\{(.*?)\}", r"\1", s)
    s = re.sub(r"frac([^{])(.)", r"frac{\1}{\2}", s)
    s = re.sub(r"sqrt([^{])", r"sqrt{\1}", s)
    s = s.strip().strip("$").strip().replace("\\,", " ")
    return _strip_math(s).rstrip("\\")


def _strip_math(s: str) -> str:
    for old, new in (
        ("\n", ""),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
    ):
        s = s.replace(old, new)
    if "\\text{ " in s:
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise PaperTextError("several '\\text{ ' in one answer")
        s = parts[0]
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = _braced_sqrt(s).replace(" ", "")
    s = _braced_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_fraction(s)


def _braced_sqrt(s: str) -> str:
    pieces = s.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise PaperTextError("'\\sqrt' at the end of an answer")
        out += "\\sqrt" + (piece if piece[0] == "{" else "{" + piece[0] + "}" + piece[1:])
    return out


def _braced_fracs(s: str) -> str:
    pieces = s.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise PaperTextError("'\\frac' at the end of an answer")
        out += "\\frac"
        if piece[0] == "{":
            out += piece
        elif len(piece) < 2:
            return s
        elif piece[1] != "{":
            out += "{" + piece[0] + "}{" + piece[1] + "}" + piece[2:]
        else:
            out += "{" + piece[0] + "}" + piece[1:]
    return out


def _slash_fraction(s: str) -> str:
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


def split_answers(text: str) -> list[str]:
    """``split_by_comma``: commas outside ``()`` / ``[]``; each part stripped of ``$``."""
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if start < len(text):
        parts.append(text[start:].strip())
    return [p.strip("$").strip() for p in parts]


def expand_plus_minus(answers: list[str]) -> list[str]:
    out = []
    for a in answers:
        out += [a.replace("\\pm", "+"), a.replace("\\pm", "-")] if "\\pm" in a else [a]
    return out


def prepared_answers(text: str) -> list[str]:
    """Extracted text -> the answers ``auto_judge`` compares (split, ``\\pm`` doubled, normalised again)."""
    return [normalize(a) for a in expand_plus_minus(split_answers(text))]


def remove_constants(s: str) -> str:
    for constant in PHYSICAL_CONSTANTS:
        s = s.replace(constant, "")
    return re.sub(r"\s+", " ", s if s.strip() else "1").strip()


def judge_mc(pred: str, gold: str) -> bool:
    if pred == gold:
        return True
    if pred.startswith("[") and pred.endswith("]"):
        pred = pred.strip("[]")
    if pred[0].isascii() and pred[0].isupper() and len(pred) > 1 and pred[1] == ":":  # IndexError on "" as theirs
        return pred[0] == gold
    return False


def judge_tf(pred: str, gold: str) -> bool:
    if any("\u4e00" <= ch <= "\u9fff" for ch in pred):
        pred = "TRUE" if pred in CHINESE_TRUE else "FALSE" if pred in CHINESE_FALSE else pred
    else:
        pred = pred.upper()
    gold = gold.upper()
    if gold not in TRUE_WORDS + FALSE_WORDS:
        raise PaperTextError("not a true/false gold")
    if pred not in TRUE_WORDS + FALSE_WORDS:
        return False
    return (pred in TRUE_WORDS) == (gold in TRUE_WORDS)
