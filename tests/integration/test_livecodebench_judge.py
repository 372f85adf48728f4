"""em_livecodebench's judge in the sandbox: reference programs pass, wrong ones fail with the reason."""

from __future__ import annotations

import pytest

from em_eval.tasks.livecodebench import task
from livecodebench_records import IN_WINDOW, REFERENCE, write_jsonl


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> list[dict]:
    path = write_jsonl(tmp_path_factory.mktemp("lcb") / "lcb.jsonl")
    rows = [dict(r) for r in task.load_livecodebench(data_path=str(path))["test"]]
    assert [r["question_id"] for r in rows] == IN_WINDOW
    earlier = task.load_livecodebench(data_path=str(path), window=["2023-01-01", "2023-12-31"])["test"]
    assert earlier["question_id"] == ["abc299_a", "abc300_a"] and earlier["window_size"] == [2, 2]
    return rows


def _fenced(code: str) -> list[str]:
    return [f"Here it is.\n```python\n{code}\n```\n"]


WRONG = {  # (doc, response, status, reason starts with)
    "wrong answer": (
        "abc300_a",
        _fenced("a, b = map(int, input().split())\nprint(a - b)"),
        "failed",
        "test 1 of 3: Wrong answer at line 0: -1 != 3",
    ),
    "one line short": (
        "1900A",
        _fenced("input()\nprint(float(input()) / 2)"),
        "failed",
        "test 1 of 2: Wrong answer: mismatched output length (1 lines, expected 2)",
    ),
    "runtime error": (
        "abc300_a",
        _fenced("raise ValueError('no')"),
        "error",
        "test 1 of 3: Runtime Error (error ValueError('no')",
    ),
    "wrong method result": (
        "3000",
        _fenced("class Solution:\n    def addDigits(self, nums, k):\n        return nums"),
        "failed",
        "test 1 of 3: Wrong Answer (inputs [[1, 2], 3]; output [1, 2]; expected [4, 5])",
    ),
    "method missing": (
        "3000",
        _fenced("class Solution:\n    def other(self, nums, k):\n        return nums"),
        "error",
        "test 1 of 3: Runtime Error: no function 'addDigits' defined",
    ),
    "syntax error": ("abc300_a", _fenced("print(1"), "error", "test 1 of 3: Error during testing: SyntaxError"),
    "no code block": (
        "abc300_a",
        ["I would add the two numbers."],
        "error",  # the fork runs the prose itself
        "test 1 of 3: Error during testing: SyntaxError",
    ),
    "passes the public test only": (
        "abc300_a",
        _fenced("input()\nprint(3)"),
        "failed",
        "test 2 of 3: Wrong answer at line 0: 3 != 30",
    ),
    "exits before the judge ends": (
        "3000",
        _fenced("import os\nos._exit(0)"),
        "error",
        "the program ended the judge before the tests finished",
    ),
}


def test_reference_programs_pass_and_wrong_ones_fail_with_the_reason(docs):
    by_id = {d["question_id"]: d for d in docs}
    chosen = [by_id[q] for q in IN_WINDOW] + [by_id[q] for q, *_ in WRONG.values()]
    responses = [[REFERENCE[q]] for q in IN_WINDOW] + [r for _, r, *_ in WRONG.values()]
    outcomes = task.execute_livecodebench(responses, chosen)
    assert [o["status"] for o in outcomes[:3]] == ["passed"] * 3, outcomes[:3]
    assert [o["tests_passed"] for o in outcomes[:3]] == [2, 3, 3]
    for (name, (_, _, status, reason)), got in zip(WRONG.items(), outcomes[3:]):
        assert got["status"] == status and got["reason"].startswith(reason), (name, got)
    assert all("rlimits" in o["isolation"] for o in outcomes)


def test_each_test_has_the_time_limit():
    from em_eval.tasks.livecodebench.score import judge

    slow = "import time\na, b = map(int, input().split())\nif a == 10:\n    time.sleep(30)\nprint(a + b)"
    tests = {"inputs": ["1 2\n", "10 20\n"], "outputs": ["3\n", "30\n"], "fn_name": None}
    (got,) = judge([slow], [tests], timeout_s=1)
    assert got["status"] == "timeout" and got["reason"].startswith("test 2 of 2: Time Limit Exceeded"), got
    assert got["tests_passed"] == 1 and got["duration_s"] < 10
