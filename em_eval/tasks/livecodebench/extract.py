"""LiveCodeBench's program extraction: the text between the last two lines that contain a fence.

As upstream's ``extract_code`` for chat models: fence lines are found by substring (any language
tag, or none), and with fewer than two of them there is no program (an empty string, which then
fails). Pure string function.
"""

from __future__ import annotations


def last_code_block(response: str) -> str:
    lines = response.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1:fences[-1]])
