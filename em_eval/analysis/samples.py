"""lm-eval runs read response by response: correctness, answer cluster, tokens and telemetry.

Per-response correctness comes from the grading records our tasks log
(:func:`~em_eval.records.response_records`, ``exact_match`` per response); a row without them counts as
one response scored by the run's primary metric (0 or 1). Answer clusters are the ones maj@k used (each
record's ``cluster``), else the extracted answers clustered the same way
(:func:`~em_eval.tasks.math.grade.cluster_answers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable

from em_eval.local_files import jsonl_rows
from em_eval.records import response_records, sample_telemetry
from em_eval.results import ResultsError, load_run, parse_spec, result_files, samples_path


@dataclass(frozen=True)
class ProblemSamples:
    """One problem's n responses in one run."""

    doc_id: int
    correct: tuple[bool, ...]
    clusters: tuple[Hashable | None, ...]  # None: no answer extracted
    tokens: tuple[int | None, ...]
    telemetry: tuple[dict[str, Any], ...]  # {} where the backend wrote none

    @property
    def n(self) -> int:
        return len(self.correct)


@dataclass(frozen=True)
class SampleRun:
    """A run's problems per task."""

    label: str
    path: str
    tasks: dict[str, tuple[ProblemSamples, ...]]


def problem_samples(row: dict[str, Any], metric: str, where: str) -> ProblemSamples:
    """The responses of one ``--log_samples`` row (``metric``: the run's primary metric)."""
    records = response_records(row)
    if records and all("exact_match" in g for g in records):
        correct = tuple(bool(g["exact_match"]) for g in records)
    elif row.get(metric) in (0, 1, True, False):
        correct = (bool(row[metric]),)
    else:
        raise ResultsError(
            f"{where}: {metric}={row.get(metric)!r} with no per-response grading records; these "
            "analyses need each response's correctness (em-eval's math tasks log it), or one 0/1 "
            "response per problem"
        )
    if records and all("cluster" in g for g in records):
        clusters = tuple(g["cluster"] for g in records)
    elif records and any(g.get("answer") is not None for g in records):
        from em_eval.tasks.math.grade import cluster_answers

        clusters = tuple(cluster_answers([g.get("answer") for g in records]))
    else:
        clusters = (None,) * len(correct)
    telemetry = sample_telemetry(row)
    telemetry = tuple(telemetry[i] if i < len(telemetry) else {} for i in range(len(correct)))
    tokens = tuple(int(t["gen_tokens"]) if "gen_tokens" in t else None for t in telemetry)
    return ProblemSamples(int(row["doc_id"]), correct, clusters, tokens, telemetry)


def load_sample_runs(specs: Iterable[str]) -> list[SampleRun]:
    """Every run under each ``[LABEL=]PATH`` (an lm-eval ``--output_path`` folder or a results
    file), its primary metric's rows read response by response."""
    out = []
    for spec in specs:
        label, path = parse_spec(spec)
        for results_file in result_files(path):
            run = load_run(results_file, label=label)
            tasks = {}
            for name, task in run.tasks.items():
                samples_file = samples_path(results_file, name)
                rows = [
                    (line, row)
                    for line, row in jsonl_rows(samples_file, ResultsError, "re-run with --log_samples")
                    if row.get("filter", "none") == task.filter
                ]
                problems = [problem_samples(row, task.metric, f"{samples_file}:{line}") for line, row in rows]
                tasks[name] = tuple(sorted(problems, key=lambda p: p.doc_id))
            out.append(SampleRun(run.label, str(results_file), tasks))
    return out
