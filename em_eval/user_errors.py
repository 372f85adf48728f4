"""Mistakes in what a user gave (arguments, paths, data, settings), reported in one line.

Every em-eval error whose message names the problem and the fix derives from :class:`UserError`
(next to the builtin it refines, e.g. ``ValueError``). Under the stock ``lm_eval`` command such an
error would end a long chain of lm-eval frames; :func:`excepthook` prints its message alone
instead (``EM_EVAL_TRACEBACK=1`` shows the traceback).
"""

from __future__ import annotations

import difflib
import os
import sys
from typing import Iterable

TRACEBACK_VAR = "EM_EVAL_TRACEBACK"


class UserError(Exception):
    """Marker base: the message says what was wrong and how to fix it."""


class ArgumentNameError(UserError, ValueError):
    """An argument name em-eval does not know."""


class ArgumentValueError(UserError, ValueError):
    """A value em-eval cannot use for a known argument."""


class MissingPathError(UserError, FileNotFoundError):
    """A local path (in form) that does not exist."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The first :class:`UserError` in ``exc``'s chain of causes and contexts."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def excepthook(kind, value, tb, fallback=sys.__excepthook__) -> None:
    """``sys.excepthook`` for lm-eval runs: one line for a user error, the usual report otherwise."""
    found = find_user_error(value)
    if found is None or os.environ.get(TRACEBACK_VAR):
        fallback(kind, value, tb)
        return
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "lm_eval"
    print(f"{prog}: error: {found}\n(the full traceback: {TRACEBACK_VAR}=1)", file=sys.stderr)
