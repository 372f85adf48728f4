"""lm-eval hooks of ``em_livecodebench`` (``tasks/livecodebench/em_livecodebench.yaml``).

* :func:`load_livecodebench`: release_v2 (:mod:`~em_eval.tasks.livecodebench.source`), problems
  dated 2023-05-01 .. 2024-05-31 (the YAML's ``window``; ``--metadata '{"window": [start, end]}'``
  changes it);
* prompt, as the paper's fork builds it (em_methods.md P9): :data:`SYSTEM_PROMPT` is the Eurus
  "action" prompt read from ``eval/system_prompt_original.md``, whose newlines are the two
  characters ``\\n`` (the file has no real line breaks), set as the task ``description`` so that
  lm-eval sends it as the system turn under ``--apply_chat_template``; :func:`doc_to_text` is the
  user turn, LiveCodeBench's generic question template (``### Question``, ``### Format`` with the
  starter code or the stdin/stdout instruction, ``### Answer``) followed by the paper's
  "Write Python code ..." line;
* :func:`execute_livecodebench`: the ``sandbox`` filter, each response's program as the paper's fork
  extracts it (:func:`extract_program`) judged by LiveCodeBench's rules in :mod:`em_eval.sandbox`;
* :func:`process_results`: ``pass@1``, by difficulty and platform (NaN where a run has none), and
  ``problems_in_window`` (511 for the paper's window) beside ``problems_scored``.
"""

from __future__ import annotations

from typing import Any

from em_eval import sandbox
from em_eval.metrics import mean_of_members
from em_eval.tasks.leetcode.extract import match_code
from em_eval.tasks.leetcode.task import EURUS_SYSTEM_PROMPT, LEETCODE_INSTRUCTION
from em_eval.tasks.livecodebench.dataset import documents, record_of
from em_eval.tasks.livecodebench.problems import DIFFICULTIES, END_DATE, PLATFORMS, START_DATE, cases_of
from em_eval.tasks.livecodebench.score import judge
from em_eval.tasks.livecodebench.source import release_files

__all__ = [
    "count_items",
    "doc_to_text",
    "execute_livecodebench",
    "load_livecodebench",
    "mean_of_members",
    "process_results",
    "window_size",
]

SYSTEM_PROMPT = EURUS_SYSTEM_PROMPT.replace("\n", "\\n")  # literal backslash-n, as the fork's file
WITH_STARTER_CODE = (
    "You will use the following starter code to write the solution to the problem and enclose "
    "your code within delimiters."
)
WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not "
    "directly test on the sample inputs). Enclose your code within delimiters as follows."
)


def load_livecodebench(data_path: str | None = None, window: tuple[str, str] = (START_DATE, END_DATE), **_: Any):
    """lm-eval ``custom_dataset``: one ``test`` split of the problems in the date window (inclusive)."""
    import datasets

    sandbox.active_isolation()  # refuse before generation where programs cannot be isolated
    start, end = window
    docs = documents(release_files(data_path), start, end)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def question_turn(question_content: str, starter_code: str) -> str:
    """LiveCodeBench's generic question template."""
    text = f"### Question:\n{question_content}\n\n"
    if starter_code:
        text += f"### Format: {WITH_STARTER_CODE}\n```python\n{starter_code}\n```\n\n"
    else:
        text += f"### Format: {WITHOUT_STARTER_CODE}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


def doc_to_text(doc: dict[str, Any]) -> str:
    """lm-eval ``doc_to_text``: the user turn."""
    return question_turn(doc["question_content"], doc["starter_code"]) + LEETCODE_INSTRUCTION


def extract_program(response: str) -> str:
    """The program the paper's ``lcb_runner`` fork would judge for ``response`` (possibly empty or prose).

    The fork (EM_PT ``lcb_runner/utils/extraction_utils.py:18``) replaced upstream's line-based rule
    with the one its LeetCode evaluation uses: the last ```` ```python ```` block that contains ``def ``
    (else the last such block), else the same over untagged fences, else the text before the first
    fence, which is :func:`em_eval.tasks.leetcode.extract.match_code`. Upstream LiveCodeBench (28fef95)
    takes the text between the last two fence lines, so a program followed by a sample-output block
    yields the sample output.
    """
    return match_code(response)


def execute_livecodebench(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """lm-eval ``custom`` filter: judge every response's program (the fork's extraction)."""
    codes = [extract_program(r[0]) for r in resps]
    return judge(codes, (cases_of(record_of(d)) for d in docs))


def process_results(doc: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    passed = float(results[0]["status"] == "passed")
    out: dict[str, Any] = {"pass@1": passed}
    out.update({f"pass@1_{d}": (doc["difficulty"] == d, passed) for d in DIFFICULTIES})
    out.update({f"pass@1_{p}": (doc["platform"] == p, passed) for p in PLATFORMS})
    out["problems_in_window"] = doc["window_size"]
    out["problems_scored"] = 1
    return out


def window_size(items: list[int]) -> int:
    """Aggregation: how many problems the date window holds (the same on every document)."""
    return max(items)


def count_items(items: list[Any]) -> int:
    """Aggregation: how many problems were scored."""
    return len(items)
