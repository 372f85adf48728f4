"""SciCode step code from a response, as ``scicode/gen/models.py::extract_python_script`` does it:
the first ```` ```python ```` block, else the first fenced block, else (no fence at all) the
stripped response from its first function definition on (``def name(...):`` then an indented
line), else the whole response; import lines removed (the harness supplies the problem's
dependencies). Pure string functions.
"""

from __future__ import annotations

import re

_IMPORT_LINE = re.compile(r"^\s*(import .*|from .*\s+import\s+.*)", re.MULTILINE)
# a function head followed by a line break and whitespace: the paper's code runs from here to the end
_FUNCTION_HEAD = re.compile(r"def\s+\w+\(.*?\):\n\s", re.DOTALL)


def unfenced_code(text: str) -> str:
    """Code of a response without fences: from the first function definition on, else all of it."""
    stripped = text.strip()
    head = _FUNCTION_HEAD.search(stripped)
    return stripped[head.start() :] if head else text


def strip_imports(code: str) -> str:
    """``code`` without its import lines."""
    return _IMPORT_LINE.sub("", code)


def extract_scicode_code(text: str) -> str:
    """Code of one SciCode step response, without import lines."""
    if "```" in text:
        if "```python" in text:
            code = text.split("```python")[1].split("```")[0]
        else:
            code = text.split("```")[1].split("```")[0]
    else:
        code = unfenced_code(text)
    return strip_imports(code)


def refinement_feedback(completion: str, eos_token: str) -> str:
    """What the next refinement round of a SciCode step is shown: a blank line, the step's code, a blank line,
    as EM_PT's ``eval/SciCode/eval/scripts/gencode.py:264-266`` builds it (there after the previous round's
    prompt, and the saved code file also repeats the dependencies and earlier steps, which the step's prompt
    already shows). As released, that script reads the previous round from paths it never writes
    (lines 231-244 against 66-85), so it fed back only four newlines."""
    return "\n\n" + extract_scicode_code(completion) + "\n\n"
