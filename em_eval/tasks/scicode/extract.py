"""SciCode step code from a response, as ``scicode/gen/models.py::extract_python_script`` does it:
the first ```` ```python ```` block, else the first fenced block, else the whole response; import
lines removed (the harness supplies the problem's dependencies). Pure string functions.
"""

from __future__ import annotations

import re

_IMPORT_LINE = re.compile(r"^\s*(import .*|from .*\s+import\s+.*)", re.MULTILINE)


def extract_scicode_code(text: str) -> str:
    """Code of one SciCode step response, without import lines."""
    if "```" in text:
        if "```python" in text:
            code = text.split("```python")[1].split("```")[0]
        else:
            code = text.split("```")[1].split("```")[0]
    else:
        code = text
    return _IMPORT_LINE.sub("", code)


def refinement_feedback(completion: str, eos_token: str) -> str:
    """What the next refinement round of a SciCode step is shown: a blank line, the step's code, a blank line,
    as EM_PT's ``eval/SciCode/eval/scripts/gencode.py:264-266`` builds it (there after the previous round's
    prompt, and the saved code file also repeats the dependencies and earlier steps, which the step's prompt
    already shows). As released, that script reads the previous round from paths it never writes
    (lines 231-244 against 66-85), so it fed back only four newlines."""
    return "\n\n" + extract_scicode_code(completion) + "\n\n"
