"""Grader benchmark: our ``is_equiv`` vs math-verify on the 500 MATH-500 gold answers.

Two pair sets, graded by both on the same (prediction, gold) strings:

* equivalent: each gold re-formatted the way model answers differ (``\\frac{7}{4}`` -> ``1.75``,
  ``3\\sqrt{13}`` -> ``\\sqrt{117}``, ``90^\\circ`` -> ``90``, reordered sums and lists,
  ``pmatrix`` -> ``bmatrix``, ``x=5`` -> ``5``, thousands separators, ...); label True;
* wrong: an integer or fraction off by one, else the next problem's gold; label False;
* bank: the hand-checked cases of ``tests/integration/test_grading_math_cases.py`` (ours passes them by
  construction; the row shows where math-verify's conventions differ).
* recorded: the hand-labelled pairs of ``tests/data/math_grader_bank.json`` (issue 23's kinds).

Each grader starts every set with nothing parsed (our per-answer cache is cleared). Reports
items/s, median and worst single-item latency, accuracy against the labels and the
agreement between the two graders. Our grader's worker is started before timing.
math-verify runs in process with its default (signal-based) time limits, as it is usually used.

    EM_EVAL_DATA_DIR=../shared/data python bench/grading.py [--limit N] [--show K]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

from em_eval.tasks.math.grade import comparable_form, is_equiv
from em_eval.tasks.math.normalize import normalize, split_top
from em_eval.tasks.math.task import documents

_ROOT = Path(__file__).resolve().parent.parent


# ---- re-formatting -------------------------------------------------------------------------------


def _decimal(fr: Fraction) -> str | None:
    den = fr.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    return None if den != 1 else format(float(fr), ".12g")


def _rotate_terms(s: str) -> str | None:
    """``a + b - c`` -> ``b - c + a`` (top-level sums only)."""
    terms, depth, start = [], 0, 0
    for i, c in enumerate(s):
        depth += c in "({[" and 1 or (c in ")}]" and -1 or 0)
        if depth == 0 and c in "+-" and i > 0 and s[i - 1] not in "^_{(e" and s[:i].strip():
            terms.append(s[start:i].strip())
            start = i
    terms.append(s[start:].strip())
    if len(terms) < 2:
        return None
    signed = [t if t[0] in "+-" else "+" + t for t in terms]
    rotated = signed[1:] + signed[:1]
    out = " ".join(rotated)
    return out[1:].strip() if out.startswith("+") else out


_FRAC = r"(-)?\\d?frac\{?(\d+)\}?\{?(\d+)\}?"


def _tuple_spacing(g: str) -> str | None:
    if g.startswith("\\left"):
        return g.replace("\\left", "").replace("\\right", "").replace(" ", "")
    if g[:1] in "([" and g[-1:] in ")]" and "\\cup" not in g and ")(" not in g:
        return "\\left" + g[0] + " " + ", ".join(split_top(g[1:-1], (",",))) + " \\right" + g[-1]
    return None


def _reversed_list(g: str) -> str | None:
    if re.fullmatch(r"\d{1,3}(,\d{3})+", g):
        return None
    inner = g[2:-2] if g.startswith("\\{") and g.endswith("\\}") else g
    items = split_top(inner, (",",))
    if len(items) < 2:
        return None
    out = ", ".join(i.strip() for i in reversed(items))
    return "\\{" + out + "\\}" if inner is not g else out


def _plus_minus(g: str) -> str | None:
    m = re.fullmatch(r"(.+?)\s*\\pm\s*(.+)", g)
    return m and "," not in g and f"{m[1]}+{m[2]}, {m[1]}-{m[2]}"


RULES: list[tuple[str, Callable[[str, int], str | None]]] = [
    (
        "integer",
        lambda g, i: (
            (f"{int(g):,}" if abs(int(g)) >= 1000 else [f"{g}.0", f"\\text{{{g}}}", f"0{g}"][i % 3])
            if re.fullmatch(r"-?\d+", g)
            else None
        ),
    ),
    (
        "fraction->decimal",
        lambda g, i: (lambda m: m and _decimal(Fraction(int(m[2]), int(m[3])) * (-1 if m[1] else 1)))(
            re.fullmatch(_FRAC, g)
        ),
    ),
    ("fraction->a/b", lambda g, i: (lambda m: m and f"{m[1] or ''}{m[2]}/{m[3]}")(re.fullmatch(_FRAC, g))),
    (
        "decimal->fraction",
        lambda g, i: (
            (lambda fr: f"\\frac{{{fr.numerator}}}{{{fr.denominator}}}")(Fraction(g))
            if re.fullmatch(r"-?\d*\.\d+", g)
            else None
        ),
    ),
    (
        "k sqrt m -> sqrt(k^2 m)",
        lambda g, i: (lambda m: m and f"\\sqrt{{{int(m[1]) ** 2 * int(m[2])}}}")(
            re.fullmatch(r"(\d+)\s*\\sqrt\{?(\d+)\}?", g)
        ),
    ),
    ("sqrt -> power", lambda g, i: (lambda m: m and f"{m[1]}{m[2]}^{{1/2}}")(re.fullmatch(r"(-?)\\sqrt\{(\d+)\}", g))),
    ("k pi -> pi k", lambda g, i: (lambda m: m and f"\\pi \\cdot {m[1] or 1}")(re.fullmatch(r"(\d*)\s*\\pi", g))),
    ("degrees", lambda g, i: (lambda m: m and [m[1], f"{m[1]} degrees"][i % 2])(re.fullmatch(r"(\d+)\^\\circ", g))),
    ("text", lambda g, i: (lambda m: m and m[1])(re.fullmatch(r"\\text\{([^{}]*)\}", g))),
    (
        "units dropped",
        lambda g, i: (lambda m: m and m[1])(re.fullmatch(r"([\d.]+)\s*\\(?:mbox|text)\{[^{}]*\}(?:\^2)?", g)),
    ),
    ("dollars", lambda g, i: g[2:].replace(",\\!", ",") if g.startswith("\\$") else None),
    ("thousands", lambda g, i: g.replace(",\\!", "").replace(" ", "") if ",\\!" in g else None),
    ("assignment", lambda g, i: (lambda m: m and m[1])(re.fullmatch(r"[a-z]\s*(?:=|\\in)\s*(.+)", g))),
    ("matrix", lambda g, i: g.replace("pmatrix", "bmatrix") if "pmatrix" in g else None),
    (
        "base subscript",
        lambda g, i: (lambda m: m and (f"{m[1]}_{m[3]}" if m[2] else f"{m[1]}_{{{m[3]}}}"))(
            re.fullmatch(r"(\d+)_(\{)?(\d)\}?", g)
        ),
    ),
    ("plus-minus expanded", lambda g, i: _plus_minus(g)),
    ("interval/tuple spacing", lambda g, i: _tuple_spacing(g)),
    ("reversed list", lambda g, i: _reversed_list(g)),
    ("reordered sum", lambda g, i: _rotate_terms(g) if "=" not in g else None),
    (
        "coefficient dot",
        lambda g, i: (lambda m: m and f"{m[1]} \\cdot {m[2]}")(re.fullmatch(r"(\d+)\s*([a-zA-Z].*)", g)),
    ),
    ("dfrac", lambda g, i: g.replace("\\frac", "\\dfrac") if "\\frac" in g else None),
    ("spaces and $", lambda g, i: f"$ {g} $"),
]


def reformat(gold: str, i: int) -> tuple[str, str]:
    """An equivalent writing of ``gold`` and the rule that produced it."""
    for name, rule in RULES:
        out = rule(gold, i)
        if out and out != gold:
            return out, name
    return f"$ {gold} $", "spaces and $"


def wrong(golds: list[str], i: int) -> str:
    """A wrong answer for problem ``i``: off by one where numeric, else a later problem's different gold."""
    g = golds[i]
    if re.fullmatch(r"-?\d+", g):
        return str(int(g) + 1)
    m = re.fullmatch(_FRAC, g)
    if m:
        return f"{m[1] or ''}\\frac{{{int(m[2]) + 1}}}{{{m[3]}}}"
    for j in range(1, len(golds)):
        other = golds[(i + j) % len(golds)]
        if normalize(other).replace(" ", "") != normalize(g).replace(" ", ""):
            return other
    raise ValueError("all golds equal")


