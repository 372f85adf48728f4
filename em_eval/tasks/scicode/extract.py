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
