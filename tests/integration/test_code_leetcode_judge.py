"""em_leetcode's judge: hand-written solutions pass and wrong ones fail, in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from em_eval.tasks import tests_ran
from em_eval.tasks.leetcode import task as code_tasks

REPO = Path(__file__).resolve().parents[2]

SOLUTIONS = {  # hand-written solutions of four Easy problems of the paper's set
    "weekly-contest-381-minimum-number-of-pushes-to-type-word-i": "class Solution:\n"
    "    def minimumPushes(self, word: str) -> int:\n"
    "        return sum(i // 8 + 1 for i in range(len(word)))\n",
    "biweekly-contest-122-divide-an-array-into-subarrays-with-minimum-cost-i": (
        "def minimumCost(self, nums: List[int]) -> int:\n    return nums[0] + sum(sorted(nums[1:])[:2])\n"
    ),
    "weekly-contest-380-count-elements-with-maximum-frequency": "class Solution:\n"
    "    def maxFrequencyElements(self, nums):\n        c = Counter(nums)\n"
    "        m = max(c.values())\n        return sum(v for v in c.values() if v == m)\n",
    "weekly-contest-379-maximum-area-of-longest-diagonal-rectangle": "class Solution:\n"
    "    def areaOfMaxDiagonal(self, dimensions):\n"
    "        return max((l * l + w * w, l * w) for l, w in dimensions)[1]\n",
}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    rows = code_tasks.load_leetcode()["test"]
    assert len(rows) == 180
    return [dict(r) for r in rows]


def test_correct_solutions_pass_and_wrong_ones_fail(docs):
    chosen = [d for d in docs if d["task_id"] in SOLUTIONS]
    assert len(chosen) == 4
    good = [f"Here you go:\n```python\n{SOLUTIONS[d['task_id']]}```" for d in chosen]
    bad = [
        f"```python\nclass Solution:\n    def {name}(self, *args, **kwargs):\n        {body}\n```"
        for name, body in [
            ("minimumPushes", "return 0"),
            ("minimumCost", "raise ValueError('x')"),
            ("maxFrequencyElements", "return -1"),
            ("areaOfMaxDiagonal", "return None"),
        ]
    ]
    outcomes = code_tasks.execute_leetcode(
        [[r] for r in good + bad + ["I cannot solve this."]], chosen + chosen + chosen[:1]
    )
    expected = ["passed"] * 4 + ["failed", "error", "failed", "failed", "error"]
    assert [o["status"] for o in outcomes] == expected, outcomes
    assert outcomes[5]["reason"] == "ValueError: x"
    assert outcomes[8]["reason"].startswith("SyntaxError")  # prose only, wrapped in class Solution
    assert all("rlimits" in o["isolation"] for o in outcomes)


def test_sortedcontainers_is_there_as_on_leetcodes_judge(docs):
    (doc,) = [d for d in docs if d["task_id"] == "weekly-contest-379-maximum-area-of-longest-diagonal-rectangle"]
    solution = (
        "```python\nfrom sortedcontainers import SortedList\n\nclass Solution:\n"
        "    def areaOfMaxDiagonal(self, dimensions):\n"
        "        return SortedList((l * l + w * w, l * w) for l, w in dimensions)[-1][1]\n```"
    )
    (outcome,) = code_tasks.execute_leetcode([[solution]], [doc])
    assert outcome["status"] == "passed", outcome


def test_early_exits_and_main_blocks_are_scored_as_the_papers_judge_scores_them(docs):
    """The paper execs program + tests with empty globals and passes it iff exec returns: a ``__main__`` block
    never runs; ``sys.exit()``, ``exit(0)`` or ``os._exit(0)`` before the asserts is a failure. Verdicts
    recorded from its code: tests/data/leetcode_exit_oracle.json."""
    oracle = json.loads((REPO / "tests/data/leetcode_exit_oracle.json").read_text())
    (doc,) = [d for d in docs if d["task_id"] == oracle["leetcode_task_id"]]
    run = {
        "em_leetcode": lambda rs: code_tasks.execute_leetcode(rs, [doc] * len(rs)),
        "em_leetcodedataset": lambda rs: code_tasks.execute_leetcodedataset(
            rs, [oracle["leetcodedataset_doc"]] * len(rs)
        ),
    }
    outcomes = {}
    for task, execute in run.items():
        cases = [c for c in oracle["cases"] if c["task"] == task]
        results = execute([[f"```python\n{c['solution']}```"] for c in cases])
        outcomes.update({f"{task}: {c['case']}": r for c, r in zip(cases, results)})
    assert {k: o["status"] == "passed" for k, o in outcomes.items()} == {
        f"{c['task']}: {c['case']}": c["paper_passed"] for c in oracle["cases"]
    }, outcomes
    assert {k: o["reason"] for k, o in outcomes.items() if o["status"] != "passed"} == {
        "em_leetcode: wrong, exit(0) in a __main__ block": "AssertionError",  # the block did not run
        "em_leetcode: wrong, bare sys.exit()": tests_ran.ENDED_EARLY,
        "em_leetcode: wrong, os._exit(0)": tests_ran.ENDED_EARLY,
        "em_leetcode: right, bare exit(0)": tests_ran.ENDED_EARLY,
        "em_leetcodedataset: wrong, exit(0) in a __main__ block": "AssertionError",
    }, outcomes