# ---- grading --------------------------------------------------------------------------------------


def math_verify_equiv(pred: str, gold: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))


def run(grader: Callable[[str, str], bool], pairs: list[tuple[str, str]]) -> tuple[list[bool], list[float]]:
    verdicts, latencies = [], []
    for pred, gold in pairs:
        start = time.perf_counter()
        try:
            verdicts.append(bool(grader(pred, gold)))
        except Exception:  # math-verify may raise on odd input; count as "not equivalent"
            verdicts.append(False)
        latencies.append(time.perf_counter() - start)
    return verdicts, latencies


def recorded_pairs() -> list[tuple[str, str, bool]]:
    """The hand-labelled (prediction, gold, label) pairs recorded with the official graders' verdicts."""
    cases = json.loads((_ROOT / "tests" / "data" / "math_grader_bank.json").read_text(encoding="utf-8"))["cases"]
    return [(c["pred"], c["gold"], c["label"]) for c in cases]


def bank_pairs() -> list[tuple[str, str, bool]]:
    """The hand-checked (prediction, gold, expected) bank of the test suite."""
    path = _ROOT / "tests" / "integration" / "test_grading_math_cases.py"
    spec = importlib.util.spec_from_file_location("math_equiv_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EQUIV_CASES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--show", type=int, default=8, help="disagreements to print per set")
    args = ap.parse_args()

    golds = [d["answer"] for d in documents("math500")][: args.limit]
    equivalent, rules = zip(*(reformat(g, i) for i, g in enumerate(golds)))
    sets = {
        "equivalent": (list(zip(equivalent, golds)), [True] * len(golds)),
        "wrong": ([(wrong(golds, i), g) for i, g in enumerate(golds)], [False] * len(golds)),
    }
    bank = bank_pairs()
    sets["bank"] = ([(p, g) for p, g, _ in bank], [e for _, _, e in bank])
    recorded = recorded_pairs()
    sets["recorded"] = ([(p, g) for p, g, _ in recorded], [e for _, _, e in recorded])
    is_equiv("x+1", "1+x")  # start our grading worker outside the timings
    math_verify_equiv("x+1", "1+x")

    counts: dict[str, int] = {}
    for r in rules:
        counts[r] = counts.get(r, 0) + 1
    print("re-formatting rules used:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    print()
    header = f"{'set':<11} {'grader':<12} {'pairs':>5} {'correct':>8} {'items/s':>9} {'median ms':>10} {'worst ms':>9}"
    print(header)
    print("-" * len(header))
    for set_name, (pairs, labels) in sets.items():
        results, rates = {}, {}
        for grader_name, grader in (("em-eval", is_equiv), ("math-verify", math_verify_equiv)):
            comparable_form.cache_clear()  # each set starts cold: no answer parsed in an earlier set
            verdicts, latencies = run(grader, pairs)
            results[grader_name] = verdicts
            rates[grader_name] = len(pairs) / sum(latencies)
            correct = sum(v == label for v, label in zip(verdicts, labels)) / len(verdicts)
            print(
                f"{set_name:<11} {grader_name:<12} {len(pairs):>5} {correct:>8.1%} {rates[grader_name]:>9.0f} "
                f"{1000 * statistics.median(latencies):>10.2f} {1000 * max(latencies):>9.1f}"
            )
        ours, theirs = results["em-eval"], results["math-verify"]
        agree = sum(a == b for a, b in zip(ours, theirs)) / len(ours)
        print(
            f"{set_name:<11} {'agreement':<12} {len(pairs):>5} {agree:>8.1%}   "
            f"(em-eval throughput = {rates['em-eval'] / rates['math-verify']:.1f} x math-verify's)"
        )
        shown = 0
        for (pred, gold), a, b in zip(pairs, ours, theirs):
            if a != b and shown < args.show:
                print(f"    disagree: pred={pred!r} gold={gold!r} em-eval={a} math-verify={b}")
                shown += 1
        print()


if __name__ == "__main__":
    main()
