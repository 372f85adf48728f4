r"""lm-eval adapters for the math benchmarks (``tasks/math/*.yaml``).

* Data: :func:`load_dataset` reads each benchmark's sha256-pinned file through
  :mod:`em_eval.data` (mirror or pinned download) and maps it onto one schema,
  ``{id, problem, answer, subset}``; :func:`gold_answer` is the one place where answer
  fields are normalised (AMC floats ``27.0``, AIME ``"023"``, OlympiadBench lists with ``$``,
  Minerva's last ``\boxed{}`` in the solution).
* Prompt: the problem is the user turn; the paper's system prompt is the task ``description``,
  which lm-eval sends as the system turn under ``--apply_chat_template`` (after
  ``--system_instruction`` text, joined by a blank line, if both are given). Without a chat
  template lm-eval glues description and problem together, so use ``--apply_chat_template``.
* Repeats and grading: the tasks' filter (:func:`grade_responses`) grades every response (lm-eval's
  default filter keeps the first only), so with ``repeats: n`` all n responses of a problem are graded.

How the fields travel through lm-eval: the filter's output, one record per response (both verdicts,
extracted answers, flags, majority cluster; :func:`grade_problem`), is what :func:`process_results`
receives and what the problem's ``--log_samples`` row logs as ``filtered_resps`` (JSON text;
:func:`em_eval.records.response_records` reads it back). :func:`process_results` returns only numeric
per-problem values (``exact_match``, ``math_verify``, ``no_answer``, ``unfinished``, ``graders_disagree``,
``pass@k``, ``maj@k``): each is copied into the row and its ``mean`` over problems is the task score, with
lm-eval's ``mean`` standard error. :func:`sample_status` reads a row's records back and adds
``hit_token_limit`` from the backend telemetry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from em_eval.data import read_jsonl
from em_eval.metrics import k_values, maj_at_k, pass_at_k
from em_eval.records import filter_records, graded_responses, logged_gen_kwargs, response_records, sample_telemetry
from em_eval.tasks.math.grade import cluster_answers, extract, grade_response

SYSTEM_PROMPT = r"Please reason step by step, and put your final answer within \boxed{}."


def _number(value: Any) -> str:
    """27.0 -> "27", "023" -> "23", 1.5 -> "1.5"."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    return (text.lstrip("0") or "0") if text.isdigit() else text


def _dollars_off(value: Any) -> str:
    text = value[0] if isinstance(value, list) else value
    return str(text).replace("$", "").strip()


def _boxed_in_solution(solution: str) -> str:
    answer = extract(solution).answer
    if answer is None:
        raise ValueError("a Minerva solution has no \\boxed{} answer")
    return answer


def _year(url: str) -> str:
    m = re.search(r"/(\d{4})_", url or "")
    return m.group(1) if m else ""


@dataclass(frozen=True)
class Benchmark:
    """Where one benchmark's records live and how its fields map onto the task schema."""

    file: str
    problem: str
    answer: Callable[[dict[str, Any]], str]
    subset: Callable[[dict[str, Any]], str]
    size: int


BENCHMARKS: dict[str, Benchmark] = {
    "math500": Benchmark(
        "math500/test.jsonl",
        "problem",
        lambda r: str(r["answer"]).strip(),
        lambda r: f"{r['subject']} L{r['level']}",
        500,
    ),
    "amc": Benchmark(
        "amc_aimo/aimo-validation-amc.jsonl", "question", lambda r: _number(r["answer"]), lambda r: _year(r["url"]), 83
    ),
    "amc23": Benchmark("amc23/test.jsonl", "problem", lambda r: _number(r["answer"]), lambda r: "2023", 40),
    "aime": Benchmark(
        "aime_aimo/aimo-validation-aime.jsonl",
        "question",
        lambda r: _number(r["answer"]),
        lambda r: _year(r["url"]),
        90,
    ),
    "aime24": Benchmark("aime24/test.jsonl", "problem", lambda r: _number(r["answer"]), lambda r: "2024", 30),
    "aime25": Benchmark(
        "aime25/aime25_matharena.jsonl", "problem", lambda r: _number(r["answer"]), lambda r: r["contest"], 30
    ),
    "minerva": Benchmark(
        "minerva_math/test.jsonl", "problem", lambda r: _boxed_in_solution(r["solution"]), lambda r: r["type"], 272
    ),
    "olympiadbench": Benchmark(
        "olympiadbench/test.jsonl", "question", lambda r: _dollars_off(r["final_answer"]), lambda r: r["subfield"], 675
    ),
}


