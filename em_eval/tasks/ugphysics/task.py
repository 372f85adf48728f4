"""lm-eval adapter of UGPhysics Semiconductor Physics (``tasks/ugphysics/*.yaml``).

* Data: ``ugphysics/SemiconductorPhysics/{en,zh}.jsonl`` through :mod:`em_eval.data` (mirror or
  pinned download, sha256-checked): 186 + 186 = 372 items, ``language`` from the task's
  ``dataset_kwargs`` (``all``, ``en`` or ``zh``).
* Prompt: :func:`doc_to_text` (the per-item instruction, a blank line, the problem); the
  system turn is the task ``description`` ("You are a helpful assistant.").
* Scoring: :func:`process_results` gives each response two verdicts: ``accuracy`` (primary, the
  correct one: :mod:`em_eval.tasks.ugphysics.judge`) and ``accuracy_paper`` (the paper's judge with
  its bugs, comparable with Table 3: :mod:`em_eval.tasks.ugphysics.paper_judge`), the fraction of
  responses where they differ (``graders_disagree``, flagged per sample in ``judged``), and
  ``accuracy`` by answer type (``acc_NV`` ... , ``acc_MIXED`` for items with answers of several
  types) and by language (``acc_en``, ``acc_zh``). Each breakdown metric's per-item value is
  ``(belongs, correct)``; :func:`mean_of_members` averages the members only (NaN when there are none).
"""

from __future__ import annotations

from typing import Any

from em_eval.data import DataFileError, read_jsonl
from em_eval.metrics import mean_of_members  # noqa: F401 (the task YAMLs name it here)
from em_eval.tasks.ugphysics.judge import judge
from em_eval.tasks.ugphysics.paper_judge import paper_verdict
from em_eval.tasks.ugphysics.prompt import answer_types, user_turn

FILES = {"en": "ugphysics/SemiconductorPhysics/en.jsonl", "zh": "ugphysics/SemiconductorPhysics/zh.jsonl"}
SIZE = {"en": 186, "zh": 186}
TYPES = ("NV", "EX", "EQ", "IN", "TF", "MC", "MIXED")
LANGUAGES = ("en", "zh")
FIELDS = ("index", "problem", "answers", "answer_type", "unit", "is_multiple_answer", "language", "subject", "topic")


def documents(language: str = "all") -> list[dict[str, Any]]:
    """The items of one language (``en``, ``zh``) or of both (``all``, English first)."""
    if language not in ("all", *LANGUAGES):
        raise ValueError(f"UGPhysics language must be all, en or zh (got {language!r})")
    docs = []
    for lang in LANGUAGES if language == "all" else (language,):
        records = read_jsonl(FILES[lang])
        if len(records) != SIZE[lang]:
            raise DataFileError(f"{FILES[lang]} has {len(records)} items, expected {SIZE[lang]}")
        docs += [
            {
                **{k: r.get(k) for k in FIELDS},
                "unit": str(r.get("unit")),
                "language": lang,
                "type_group": type_group(r.get("answer_type")),
            }
            for r in records
        ]
    return docs


def type_group(raw: str | None) -> str:
    """The item's answer type, or ``MIXED`` when its answers have several types."""
    kinds = set(answer_types(raw))
    return kinds.pop() if len(kinds) == 1 else "MIXED"


def load_dataset(language: str = "all", **_: Any):
    """lm-eval ``custom_dataset`` hook: one ``test`` split."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(documents(language))})


def doc_to_text(doc: dict[str, Any]) -> str:
    return user_turn(doc)


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Both verdicts on the response, the breakdowns of ``accuracy``, and the judges' record."""
    verdict = judge(str(results[0]), doc)
    paper = paper_verdict(str(results[0]), str(doc["answers"]))
    correct = float(verdict.correct)
    out: dict[str, Any] = {
        "accuracy": correct,
        "accuracy_paper": float(paper),
        "graders_disagree": float(paper != verdict.correct),
    }
    out.update({f"acc_{t}": (doc["type_group"] == t, correct) for t in TYPES})
    out.update({f"acc_{lang}": (doc["language"] == lang, correct) for lang in LANGUAGES})
    out["judged"] = {
        "correct": verdict.correct,
        "parts": list(verdict.parts),
        "predicted": list(verdict.predicted) if verdict.predicted is not None else None,
        "paper": paper,
        "disagree": paper != verdict.correct,
    }
    return out


def count_judged(items: list[Any]) -> int:
    """Aggregation of the per-item judge records: how many items were judged."""
    return len(items)
