"""em_leetcode: the paper's prompt, extraction and tests, scored through the sandbox filter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from em_eval.tasks.leetcode import task as code_tasks
from em_eval.tasks.leetcode.extract import extract_leetcode_code, match_code
from em_eval.tasks.scicode.extract import extract_scicode_code

REPO = Path(__file__).resolve().parent.parent

SOLUTIONS = {  # hand-written solutions of four Easy problems of the paper's set
    "weekly-contest-381-minimum-number-of-pushes-to-type-word-i":
        "class Solution:\n    def minimumPushes(self, word: str) -> int:\n"
        "        return sum(i // 8 + 1 for i in range(len(word)))\n",
    "biweekly-contest-122-divide-an-array-into-subarrays-with-minimum-cost-i":
        "def minimumCost(self, nums: List[int]) -> int:\n    return nums[0] + sum(sorted(nums[1:])[:2])\n",
    "weekly-contest-380-count-elements-with-maximum-frequency":
        "class Solution:\n    def maxFrequencyElements(self, nums):\n        c = Counter(nums)\n"
        "        m = max(c.values())\n        return sum(v for v in c.values() if v == m)\n",
    "weekly-contest-379-maximum-area-of-longest-diagonal-rectangle":
        "class Solution:\n    def areaOfMaxDiagonal(self, dimensions):\n"
        "        return max((l * l + w * w, l * w) for l, w in dimensions)[1]\n",
}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    rows = code_tasks.load_leetcode()["test"]
    assert len(rows) == 180
    return [dict(r) for r in rows]


def test_dataset_has_the_papers_difficulty_mix(docs):
    counts = {d: sum(r["difficulty"] == d for r in docs) for d in code_tasks.DIFFICULTIES}
    assert counts == {"Easy": 45, "Medium": 91, "Hard": 44}


def test_prompt_is_the_papers(docs):
    text = code_tasks.leetcode_doc_to_text(docs[0])
    assert text.startswith(docs[0]["prompt_sft"])
    assert text.endswith("\n\nWrite Python code to solve the problem. Present the code in \n```python\nYour code\n```\nat the end.")
    config = yaml.safe_load((REPO / "tasks/leetcode/em_leetcode.yaml").read_text().replace("!function", ""))
    assert config["description"] == code_tasks.EURUS_SYSTEM_PROMPT
    assert "[ASSESS]" in config["description"] and config["description"].endswith("Next action: [NEXT ACTION NAME]\n")


def test_extraction_takes_the_last_block_with_a_def():
    text = ("Plan:\n```python\nx = 1\n```\nCode:\n```python\nclass Solution:\n    def f(self):\n        return 1\n```\n"
            "Usage:\n```python\nprint(Solution().f())\n```")
    assert match_code(text) == "\nclass Solution:\n    def f(self):\n        return 1\n"
    assert extract_leetcode_code(text) == "\nclass Solution:\n    def f(self):\n        return 1\n"
    assert match_code("```\ndef g():\n    pass\n```") == "\ndef g():\n    pass\n"
    assert match_code("no fences at all") == "no fences at all"


def test_extraction_wraps_bare_functions_in_class_solution():
    code = extract_leetcode_code("```python\ndef f(self, n):\n    return n\n```")
    assert code == "class Solution:\n    \n    \n    def f(self, n):\n        return n\n    \n    "
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own fixture code
    assert namespace["Solution"]().f(3) == 3


def test_scicode_extraction_takes_the_first_block_and_drops_imports():
    text = "Background...\n```python\nimport numpy as np\nfrom scipy import linalg\ndef f(x):\n    return x\n```\n```python\ndef g(): pass\n```"
    assert extract_scicode_code(text) == "\n\ndef f(x):\n    return x\n"  # upstream's regex also eats one newline
    assert extract_scicode_code("```\nimport os\nx = 1\n```") == "\nx = 1\n"
    assert extract_scicode_code("def h(): return 2") == "def h(): return 2"


def test_correct_solutions_pass_and_wrong_ones_fail(docs):
    chosen = [d for d in docs if d["task_id"] in SOLUTIONS]
    assert len(chosen) == 4
    good = [f"Here you go:\n```python\n{SOLUTIONS[d['task_id']]}```" for d in chosen]
    bad = [f"```python\nclass Solution:\n    def {name}(self, *args, **kwargs):\n        {body}\n```"
           for name, body in [("minimumPushes", "return 0"), ("minimumCost", "raise ValueError('x')"),
                              ("maxFrequencyElements", "return -1"), ("areaOfMaxDiagonal", "return None")]]
    outcomes = code_tasks.execute_leetcode([[r] for r in good + bad + ["I cannot solve this."]],
                                           chosen + chosen + chosen[:1])
    assert [o["status"] for o in outcomes] == ["passed"] * 4 + ["failed", "error", "failed", "failed", "error"], outcomes
    assert outcomes[5]["reason"] == "ValueError: x"
    assert outcomes[8]["reason"].startswith("SyntaxError")  # prose only, wrapped in class Solution
    assert all("rlimits" in o["isolation"] for o in outcomes)


def test_sortedcontainers_is_there_as_on_leetcodes_judge(docs):
    (doc,) = [d for d in docs if d["task_id"] == "weekly-contest-379-maximum-area-of-longest-diagonal-rectangle"]
    solution = ("```python\nfrom sortedcontainers import SortedList\n\nclass Solution:\n"
                "    def areaOfMaxDiagonal(self, dimensions):\n"
                "        return SortedList((l * l + w * w, l * w) for l, w in dimensions)[-1][1]\n```")
    (outcome,) = code_tasks.execute_leetcode([[solution]], [doc])
    assert outcome["status"] == "passed", outcome


def test_metrics_overall_and_by_difficulty(docs):
    doc = next(d for d in docs if d["difficulty"] == "Hard")
    assert code_tasks.process_results(doc, [{"status": "passed"}]) == {"pass@1": 1, "pass@1_hard": 1}
    assert code_tasks.process_results(doc, [{"status": "timeout"}]) == {"pass@1": 0, "pass@1_hard": 0}
