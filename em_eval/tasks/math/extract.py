r"""Final-answer extraction from a model response.

Order: drop ``<think>...</think>`` reasoning; take the last ``\boxed{}`` / ``\fbox{}`` (brace
matched; boxes separated only by "and", commas or ``$`` are joined, for "all solutions"
answers); else the text after the last "final answer is" / "the answer is" / "answer:" marker.
Every scan is linear in the response length, so 100 kB of garbage is cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from em_eval.tasks.math.latex_braces import closing_brace

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
MAX_JOINED_BOXES = 10

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_CONNECTOR = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;]|\\quad|\\qquad|\\[,;:!]|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b)*"
)
_MARKER = re.compile(r"final answer is|the answer is|answer is|final answer:|answer:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n|\s+I hope\b")


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract` found: the answer text (or None), how, and whether the response was cut off."""

    answer: str | None
    method: str  # "boxed" | "marker" | "none"
    unfinished: bool  # an opened <think> or \boxed{ never closed (token limit or runaway output)


def extract(text: str | None) -> Extraction:
    """The final answer of ``text`` with its extraction method and an unfinished-output flag."""
    text = text or ""
    visible, think_open = _visible_part(text)
    boxed, box_open = _last_boxed(visible)
    unfinished = think_open or box_open
    if boxed is not None:
        return Extraction(boxed, "boxed", unfinished)
    if box_open:
        return Extraction(None, "none", True)
    marked = _after_marker(visible)
    if marked is not None:
        return Extraction(marked, "marker", unfinished)
    return Extraction(None, "none", unfinished)


def _visible_part(text: str) -> tuple[str, bool]:
    """Text outside the reasoning block, and whether a ``<think>`` was never closed."""
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        return text[close + len(THINK_CLOSE) :], False
    open_ = text.find(THINK_OPEN)
    if open_ >= 0:
        return text[:open_], True
    return text, False


def _box_span(text: str, start: int) -> tuple[int, int] | None:
    r"""(content start, content end) of the box whose command starts at ``start``; None if never closed."""
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i >= n:
        return None
    if text[i] != "{":  # "\boxed 5": one token
        m = re.compile(r"[^\s$]+").match(text, i)
        return (i, m.end()) if m else None
    j = closing_brace(text, i)
    return None if j is None else (i + 1, j)


def _last_boxed(text: str) -> tuple[str | None, bool]:
    """Content of the last box (joined with adjacent boxes), and whether the last box is unclosed."""
    starts = [m.start() for m in _BOX.finditer(text)]
    if not starts:
        return None, False
    last = _box_span(text, starts[-1])
    if last is None:
        return None, True
    spans = [(starts[-1], last)]
    for start in reversed(starts[:-1]):
        if len(spans) >= MAX_JOINED_BOXES:
            break
        span = _box_span(text, start)
        next_cmd = spans[-1][0]
        if span is None or span[1] >= next_cmd:  # unclosed or encloses the next box
            break
        gap = text[span[1] + 1 : next_cmd]
        if len(gap) > 40 or not _CONNECTOR.fullmatch(gap):
            break
        spans.append((start, span))
    contents = [text[a:b].strip() for _, (a, b) in reversed(spans)]
    return ", ".join(c for c in contents if c) or None, False


def _after_marker(text: str) -> str | None:
    """The answer written after the last answer marker, up to the end of its sentence."""
    last = None
    for last in _MARKER.finditer(text):
        pass
    if last is None:
        return None
    rest = text[last.end() :].lstrip(" :*\t")
    rest = rest[:2000]
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        end = rest.find(close, len(open_)) if rest.startswith(open_) else -1
        if end > 0:
            rest = rest[len(open_) : end]
            break
    else:
        cut = _SENTENCE_END.search(rest)
        rest = rest[: cut.start()] if cut else rest
    rest = rest.strip().strip("*").strip().rstrip(".,;").strip()
    return rest or None


def boxed_contents(text: str) -> list[str]:
    r"""The contents of every closed ``\boxed{}`` / ``\fbox{}`` in ``text``, in order."""
    spans = (_box_span(text, m.start()) for m in _BOX.finditer(text))
    return [text[a:b].strip() for a, b in (s for s in spans if s is not None)]
