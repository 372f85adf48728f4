"""LiveCodeBench's program extraction as the paper's ``lcb_runner`` fork does it.

The fork (EM_PT ``lcb_runner/utils/extraction_utils.py:18``) replaced upstream's line-based rule
with the one its LeetCode evaluation uses: the last ```` ```python ```` block that contains ``def ``
(else the last such block), else the same over untagged fences, else the text before the first
fence. :func:`em_eval.tasks.leetcode.extract.match_code` is that rule; this module names it for
LiveCodeBench. Upstream LiveCodeBench (28fef95) takes the text between the last two fence lines,
so a program followed by a sample-output block yields the sample output. Pure string function.
"""

from __future__ import annotations

from em_eval.tasks.leetcode.extract import match_code


def extract_program(response: str) -> str:
    """The program the fork would judge for ``response`` (possibly empty or prose)."""
    return match_code(response)
