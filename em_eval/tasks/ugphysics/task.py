"""lm-eval adapter of UGPhysics Semiconductor Physics (``tasks/ugphysics/*.yaml``).

* Data: ``ugphysics/SemiconductorPhysics/{en,zh}.jsonl`` through :mod:`em_eval.data` (mirror or
  pinned download, sha256-checked): 186 + 186 = 372 items, ``language`` from the task's
  ``dataset_kwargs`` (``all``, ``en`` or ``zh``).
* Prompt: :func:`doc_to_text` (the per-item instruction, a blank line, the problem); the
  system turn is the task ``description`` ("You are a helpful assistant.").
* Scoring: the tasks' filter (:func:`judge_responses`) gives the response two verdicts, logged as the
  row's ``filtered_resps`` (:func:`judge_record`; :func:`em_eval.records.response_records` reads it back):
  ``accuracy`` (primary, the correct one: :mod:`em_eval.tasks.ugphysics.judge`) and ``accuracy_paper``
  (the paper's judge with its bugs, comparable with Table 3: :mod:`em_eval.tasks.ugphysics.paper_judge`);
  :func:`process_results` turns the record into metrics: both verdicts, whether they differ
  (``graders_disagree``), and ``accuracy`` by answer type (``acc_NV`` ... , ``acc_MIXED`` for items with
  answers of several types) and by language (``acc_en``, ``acc_zh``). Each breakdown metric's per-item value is
  ``(belongs, correct)``; :func:`mean_of_members` averages the members only (NaN when there are none).
"""

from __future__ import annotations

from typing import Any, Iterable

from em_eval.data import DataFileError, read_jsonl
from em_eval.metrics import mean_of_members  # noqa: F401 (the task YAMLs name it here)
from em_eval.records import filter_records, graded_responses
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


def judge_record(response: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Both judges on one response: the correct judge's verdict, its per-part verdicts and answers, the
    paper judge's verdict and whether the two differ."""
    verdict = judge(response, doc)
    paper = paper_verdict(response, str(doc["answers"]))
    return {
        "correct": verdict.correct,
        "parts": list(verdict.parts),
        "predicted": list(verdict.predicted) if verdict.predicted is not None else None,
        "paper": paper,
        "disagree": paper != verdict.correct,
    }


def judge_responses(resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
    """lm-eval ``custom`` filter: the first response of each item (what lm-eval's default filter keeps)
    judged, as a one-record list of JSON (the row's ``filtered_resps``)."""
    return [graded_responses([judge_record(str(rs[0]), d)]) for rs, d in zip(resps, docs, strict=True)]


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Both verdicts on the response and the breakdowns of ``accuracy``, from the filter's judge record."""
    (record,) = filter_records(results, "tasks/ugphysics/_em_ugphysics_template_yaml")
    correct = float(record["correct"])
    out: dict[str, Any] = {
        "accuracy": correct,
        "accuracy_paper": float(record["paper"]),
        "graders_disagree": float(record["disagree"]),
    }
    out.update({f"acc_{t}": (doc["type_group"] == t, correct) for t in TYPES})
    out.update({f"acc_{lang}": (doc["language"] == lang, correct) for lang in LANGUAGES})
    return out
