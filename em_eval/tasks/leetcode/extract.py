"""LeetCode program extraction, exactly as the reference evaluation does it (EM_PT
``eval/Coding/leetcode/evaluate_leetcode.py``): the last fenced python block that contains
``def `` (else the last block), wrapped in ``class Solution:`` when it lacks one, then the first
```` ```python\n...\n``` ```` block of that is the program body.

Pure string functions: no execution here.
"""

from __future__ import annotations

import re

# DeepSeek-Coder / PRIME ``IMPORT_HELPER["python"]``, prepended to every LeetCode program.
LEETCODE_IMPORT_HEADER = (
    "\n".join(
        [
            "import math",
            "import re",
            "import sys",
            "import copy",
            "import datetime",
            "import itertools",
            "import collections",
            "import heapq",
            "import functools",
            "import hashlib",
            "import numpy",
            "import numpy as np",
            "import string",
            "from typing import *",
            "from collections import *",
            "from functools import *",
        ]
    )
    + "\n"
)

_PY_BLOCK = re.compile(r"```python(.*?)```", re.DOTALL)
_ANY_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
_FIRST_PY_BLOCK = re.compile(r"```python\n(.*?)\n```", re.DOTALL)


def match_code(text: str) -> str:
    """The last fenced block containing ``def `` (python fences first), else the last block."""
    for pattern in (_PY_BLOCK, _ANY_BLOCK):
        blocks = pattern.findall(text)
        if blocks:
            return next((b for b in reversed(blocks) if "def " in b), blocks[-1])
    return text.split("```")[0]


def extract_leetcode_code(text: str) -> str:
    """Program body for a LeetCode response (the paper's post-processing, step for step)."""
    completion = "```python\n" + match_code(text) + "\n```"
    if "class Solution:" not in completion:
        body = completion.replace("```python", "").replace("```", "")
        body = "\n".join("    " + line for line in body.split("\n"))
        completion = "```python\n" + "class Solution:\n" + body + "\n```"
    completion = completion.replace("[PYTHON]", "```python").replace("[/PYTHON]", "```")
    found = _FIRST_PY_BLOCK.findall(completion)
    return found[0] if found else completion


def refinement_feedback(completion: str, eos_token: str) -> str:
    """What the next refinement round is shown of ``completion`` (EM_PT ``evaluate_leetcode.py:302-305,
    318-321``): only its code (:func:`match_code`) in a python fence, the tokenizer's EOS, a blank line. The
    ``class Solution:`` wrap (lines 332-341) is applied after that prompt is saved, to the scored copy only."""
    return "```python\n" + match_code(completion) + "\n```" + eos_token + "\n\n"
