"""A clean exit passes a test program only with the marker its last statement writes."""

from __future__ import annotations

import pytest

from em_eval.sandbox import ProgramResult
from em_eval.tasks import tests_ran


def _result(status: str, reason: str = "", marker: bytes | None = None) -> ProgramResult:
    files = {} if marker is None else {tests_ran.DONE_FILE: marker}
    return ProgramResult(status, reason, "", "", 0.1, 0 if status == "passed" else 1, ("rlimits",), files)


@pytest.mark.parametrize("marker", [None, b"", tests_ran.DONE_TEXT.encode()[:-1], b"all tests ran\nand more\n"])
def test_a_clean_exit_without_the_whole_marker_is_an_error(marker) -> None:
    result = _result("passed", marker=marker)
    assert tests_ran.status(result) == ("error", tests_ran.ENDED_EARLY) and not tests_ran.passed(result)
    assert tests_ran.summary(result)["status"] == "error" and tests_ran.summary(result)["isolation"] == ["rlimits"]


def test_the_marker_passes_a_clean_exit_and_never_a_failure() -> None:
    done = tests_ran.DONE_TEXT.encode()
    clean = _result("passed", marker=done)
    assert tests_ran.status(clean) == ("passed", "") and tests_ran.passed(clean)
    failed = _result("failed", "AssertionError", marker=done)
    assert tests_ran.status(failed) == ("failed", "AssertionError") and not tests_ran.passed(failed)


def test_the_marker_is_opened_first_and_written_last() -> None:
    program = tests_ran.OPEN_DONE + "x = 1\n" + tests_ran.CLOSE_DONE
    assert program.index(tests_ran.DONE_FILE) < program.index("x = 1") < program.index(repr(tests_ran.DONE_TEXT))
    compile(program, "main.py", "exec")
