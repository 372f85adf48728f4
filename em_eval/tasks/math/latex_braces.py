"""Brace matching in LaTeX text, shared by answer extraction and normalisation."""

from __future__ import annotations


def closing_brace(s: str, i: int) -> int | None:
    """Index of the ``}`` closing the group that opens at ``s[i] == '{'`` (escaped braces skipped);
    None if it never closes."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None
