"""From the evaluated checkpoints of a sweep to per-task series against step, the paired tests
between consecutive checkpoints, the entropy-performance fit and the collapse alarms.

Per checkpoint and task: accuracy (the task's primary metric, as the gate reads it), the mean token
entropy of the responses (the telemetry's ``entropy_before``: the model's own distribution,
token-weighted), the mean response length in generated tokens, and the transitional-word rate of
all responses. Consecutive checkpoints are compared with the gate's paired test at level
``alpha / (pairs * tasks)`` (Bonferroni over the whole sweep, so a long sweep does not multiply
false alarms).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from em_eval.gate.compare import GateSettings, TaskVerdict, gate
from em_eval.local_files import jsonl_rows
from em_eval.results import ResultsError, Run, TaskRun, samples_path, task_effect
from em_eval.sweep.laws import (
    TRANSITIONAL_PHRASES,
    CollapseAlarm,
    EntropyLawFit,
    collapse_alarms,
    fit_entropy_law,
    transitional_rate,
)


@dataclass(frozen=True)
class Point:
    """One task at one checkpoint."""

    step: int
    checkpoint: str
    accuracy: float
    entropy: float | None
    length: float | None  # mean generated tokens per response
    transitional_rate: float | None  # per 1,000 words
    problems: int
    results: str  # the results file


@dataclass
class TaskSeries:
    """A task across the sweep, in step order, with what was concluded from it."""

    task: str
    metric: str
    points: list[Point]
    steps: list[TaskVerdict] = field(default_factory=list)  # checkpoint i-1 -> i, one per consecutive pair
    fit: EntropyLawFit | None = None
    alarms: list[CollapseAlarm] = field(default_factory=list)

    @property
    def drops(self) -> list[int]:
        """Steps reached by a significant drop from the checkpoint before."""
        return [p.step for p, v in zip(self.points[1:], self.steps) if v.regression]

    def as_dict(self) -> dict[str, Any]:
        best = max(self.points, key=lambda p: p.accuracy)
        return {
            "task": self.task,
            "metric": self.metric,
            "points": [asdict(p) for p in self.points],
            "best_step": best.step,
            "consecutive": [v.as_dict() for v in self.steps],
            "entropy_law": self.fit.as_dict() if self.fit else None,
            "alarms": [{**asdict(a), "message": a.message()} for a in self.alarms],
        }


def response_texts(run: Run, task: TaskRun) -> list[str]:
    """Every logged response of ``task`` (all samples of every problem) under its scored filter."""
    path = samples_path(run.path, task.task)
    texts = []
    for _, row in jsonl_rows(path, ResultsError, "re-run lm_eval with --log_samples"):
        if row.get("filter", "none") == task.filter:
            resps = row.get("resps") or []
            flat = resps[0] if resps and isinstance(resps[0], list) else resps
            texts += [str(r) for r in flat]
    return texts


def task_point(
    run: Run, task: TaskRun, step: int, checkpoint: str, phrases: Sequence[str] = TRANSITIONAL_PHRASES
) -> Point:
    """The :class:`Point` of one task of one evaluated checkpoint."""
    tokens = [p.gen_tokens for p in task.problems]
    responses = sum(p.n_responses for p in task.problems)
    length = sum(tokens) / responses if tokens and None not in tokens and responses else None
    return Point(
        step=step,
        checkpoint=checkpoint,
        accuracy=math.fsum(task.scores) / len(task.scores),
        entropy=task_effect(task.problems)["entropy_before"],
        length=length,
        transitional_rate=transitional_rate(response_texts(run, task), phrases),
        problems=len(task.problems),
        results=str(run.path),
    )


def analyse(
    runs: Sequence[tuple[int, str, Run]],
    settings: GateSettings,
    min_entropy_fall: float = 0.0,
    phrases: Sequence[str] = TRANSITIONAL_PHRASES,
) -> list[TaskSeries]:
    """Per task, its series over ``runs`` ((step, checkpoint name, run), in step order): the points,
    the paired verdict of each consecutive pair, the entropy-law fit and the collapse alarms.
    Raises the gate's :class:`MismatchError` when two checkpoints were not evaluated on the same problems."""
    runs = sorted(runs, key=lambda r: r[0])
    tasks = sorted(runs[0][2].tasks)
    series = {t: TaskSeries(t, runs[0][2].tasks[t].metric, []) for t in tasks}
    for step, name, run in runs:
        for t in tasks:
            if t not in run.tasks:
                raise ResultsError(f"{name} has no results for task {t}; evaluate every checkpoint on the same tasks")
            series[t].points.append(task_point(run, run.tasks[t], step, name, phrases))
    pairs = len(runs) - 1
    per_pair = replace(settings, alpha=settings.alpha / max(pairs, 1))
    for (_, _, before), (_, _, after) in zip(runs, runs[1:]):
        for verdict in gate(before, after, per_pair, tasks):
            series[verdict.task].steps.append(verdict)
    for s in series.values():
        steps = [p.step for p in s.points]
        accuracy = [p.accuracy for p in s.points]
        entropy = [p.entropy for p in s.points]
        s.fit = fit_entropy_law(entropy, accuracy)
        s.alarms = collapse_alarms(steps, accuracy, entropy, [v.regression for v in s.steps], min_entropy_fall)
    return list(series.values())


def sweep_status(series: Sequence[TaskSeries], fail_on_drop: bool = False) -> str:
    """``collapse`` (an alarm), ``drop`` (a significant drop, when ``fail_on_drop``) or ``pass``."""
    if any(s.alarms for s in series):
        return "collapse"
    if fail_on_drop and any(s.drops for s in series):
        return "drop"
    return "pass"


def load_sweep_runs(done: Sequence[tuple[Any, Path]]) -> list[tuple[int, str, Run]]:
    """(step, name, run) for each evaluated target of :func:`em_eval.sweep.evaluate.evaluate_all`."""
    from em_eval.results import load_run

    return [(target.step, target.name, load_run(path, label=target.name)) for target, path in done]
