"""Leaderboard rows (model x method x task) with 95% intervals, as Markdown and CSV."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from scipy import stats

from em_eval.leaderboard import matching, paper
from em_eval.metrics import mean_stderr
from em_eval.results import FLAG_LABELS, FLAGS, METHOD_ORDER, Run, TaskRun, task_effect

LEVEL = 0.95


@dataclass(frozen=True)
class Row:
    """One run on one task."""

    model: str
    method: str
    method_label: str
    label: str
    task: str
    metric: str
    n: int
    samples_per_problem: int
    score: float
    ci_low: float
    ci_high: float
    interval: str
    second_metric: str | None  # the task's second verdict on every response (math_verify, accuracy_paper), if any
    second_score: float | None
    second_ci_low: float | None
    second_ci_high: float | None
    tokens_per_problem: float | None
    wall_s_per_problem: float | None
    no_answer: float | None
    hit_token_limit: float | None
    graders_disagree: float | None
    paper_value: float | None
    paper_source: str | None
    paper_mismatch: str | None  # why the paper's number for this model, method and task is not shown
    paper_metric: str | None  # the run's metric paper_value compares with: metric, or second_metric
    run: str
    entropy_before: float | None = None  # mean token entropy (nats) before the method's adjustment
    entropy_after: float | None = None  # ... and after it (equal for plain decoding)
    adjusted_share: float | None = None  # share of tokens whose distribution the method changed

    def as_dict(self) -> dict:
        return asdict(self)


def interval(scores: Sequence[float], level: float = LEVEL) -> tuple[float, float, str]:
    """``(low, high, method)``: Wilson for one 0/1 outcome per problem, else mean ± z·stderr over problems."""
    n = len(scores)
    if n == 0:
        return float("nan"), float("nan"), "none"
    if all(s in (0.0, 1.0) for s in scores):
        ci = stats.binomtest(int(sum(scores)), n).proportion_ci(confidence_level=level, method="wilson")
        return float(ci.low), float(ci.high), "wilson"
    low, high = mean_stderr(list(scores)).interval(level)
    return max(low, 0.0), min(high, 1.0), "normal"


def _rate(values: Iterable[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def build_rows(runs: Sequence[Run]) -> list[Row]:
    """One row per (run, task), sorted by task, then model, then method order."""
    rows = []
    for run in runs:
        gen_kwargs = matching.task_generation_kwargs(run)
        for task in run.tasks.values():
            rows.append(_row(run, task, matching.run_settings(run, gen_kwargs.get(task.task))))
    return sorted(rows, key=lambda r: (r.task, r.model, _method_rank(r.method), r.label))


def _method_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _second(task: TaskRun) -> dict[str, str | float | None]:
    """The ``second_*`` fields of a task's row: its second verdict's metric, mean and interval."""
    if task.second is None:
        return dict.fromkeys(("second_metric", "second_score", "second_ci_low", "second_ci_high"))
    scores = task.second_scores
    low, high, _ = interval(scores)
    return {
        "second_metric": task.second.metric,
        "second_score": statistics.fmean(scores) if scores else None,
        "second_ci_low": low,
        "second_ci_high": high,
    }


def _row(run: Run, task: TaskRun, settings: matching.RunSettings) -> Row:
    scores = task.scores
    low, high, how = interval(scores)
    found = matching.match(settings, task.task, task.metric, *((task.second.metric,) if task.second else ()))
    ref = found.reported
    flags = {f: _rate(p.flags.get(f) for p in task.problems) for f in FLAGS}
    return Row(
        model=run.model,
        method=run.method,
        method_label=run.method_label,
        label=run.label,
        task=task.task,
        metric=task.metric,
        n=len(scores),
        samples_per_problem=task.samples_per_problem,
        score=statistics.fmean(scores) if scores else float("nan"),
        ci_low=low,
        ci_high=high,
        interval=how,
        **_second(task),
        tokens_per_problem=_mean(p.gen_tokens for p in task.problems),
        wall_s_per_problem=_mean(p.wall_s for p in task.problems),
        no_answer=flags["no_answer"],
        hit_token_limit=flags["hit_token_limit"],
        graders_disagree=flags["graders_disagree"],
        paper_value=None if ref is None else ref.value / 100,
        paper_source=matching.source(found, settings),
        paper_mismatch=found.mismatch,
        paper_metric=found.metric,
        run=str(run.path),
        **task_effect(task.problems),
    )


# ---- formatting ------------------------------------------------------------------------------
def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


COLUMNS = (
    "Model",
    "Method",
    "Task",
    "n",
    "Score % [95% CI]",
    "Second verdict % [95% CI]",
    "Paper % (reported)",
    "Tokens/problem",
    "s/problem",
    *(FLAG_LABELS[f] + " %" for f in FLAGS),
)


def markdown(rows: Sequence[Row]) -> str:
    """The leaderboard as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        n = f"{r.n}" if r.samples_per_problem <= 1 else f"{r.n} × {r.samples_per_problem}"
        cells = [
            r.model,
            r.label,
            f"{r.task} ({r.metric})",
            n,
            f"{pct(r.score)} [{pct(r.ci_low)}, {pct(r.ci_high)}]",
            _second_cell(r),
            _paper_cell(r),
            num(r.tokens_per_problem, 0),
            num(r.wall_s_per_problem, 2),
            pct(r.no_answer, 0),
            pct(r.hit_token_limit, 0),
            pct(r.graders_disagree, 0),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _second_cell(r: Row) -> str:
    if r.second_metric is None:
        return "–"
    return f"{r.second_metric} {pct(r.second_score)} [{pct(r.second_ci_low)}, {pct(r.second_ci_high)}]"


def _paper_cell(r: Row) -> str:
    if r.paper_value is not None:
        return f"{pct(r.paper_value)}†" + (f" vs {r.paper_metric}" if r.paper_metric != r.metric else "")
    return f"– ({r.paper_mismatch})" if r.paper_mismatch else "–"


def csv_text(rows: Sequence[Row]) -> str:
    """The leaderboard as CSV (fractions, not percent; empty cell = not reported)."""
    buf = io.StringIO()
    fields = list(Row.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.as_dict().items()})
    return buf.getvalue()


def paper_markdown(tasks: Iterable[str]) -> str:
    """The paper's numbers on the benchmarks of ``tasks``: rows = table/model/method, columns = benchmarks."""
    records = paper.for_tasks(tasks)
    if not records:
        return ""
    columns = list(dict.fromkeys(r.column for r in records))
    grid: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in records:
        grid.setdefault((r.table, r.model, r.label), {})[r.column] = r.value
    lines = ["| Table | Model | Row | " + " | ".join(columns) + " |", "|---|---|---|" + "---|" * len(columns)]
    for (table, model, label), values in grid.items():
        lines.append(f"| {table} | {model} | {label} | " + " | ".join(num(values.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"
