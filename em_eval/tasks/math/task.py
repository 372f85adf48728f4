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
* Repeats: the tasks' filter keeps every response (lm-eval's default keeps the first only), so
  with ``repeats: n`` :func:`process_results` sees all n responses of a problem.

How the per-sample fields travel through lm-eval: everything :func:`process_results` returns
for a problem is (a) copied into that problem's ``--log_samples`` row and (b) appended to a
list that the metric's ``aggregation`` reduces over problems. So the numeric fields
(``exact_match``, ``math_verify``, ``no_answer``, ``unfinished``, ``graders_disagree``,
``pass@k``, ``maj@k``, ``n``) are per-problem values whose ``mean`` is the task score, with
lm-eval's ``mean`` standard error over problems. The ``grading`` field is the list of
per-response records (both verdicts, extracted answers, flags, majority cluster); its
aggregation :func:`em_eval.metrics.count_graded` just counts responses, so the results table shows how many
were graded. :func:`sample_status` reads a row back and adds ``hit_token_limit`` from the
backend telemetry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from em_eval.data import read_jsonl
from em_eval.metrics import k_values, maj_at_k, pass_at_k
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


def keep_all_responses(resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
    """lm-eval ``custom`` filter that keeps every repeat (the default filter keeps the first only)."""
    return [list(r) for r in resps]


def _responses(results: list[Any]) -> list[str]:
    if len(results) == 1 and isinstance(results[0], (list, tuple)):
        return [str(r) for r in results[0]]
    return [str(r) for r in results]


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per-problem metrics over the problem's n responses, and the per-response ``grading`` records.

    Metrics (lm-eval ``mean`` over problems): ``exact_match`` (our grader; avg@n when n > 1),
    ``math_verify``, ``no_answer``, ``unfinished``, ``graders_disagree`` (fractions of the n
    responses), ``n``, and for n > 1 ``pass@k`` (unbiased) and ``maj@k`` for k = 1, 2, 4, ..., n.
    """
    grades = [grade_response(r, doc["answer"]) for r in _responses(results)]
    n = len(grades)
    if n == 0:
        raise ValueError(f"no responses for problem {doc.get('id')!r}")
    correct = [g.exact_match for g in grades]
    clusters = cluster_answers([g.answer for g in grades])
    out: dict[str, Any] = {
        "exact_match": sum(correct) / n,
        "math_verify": sum(g.math_verify for g in grades) / n,
        "no_answer": sum(g.no_answer for g in grades) / n,
        "unfinished": sum(g.unfinished for g in grades) / n,
        "graders_disagree": sum(g.disagree for g in grades) / n,
        "n": n,
    }
    if n > 1:
        for k in k_values(n):
            out[f"pass@{k}"] = pass_at_k(n, sum(correct), k)
            out[f"maj@{k}"] = maj_at_k(clusters, correct, k)
    out["grading"] = [{**g.as_record(), "cluster": c} for g, c in zip(grades, clusters)]
    return out


# ---- reading a --log_samples row back ------------------------------------------------------


def sample_status(logged_sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-response records of one ``--log_samples`` row plus ``hit_token_limit``: the backend's
    telemetry says the response used all ``max_gen_toks`` tokens (None where no telemetry exists)."""
    from em_eval.records import logged_gen_kwargs, sample_telemetry

    records = [dict(r) for r in logged_sample.get("grading") or []]
    telemetry = sample_telemetry(logged_sample)
    limits = [kw["max_gen_toks"] for kw in logged_gen_kwargs(logged_sample) if "max_gen_toks" in kw]
    limit = limits[0] if limits else None
    for i, record in enumerate(records):
        tokens = telemetry[i].get("gen_tokens") if i < len(telemetry) else None
        record["hit_token_limit"] = None if tokens is None or limit is None else int(tokens) >= int(limit)
    return records