def gold_answer(benchmark: str, record: dict[str, Any]) -> str:
    """The gold answer of one raw record, as a string our graders and math-verify accept."""
    return BENCHMARKS[benchmark].answer(record)


def documents(benchmark: str) -> list[dict[str, str]]:
    """The benchmark's problems in the task schema ``{id, problem, answer, subset}``."""
    if benchmark not in BENCHMARKS:
        raise KeyError(f"unknown math benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[benchmark]
    records = read_jsonl(spec.file)
    if len(records) != spec.size:
        raise ValueError(f"{spec.file} has {len(records)} records, expected {spec.size}")
    return [
        {
            "id": str(r.get("unique_id", r.get("id", r.get("idx", i)))),
            "problem": str(r[spec.problem]),
            "answer": gold_answer(benchmark, r),
            "subset": str(spec.subset(r)),
        }
        for i, r in enumerate(records)
    ]


def load_dataset(benchmark: str, **_: Any):
    """lm-eval ``custom_dataset`` hook: one ``test`` split. ``benchmark`` comes from the task's ``dataset_kwargs``;
    its file, sha256 and source are pinned in :mod:`em_eval.data` (their one home)."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(documents(benchmark))})


# ---- scoring ------------------------------------------------------------------------------


def grade_problem(responses: Iterable[Any], gold: str) -> list[dict[str, Any]]:
    """One record per response: both graders' verdicts, the flags and the answer's majority cluster."""
    grades = [grade_response(str(r), gold) for r in responses]
    clusters = cluster_answers([g.answer for g in grades])
    return [{**g.as_record(), "cluster": c} for g, c in zip(grades, clusters)]


def grade_responses(resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
    """lm-eval ``custom`` filter: every response of each problem (all repeats) graded, as JSON records."""
    return [graded_responses(grade_problem(r, d["answer"])) for r, d in zip(resps, docs, strict=True)]


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per-problem metrics from the records of the problem's n responses (:func:`grade_responses`).

    Metrics (lm-eval ``mean`` over problems): ``exact_match`` (our grader; avg@n when n > 1),
    ``math_verify``, ``no_answer``, ``unfinished``, ``graders_disagree`` (fractions of the n
    responses), and for n > 1 ``pass@k`` (unbiased) and ``maj@k`` for k = 1, 2, 4, ..., n.
    """
    records = filter_records(results, "tasks/math/_em_math_template_yaml")
    n = len(records)
    correct = [bool(r["exact_match"]) for r in records]
    out: dict[str, Any] = {
        "exact_match": sum(correct) / n,
        "math_verify": sum(bool(r["math_verify"]) for r in records) / n,
        "no_answer": sum(bool(r["no_answer"]) for r in records) / n,
        "unfinished": sum(bool(r["unfinished"]) for r in records) / n,
        "graders_disagree": sum(bool(r["disagree"]) for r in records) / n,
    }
    if n > 1:
        clusters = [r["cluster"] for r in records]
        for k in k_values(n):
            out[f"pass@{k}"] = pass_at_k(n, sum(correct), k)
            out[f"maj@{k}"] = maj_at_k(clusters, correct, k)
    return out


# ---- reading a --log_samples row back ------------------------------------------------------


def sample_status(logged_sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-response records of one ``--log_samples`` row plus ``hit_token_limit``: the backend's
    telemetry says the response used all ``max_gen_toks`` tokens (None where no telemetry exists)."""
    records = response_records(logged_sample)
    telemetry = sample_telemetry(logged_sample)
    limits = [kw["max_gen_toks"] for kw in logged_gen_kwargs(logged_sample) if "max_gen_toks" in kw]
    limit = limits[0] if limits else None
    for i, record in enumerate(records):
        tokens = telemetry[i].get("gen_tokens") if i < len(telemetry) else None
        record["hit_token_limit"] = None if tokens is None or limit is None else int(tokens) >= int(limit)
    return records
