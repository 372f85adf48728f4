"""Did a test program's tests run to their end? Exit status 0 alone does not say so.

``sys.exit()``, ``exit(0)`` in a ``__main__`` block or ``os._exit(0)`` placed before the asserts end the
program cleanly with no test run. So a test program opens :data:`DONE_FILE` first (before the code under
test can change folder) and writes :data:`DONE_TEXT` into it as its last statement; the sandbox hands the
file back (``collect``) and a clean exit without that text is not a pass. Code that writes the marker
itself forges its verdict in-process, which stays out of scope as for every in-process judge.
"""

from __future__ import annotations

from typing import Any

from em_eval.sandbox import ProgramResult

DONE_FILE = "tests_done"
DONE_TEXT = "all tests ran\n"
OPEN_DONE = f"_em_done = open({DONE_FILE!r}, 'w', encoding='utf-8')\n"  # a test program's first statement
CLOSE_DONE = f"\n_em_done.write({DONE_TEXT!r})\n_em_done.close()\n"  # ... and its last
ENDED_EARLY = "the program exited with status 0 before its tests ran to the end"


def status(result: ProgramResult) -> tuple[str, str]:
    """(status, reason) of a run: the sandbox's, except that a clean exit needs the marker."""
    if result.status == "passed" and result.files.get(DONE_FILE) != DONE_TEXT.encode():
        return "error", ENDED_EARLY
    return result.status, result.reason


def passed(result: ProgramResult) -> bool:
    """Did the program exit cleanly after its tests ran to the end?"""
    return status(result)[0] == "passed"


def summary(result: ProgramResult) -> dict[str, Any]:
    """:meth:`ProgramResult.summary` with the status and reason of :func:`status`."""
    verdict, reason = status(result)
    return {**result.summary(), "status": verdict, "reason": reason}
