"""``run_sweep``: evaluate every checkpoint of a run (resumably), analyse the series, write the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from em_eval.gate.compare import GateSettings
from em_eval.sweep.evaluate import (
    Evaluator,
    evaluate_all,
    evaluated_before,
    in_subprocess,
    lm_eval_argv,
    sweep_targets,
)
from em_eval.sweep.report import write_report
from em_eval.sweep.series import TaskSeries, analyse, load_sweep_runs, sweep_status


@dataclass(frozen=True)
class SweepResult:
    status: str  # pass | drop | collapse
    series: list[TaskSeries]
    paths: dict[str, Path]


def run_sweep(
    run_dir: Path,
    tasks: Sequence[str],
    out_dir: Path | None = None,
    *,
    backend: str = "hf",
    model_args: str = "",
    lm_eval_args: Sequence[str] = (),
    include_base: bool = False,
    gate: GateSettings = GateSettings(),
    min_entropy_fall: float = 0.0,
    fail_on_drop: bool = False,
    evaluator: Evaluator = in_subprocess,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Evaluate each checkpoint of ``run_dir`` not yet evaluated under ``out_dir`` (default ``run_dir/sweep``),
    then write ``sweep.json``, ``sweep.md`` and the plots there. Checkpoints evaluated there earlier whose
    folders were since removed (``keep_last``) stay in the series."""
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "sweep"
    targets = sweep_targets(Path(run_dir), include_base)
    argv_for = partial(lm_eval_argv, tasks=tasks, backend=backend, model_args=model_args, extra=tuple(lm_eval_args))
    lm_eval_argv(targets[0], out_dir, tasks, backend, model_args)  # bad settings fail before any evaluation
    done = evaluate_all(targets, out_dir, argv_for, evaluator, tasks, log)
    done += evaluated_before(out_dir, targets, tasks)
    series = analyse(load_sweep_runs(done), gate, min_entropy_fall)
    status = sweep_status(series, fail_on_drop)
    settings = {
        "run_dir": str(run_dir),
        "tasks": list(tasks),
        "backend": backend,
        "model_args": model_args,
        "lm_eval_args": list(lm_eval_args),
        "gate": asdict(gate),
        "min_entropy_fall": min_entropy_fall,
        "fail_on_drop": fail_on_drop,
    }
    return SweepResult(status, series, write_report(out_dir, series, status, settings))
