"""``em_smoke``: deterministic arithmetic word problems generated in code (no download)."""

from __future__ import annotations

import random
import re
from typing import Any, Iterable

from em_eval.records import filter_records, graded_responses

N_PROBLEMS = 40
SEED = 2025

_TEMPLATES = (
    ("add", "Tom has {a} apples and buys {b} more. How many apples does Tom have now?"),
    ("add", "A shelf holds {a} books. Someone adds {b} books. How many books are on the shelf?"),
    ("sub", "Mia had {a} stickers and gave away {b}. How many stickers does Mia have left?"),
    ("sub", "A bus carries {a} people. At a stop, {b} get off. How many people are still on the bus?"),
    ("mul", "There are {a} bags with {b} marbles in each bag. How many marbles are there in total?"),
    ("mul", "A garden has {a} rows of {b} flowers. How many flowers are in the garden?"),
)


def problems(n: int = N_PROBLEMS, seed: int = SEED) -> list[dict[str, Any]]:
    """The smoke problems: ``question``, integer ``answer`` and ``id``; same list every call."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        op, template = _TEMPLATES[i % len(_TEMPLATES)]
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        if op == "sub":
            a, b = a + b, b
        answer = {"add": a + b, "sub": a - b, "mul": a * b}[op]
        out.append({"id": i, "question": template.format(a=a, b=b), "answer": answer})
    return out


def load_dataset(**_: Any):
    """lm-eval ``custom_dataset`` hook: a ``DatasetDict`` with one ``test`` split."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(problems())})


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> float | None:
    """The last number written in ``text`` (commas as thousands separators), if any."""
    found = _NUMBER.findall(text or "")
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _grade(response: str, answer: Any) -> dict[str, Any]:
    value = last_number(response)
    read = None if value is None else (f"{value:g}" if value != int(value) else str(int(value)))
    return {"answer": read, "exact_match": value is not None and value == float(answer)}


def grade_responses(resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
    """lm-eval ``custom`` filter: every response of each problem (all repeats) graded as the math tasks
    record it: the number read (``answer``) and ``exact_match``, as JSON records (the row's ``filtered_resps``,
    for the leaderboard's drill-down and the analyses)."""
    return [graded_responses(_grade(str(r), d["answer"]) for r in rs) for rs, d in zip(resps, docs, strict=True)]


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Exact number match of each response's last number against the answer, from the filter's records.
    One response (the shipped task): ``exact_match`` is 0 or 1. Several (``repeats``, as the demo's
    ``em_smoke_n<k>``): their mean, avg@n."""
    records = filter_records(results, "tasks/smoke/em_smoke.yaml")
    hits = sum(bool(r["exact_match"]) for r in records)
    return {"exact_match": hits / len(records) if len(records) > 1 else int(hits)}
