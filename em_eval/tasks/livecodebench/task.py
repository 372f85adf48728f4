"""lm-eval hooks of ``em_livecodebench`` (``tasks/livecodebench/em_livecodebench.yaml``).

* :func:`load_livecodebench`: release_v2 (:mod:`~em_eval.tasks.livecodebench.source`), problems
  dated 2023-05-01 .. 2024-05-31 (the YAML's ``window``; ``--metadata '{"window": [start, end]}'`` changes it);
* prompt: :func:`~em_eval.tasks.livecodebench.prompt.doc_to_text` (user turn), the system turn is the
  task description;
* :func:`execute_livecodebench`: the ``sandbox`` filter, each response's program as the paper's fork
  extracts it (:mod:`~em_eval.tasks.livecodebench.extract`) judged by LiveCodeBench's rules in :mod:`em_eval.sandbox`;
* :func:`process_results`: ``pass@1``, by difficulty and platform (NaN where a run has none), and
  ``problems_in_window`` (511 for the paper's window) beside ``problems_scored``.
"""

from __future__ import annotations

from typing import Any

from em_eval import sandbox
from em_eval.metrics import mean_of_members
from em_eval.tasks.livecodebench.dataset import documents, record_of
from em_eval.tasks.livecodebench.extract import extract_program
from em_eval.tasks.livecodebench.problems import DIFFICULTIES, END_DATE, PLATFORMS, START_DATE, cases_of
from em_eval.tasks.livecodebench.prompt import doc_to_text
from em_eval.tasks.livecodebench.score import judge
from em_eval.tasks.livecodebench.source import release_files

__all__ = ["count_items", "doc_to_text", "execute_livecodebench", "load_livecodebench", "mean_of_members",
           "process_results", "window_size"]


def load_livecodebench(data_path: str | None = None, window: tuple[str, str] = (START_DATE, END_DATE), **_: Any):
    """lm-eval ``custom_dataset``: one ``test`` split of the problems in the date window (inclusive)."""
    import datasets

    sandbox.active_isolation()  # refuse before generation where programs cannot be isolated
    start, end = window
    docs = documents(release_files(data_path), start, end)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


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
