"""Read lm-eval output folders (``results_<ts>.json`` + ``samples_<task>_<ts>.jsonl``) into runs.

One :class:`Run` per results file: the model, the decoding method it used (read from the
model info and the per-sample gen_kwargs and telemetry), and per task the primary metric's
per-problem scores with the per-sample flags the leaderboard and the gate need, and, for a task
that logs a second verdict on every response (:data:`SECOND_VERDICTS`), that verdict's scores.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from em_eval.decoding.sampling import is_sampling
from em_eval.local_files import jsonl_rows
from em_eval.records import DECODE_KEY, TELEMETRY_KEY, logged_gen_kwargs, response_records
from em_eval.user_errors import UserError

FLAGS = ("no_answer", "hit_token_limit", "graders_disagree")  # graders_disagree: the task's two verdicts differ
FLAG_LABELS = {
    "no_answer": "no answer extracted",
    "hit_token_limit": "hit the token limit",
    "graders_disagree": "graders disagree",
}
FLAG_SHORT = {"no_answer": "no answer", "hit_token_limit": "hit limit", "graders_disagree": "disagree"}
PREFERRED_METRICS = ("exact_match", "acc", "pass@1", "accuracy")
_RESULTS_FILE = re.compile(r"^results_(?P<ts>.+)\.json$")


class ResultsError(UserError, ValueError):
    """A results folder or file that cannot be read as an lm-eval run."""


@dataclass(frozen=True)
class SecondVerdict:
    """A second verdict a task logs on every response beside its primary metric: per sample, ``metric``
    (its score) and ``disagree`` (the share of the sample's responses the two verdicts judge differently)."""

    primary: str
    metric: str
    disagree: str
    grader: str  # who gives it


SECOND_VERDICTS = (
    SecondVerdict("exact_match", "math_verify", "graders_disagree", "math-verify"),
    SecondVerdict("accuracy", "accuracy_paper", "graders_disagree", "the paper's judge, its bugs included"),
)


def second_verdict(metric: str, row: dict[str, Any] | None) -> SecondVerdict | None:
    """The second verdict a task whose primary metric is ``metric`` logs in its sample ``row``, if any."""
    return next((v for v in SECOND_VERDICTS if v.primary == metric and row and _is_number(row.get(v.metric))), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Problem:
    """One problem of one task in one run."""

    doc_id: int
    doc_hash: str | None
    target_hash: str | None
    target: str
    score: float
    n_responses: int
    response: str
    answer: str | None
    gen_tokens: int | None
    wall_s: float | None
    flags: dict[str, bool | None]
    decode: dict[str, Any] | None = None
    effect: dict[str, float] | None = None  # token-weighted telemetry means: see decoding_effect
    second_score: float | None = None  # the task's second verdict (TaskRun.second), if it has one


@dataclass(frozen=True)
class TaskRun:
    """A task's primary metric in one run, problem by problem."""

    task: str
    metric: str
    filter: str
    problems: tuple[Problem, ...]
    reported: float | None
    grader: dict[str, Any]
    max_gen_toks: int | None
    second: SecondVerdict | None = None

    @property
    def scores(self) -> list[float]:
        return [p.score for p in self.problems]

    @property
    def second_scores(self) -> list[float]:
        """The second verdict's per-problem scores (empty without one)."""
        return [p.second_score for p in self.problems if p.second_score is not None]

    @property
    def binary(self) -> bool:
        """One 0/1 outcome per problem (exact McNemar applies)."""
        return all(p.n_responses == 1 and p.score in (0.0, 1.0) for p in self.problems)

    @property
    def samples_per_problem(self) -> int:
        return max((p.n_responses for p in self.problems), default=0)


@dataclass(frozen=True)
class Run:
    """One lm-eval results file with its logged samples."""

    path: Path
    model: str
    method: str
    method_label: str
    label: str  # shown as the method column: a user-given LABEL, else method_label
    config: dict[str, Any]
    tasks: dict[str, TaskRun] = field(default_factory=dict)


# ---- discovery --------------------------------------------------------------------------
def result_files(path: Path) -> list[Path]:
    """The ``results_*.json`` files at ``path`` (a file, or a folder searched recursively)."""
    path = Path(path)
    if path.is_file():
        if not _RESULTS_FILE.match(path.name):
            raise ResultsError(f"{path} is not an lm-eval results file (expected results_<timestamp>.json)")
        return [path]
    if not path.is_dir():
        raise ResultsError(f"{path} does not exist; pass an lm-eval --output_path folder or a results_*.json file")
    found = sorted(p for p in path.rglob("results_*.json") if _RESULTS_FILE.match(p.name))
    if not found:
        raise ResultsError(f"no results_*.json under {path}; run lm_eval with --output_path {path} --log_samples")
    return found


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """``LABEL=PATH`` or ``PATH`` (a label only when PATH exists and the whole spec does not)."""
    if "=" in spec and not Path(spec).exists():
        label, _, path = spec.partition("=")
        if label and Path(path).exists():
            return label, Path(path)
    return None, Path(spec)


def load_runs(specs: Iterable[str], metric: str | None = None) -> list[Run]:
    """Every run under each ``[LABEL=]PATH`` spec (LABEL names every run under PATH; a file named
    twice is read once, and a label wins)."""
    chosen: dict[Path, str | None] = {}
    for spec in specs:
        label, path = parse_spec(spec)
        files = result_files(path)
        for f in files:
            chosen[f.resolve()] = label or chosen.get(f.resolve())
    return [load_run(f, label=label, metric=metric) for f, label in chosen.items()]


# ---- one run ----------------------------------------------------------------------------
def load_single_run(spec: str, what: str, metric: str | None) -> Run:
    """The one run in ``spec`` (a folder or a results file); ``what`` names the option in errors."""
    files = result_files(Path(spec))
    if len(files) != 1:
        listing = "\n  ".join(str(f) for f in files)
        raise ResultsError(f"--{what} {spec} holds {len(files)} runs; pass one results_*.json file:\n  {listing}")
    return load_run(files[0], metric=metric)


def load_run(results_file: Path, label: str | None = None, metric: str | None = None) -> Run:
    """A results file and its samples files; ``metric`` (``name`` or ``name,filter``) overrides
    the primary metric."""
    results_file = Path(results_file)
    try:
        results = json.loads(results_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"cannot read {results_file}: {exc}") from None
    if not isinstance(results, dict) or "results" not in results or "configs" not in results:
        raise ResultsError(f"{results_file} is not an lm-eval results file (no 'results'/'configs')")
    tasks, first_gen_kwargs = {}, None
    for task in results["configs"]:
        samples_file = samples_path(results_file, task)
        if not samples_file.exists():
            raise ResultsError(
                f"{results_file} has no per-sample log for task {task} ({samples_file.name}); "
                "re-run lm_eval with --log_samples"
            )
        numbered = list(jsonl_rows(samples_file, ResultsError, "re-run lm_eval with --log_samples"))
        if first_gen_kwargs is None and numbered:
            first_gen_kwargs = row_gen_kwargs(numbered[0][1])
        tasks[task] = _task_run(task, results, numbered, metric, samples_file)
    model = str(results.get("model_name") or (results.get("config") or {}).get("model") or "model")
    method, method_label = describe_method(results.get("config") or {}, first_gen_kwargs or {})
    return Run(results_file, model, method, method_label, label or method_label, results.get("config") or {}, tasks)


def samples_path(results_file: Path, task: str) -> Path:
    """Where lm-eval logs ``task``'s samples beside ``results_<ts>.json``: ``samples_<task>_<ts>.jsonl``."""
    return (
        results_file.parent / f"samples_{task}_{results_file.name.removeprefix('results_').removesuffix('.json')}.jsonl"
    )


def row_gen_kwargs(row: dict[str, Any]) -> dict[str, Any]:
    """The gen_kwargs of a logged sample's first request (``{}`` if none was logged)."""
    return next(iter(logged_gen_kwargs(row)), {})


def _task_run(
    task: str,
    results: dict[str, Any],
    numbered: list[tuple[int, dict[str, Any]]],
    metric: str | None,
    samples_file: Path,
) -> TaskRun:
    rows = [row for _, row in numbered]
    name, filt = _primary_metric(task, results, rows, metric)
    chosen = [(line, r) for line, r in numbered if r.get("filter", "none") == filt]
    if not chosen:
        raise ResultsError(f"task {task}: no logged samples with filter {filt!r}")
    second = second_verdict(name, chosen[0][1])
    seen: set[int] = set()
    problems = []
    for line, row in chosen:
        for metric_name in (name, second.metric) if second else (name,):
            _check_sample(row, metric_name, f"{samples_file}:{line}")
        doc_id = int(row["doc_id"])
        if doc_id in seen:
            raise ResultsError(f"task {task}: doc_id {doc_id} is logged twice for filter {filt!r}")
        seen.add(doc_id)
        problems.append(_problem(row, name, second))
    problems.sort(key=lambda p: p.doc_id)
    config = results["configs"][task]
    reported = (results["results"].get(task) or {}).get(f"{name},{filt}")
    return TaskRun(
        task,
        name,
        filt,
        tuple(problems),
        reported if isinstance(reported, (int, float)) else None,
        grader_signature(task, results),
        _max_gen_toks(rows, config),
        second,
    )


def _check_sample(row: dict[str, Any], metric: str, where: str) -> None:
    """A logged sample must name its problem and carry a finite score: anything else is unusable input
    (a NaN would otherwise compare as neither better nor worse and let a broken run pass)."""
    doc_id = row.get("doc_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, int) and not (isinstance(doc_id, str) and doc_id.isdigit()):
        raise ResultsError(
            f"{where}: the sample has no integer doc_id ({doc_id!r}); the samples file is damaged: "
            "re-run lm_eval with --log_samples"
        )
    score = row.get(metric)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ResultsError(
            f"{where}: doc_id {doc_id}: {metric} is {score!r}, not a finite number; the run cannot be "
            "compared: re-grade it (or re-run it) so every sample has a score"
        )


def _primary_metric(
    task: str, results: dict[str, Any], rows: list[dict[str, Any]], metric: str | None
) -> tuple[str, str]:
    keys = [k for k in (results["results"].get(task) or {}) if "," in k and "_stderr," not in k]
    pairs = [tuple(k.split(",", 1)) for k in keys]
    numeric = {p for p in pairs if rows and isinstance(rows[0].get(p[0]), (int, float))}
    if metric:
        name, _, filt = metric.partition(",")
        match = [p for p in pairs if p[0] == name and (not filt or p[1] == filt)]
        if not match:
            known = ", ".join(",".join(p) for p in pairs)
            raise ResultsError(f"task {task} has no metric {metric!r}; it reports {known}")
        return match[0]
    if not numeric:
        raise ResultsError(f"task {task}: no numeric per-sample metric in its logged samples")
    for name in PREFERRED_METRICS:
        for p in pairs:
            if p[0] == name and p in numeric:
                return p
    higher = results.get("higher_is_better", {}).get(task, {})
    return next((p for p in pairs if p in numeric and higher.get(p[0]) is True), next(p for p in pairs if p in numeric))


def _max_gen_toks(rows: list[dict[str, Any]], config: dict[str, Any]) -> int | None:
    value = row_gen_kwargs(rows[0]).get("max_gen_toks") if rows else None
    if value is None:
        value = (config.get("generation_kwargs") or {}).get("max_gen_toks")
    return int(value) if value is not None else None


def _problem(row: dict[str, Any], metric: str, second: SecondVerdict | None) -> Problem:
    gen_kwargs = row_gen_kwargs(row)
    telemetry = [t for t in gen_kwargs.get(TELEMETRY_KEY) or [] if isinstance(t, dict)]
    resps = row.get("resps") or [[]]
    responses = [str(r) for r in (resps[0] if resps and isinstance(resps[0], list) else resps)]
    limit = gen_kwargs.get("max_gen_toks")
    tokens = [int(t["gen_tokens"]) for t in telemetry if "gen_tokens" in t]
    walls = [float(t["batch_wall_s"]) / max(int(t.get("batch_size") or 1), 1) for t in telemetry if "batch_wall_s" in t]
    return Problem(
        doc_id=int(row["doc_id"]),
        doc_hash=row.get("doc_hash"),
        target_hash=row.get("target_hash"),
        target=str(row.get("target", "")),
        score=float(row[metric]),
        n_responses=max(len(responses), 1),
        response=responses[0] if responses else "",
        answer=_answer(response_records(row)),
        gen_tokens=sum(tokens) if tokens else None,
        wall_s=math.fsum(walls) if walls else None,
        flags={
            "no_answer": _fraction_flag(row.get("no_answer")),
            "hit_token_limit": (any(t >= int(limit) for t in tokens) if tokens and limit is not None else None),
            "graders_disagree": _fraction_flag(row.get(second.disagree if second else "graders_disagree")),
        },
        decode=gen_kwargs.get(DECODE_KEY) if isinstance(gen_kwargs.get(DECODE_KEY), dict) else None,
        effect=decoding_effect(telemetry),
        second_score=float(row[second.metric]) if second else None,
    )


EFFECT_FIELDS = ("entropy_before", "entropy_after", "adjusted_share")


def decoding_effect(telemetry: list[dict[str, Any]]) -> dict[str, float] | None:
    """Token-weighted means of the telemetry's per-response ``entropy_before``, ``entropy_after``
    and ``adjusted_share`` (those present), with ``tokens``, their weight; None without any."""
    weighted = [t for t in telemetry if "entropy_before" in t and int(t.get("gen_tokens") or 0) > 0]
    if not weighted:
        return None
    tokens = sum(int(t["gen_tokens"]) for t in weighted)
    effect = {"tokens": float(tokens)}
    for name in EFFECT_FIELDS:
        known = [t for t in weighted if name in t]
        if known:
            effect[name] = math.fsum(float(t[name]) * int(t["gen_tokens"]) for t in known) / sum(
                int(t["gen_tokens"]) for t in known
            )
    return effect


def task_effect(problems: Iterable[Problem]) -> dict[str, float | None]:
    """The token-weighted :func:`decoding_effect` over ``problems``: each of :data:`EFFECT_FIELDS`,
    None where no problem reports it."""
    out: dict[str, float | None] = {}
    effects = [p.effect for p in problems if p.effect]
    for name in EFFECT_FIELDS:
        known = [e for e in effects if name in e]
        weight = sum(e["tokens"] for e in known)
        out[name] = sum(e[name] * e["tokens"] for e in known) / weight if weight else None
    return out


def _answer(records: list[dict[str, Any]]) -> str | None:
    """The first response's extracted answer: a math (or smoke) record's ``answer``, else the answers
    UGPhysics' judge read (``predicted``)."""
    first = records[0] if records else {}
    if "answer" in first:
        return first["answer"]
    predicted = first.get("predicted")
    return ", ".join(map(str, predicted)) if isinstance(predicted, list) else None


def _fraction_flag(value: Any) -> bool | None:
    """A per-problem fraction of responses (math tasks) or 0/1 as a flag: any response flagged."""
    return None if not isinstance(value, (int, float)) else value > 0


# ---- what makes two runs comparable -------------------------------------------------------
def grader_signature(task: str, results: dict[str, Any]) -> dict[str, Any]:
    """Everything that decides a task's score given a response: version, grader code, metrics, filters."""
    config = results["configs"][task]
    metadata = config.get("metadata") or {}
    return {
        "task_version": (results.get("versions") or {}).get(task, metadata.get("version")),
        "grader": metadata.get("grader"),
        "process_results": config.get("process_results"),
        "metric_list": _without_addresses(config.get("metric_list")),
        "filter_list": _without_addresses(config.get("filter_list")),
        "doc_to_target": config.get("doc_to_target"),
    }


_FUNCTION_REPR = re.compile(r"<function (\S+) at 0x[0-9a-fA-F]+>")


def _without_addresses(value: Any) -> Any:
    """``value`` with each ``<function f at 0x...>`` as ``<function f>``: lm-eval writes a nested ``!function``
    (a filter's ``filter_fn``, a metric's ``aggregation``) as its repr, whose address differs between processes."""
    if isinstance(value, str):
        return _FUNCTION_REPR.sub(r"<function \1>", value)
    if isinstance(value, list):
        return [_without_addresses(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_addresses(v) for k, v in value.items()}
    return value


# ---- which method produced a run ----------------------------------------------------------
METHOD_ORDER = ("greedy", "sampling", "self_consistency", "refinement", "adaptive_temp", "em_inf")


def describe_method(config: dict[str, Any], gen_kwargs: dict[str, Any]) -> tuple[str, str]:
    """``(key, label)`` of the decoding method, e.g. ``("em_inf", "EM-INF")``.

    Keys match the paper's rows: greedy, sampling, self_consistency, refinement,
    adaptive_temp, em_inf (combinations get ``+``-joined keys)."""
    model_args = config.get("model_args") if isinstance(config.get("model_args"), dict) else {}
    telemetry = gen_kwargs.get(TELEMETRY_KEY) or []
    em_mode = next((t.get("em_mode") for t in telemetry if isinstance(t, dict) and t.get("em_mode")), None)
    em_mode = em_mode or gen_kwargs.get("em_mode") or (config.get("em_settings") or {}).get("em_mode")
    if em_mode is None and str(config.get("model", "")).startswith("em_inf"):
        em_mode = model_args.get("em_mode", "em_inf")
    decode = config.get("decode_method") or {}
    name = (
        decode.get("decode_method")
        or model_args.get("decode_method")
        or (gen_kwargs.get(DECODE_KEY) or {}).get("decode_method")
    )
    n = decode.get("decode_n") or model_args.get("decode_n") or (gen_kwargs.get(DECODE_KEY) or {}).get("decode_n")
    sampling = is_sampling(gen_kwargs)
    temperature = float(gen_kwargs.get("temperature") or 0.0)
    parts: list[tuple[str, str]] = []
    if name in ("self_consistency", "sc"):
        parts.append(("self_consistency", f"Self-consistency (N={n or 4})"))
    elif name in ("refinement", "iterative_refinement"):
        parts.append(("refinement", f"Iterative refinement (N={n or 3})"))
    if em_mode == "em_inf":
        parts.append(("em_inf", "EM-INF") if sampling else ("em_inf_greedy", "EM-INF (greedy)"))
    elif em_mode == "adaptive_temp":
        parts.append(("adaptive_temp", "Adaptive Temp"))
    if not parts:
        parts.append(("sampling", f"Sampling (t={temperature:g})") if sampling else ("greedy", "Greedy (t=0)"))
    return "+".join(k for k, _ in parts), " + ".join(lbl for _, lbl in parts)
