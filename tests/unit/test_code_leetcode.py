"""em_leetcode: the paper's prompt, extraction and tests, scored through the sandbox filter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from em_eval.tasks.leetcode import task as code_tasks
from em_eval.tasks.leetcode.extract import extract_leetcode_code, match_code
from em_eval.tasks.scicode.extract import extract_scicode_code

REPO = Path(__file__).resolve().parents[2]


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
    assert text.endswith(
        "\n\nWrite Python code to solve the problem. Present the code in \n```python\nYour code\n```\nat the end."
    )
    config = yaml.safe_load((REPO / "tasks/leetcode/em_leetcode.yaml").read_text().replace("!function", ""))
    assert config["description"] == code_tasks.EURUS_SYSTEM_PROMPT
    assert "[ASSESS]" in config["description"] and config["description"].endswith("Next action: [NEXT ACTION NAME]\n")


def test_extraction_takes_the_last_block_with_a_def():
    text = (
        "Plan:\n```python\nx = 1\n```\nCode:\n```python\nclass Solution:\n    def f(self):\n        return 1\n```\n"
        "Usage:\n```python\nprint(Solution().f())\n```"
    )
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
    text = (
        "Background...\n```python\nimport numpy as np\nfrom scipy import linalg\ndef f(x):\n    return x\n```\n"
        "```python\ndef g(): pass\n```"
    )
    assert extract_scicode_code(text) == "\n\ndef f(x):\n    return x\n"  # upstream's regex also eats one newline
    assert extract_scicode_code("```\nimport os\nx = 1\n```") == "\nx = 1\n"
    assert extract_scicode_code("def h(): return 2") == "def h(): return 2"


def test_metrics_overall_and_by_difficulty(docs):
    doc = next(d for d in docs if d["difficulty"] == "Hard")
    assert code_tasks.process_results(doc, [{"status": "passed"}]) == {"pass@1": 1, "pass@1_hard": 1}
    assert code_tasks.process_results(doc, [{"status": "timeout"}]) == {"pass@1": 0, "pass@1_hard": 0}
