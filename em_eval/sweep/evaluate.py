"""Evaluating every checkpoint of a training run through lm-eval, resumably.

Each checkpoint (and, if asked, the base model as step 0) gets its own lm-eval ``--output_path``,
``OUT/checkpoint-NNNNNN``. A checkpoint whose folder holds a complete results file (every task's
samples file logged in full, as many problems as the results file counts) is not evaluated again;
an incomplete folder (a run killed while lm-eval wrote it) is removed and evaluated afresh.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from em_eval.models.checkpoint_format import CHECKPOINT_PATTERN, list_checkpoints, read_metadata
from em_eval.results import samples_path
from em_eval.user_errors import UserError

BACKENDS = {"hf": "em_inf", "vllm": "em_inf_vllm"}
BASE_NAME = "base"

Evaluator = Callable[[list[str]], int]  # lm_eval's arguments -> exit code


class SweepError(UserError, ValueError):
    """A run folder or sweep setting that cannot be swept."""


class EvaluationFailed(RuntimeError):
    """lm-eval failed on a checkpoint; the checkpoints before it stay evaluated."""


@dataclass(frozen=True)
class Target:
    """One model to evaluate: a checkpoint (``model`` its folder) or the base model at step 0."""

    step: int
    name: str  # the output folder's name
    model: str  # the pretrained= value


def sweep_targets(run_dir: Path, include_base: bool = False) -> list[Target]:
    """The run's finished checkpoints in step order, after the base model when ``include_base``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SweepError(f"{run_dir} is not a folder; give the output_dir of an `em-eval train` run")
    folders = list_checkpoints(run_dir)
    if not folders:
        raise SweepError(
            f"{run_dir} holds no finished checkpoint-NNNNNN folder; train first (em-eval train RECIPE "
            f"output_dir={run_dir}) or give the run's output_dir"
        )
    metas = [read_metadata(f) for f in folders]
    targets = [Target(m.step, f.name, str(f.resolve())) for f, m in zip(folders, metas)]
    if include_base:
        targets.insert(0, Target(0, BASE_NAME, metas[0].base_model))
    return targets


def lm_eval_argv(
    target: Target,
    out: Path,
    tasks: Sequence[str],
    backend: str = "hf",
    model_args: str = "",
    extra: Sequence[str] = (),
) -> list[str]:
    """lm_eval's arguments for one target. EM-INF is off unless ``model_args`` sets ``em_mode``: a sweep
    measures the checkpoint itself (``em_mode=off`` still records the entropy per response)."""
    if backend not in BACKENDS:
        raise SweepError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if not tasks:
        raise SweepError("give the tasks to evaluate every checkpoint on (--tasks)")
    args = [a for a in model_args.split(",") if a]
    if any(a.split("=", 1)[0] == "pretrained" for a in args):
        raise SweepError("--model-args must not set pretrained=: the sweep sets it to each checkpoint")
    if not any(a.split("=", 1)[0] == "em_mode" for a in args):
        args.append("em_mode=off")
    return [
        "--model",
        BACKENDS[backend],
        "--model_args",
        ",".join([f"pretrained={target.model}", *args]),
        "--tasks",
        ",".join(tasks),
        "--output_path",
        str(out),
        "--log_samples",
        *extra,
    ]


def finished_results(out: Path, tasks: Sequence[str] = ()) -> Path | None:
    """The newest complete results file under ``out``, or None. Complete: it names every requested task
    (or group), and each of its tasks' samples file logs as many problems as it counts."""
    for path in sorted(Path(out).rglob("results_*.json"), reverse=True) if Path(out).is_dir() else []:
        if _complete(path, tasks):
            return path
    return None


def _complete(path: Path, tasks: Sequence[str]) -> bool:
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if not isinstance(results, dict) or not isinstance(results.get("configs"), dict):
        return False
    named = set(results.get("results") or {}) | set(results["configs"]) | set(results.get("group_subtasks") or {})
    if not set(tasks) <= named:
        return False
    counts = results.get("n-samples") or {}
    for task in results["configs"]:
        samples = samples_path(path, task)
        expected = (counts.get(task) or {}).get("effective")
        if not samples.is_file() or not isinstance(expected, int) or _logged_docs(samples) != expected:
            return False
    return True


def _logged_docs(samples: Path) -> int | None:
    """Distinct doc_ids of a samples file (None if a line is cut off or damaged)."""
    docs = set()
    with open(samples, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    docs.add(json.loads(line)["doc_id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    return None
    return len(docs)


def evaluated_before(out_dir: Path, known: Sequence[Target], tasks: Sequence[str] = ()) -> list[tuple[Target, Path]]:
    """Checkpoints evaluated under ``out_dir`` whose folders are gone from the run (``keep_last`` removed
    them), with their complete results, so a sweep repeated during training keeps its whole history."""
    names = {t.name for t in known}
    found = []
    for folder in sorted(Path(out_dir).iterdir()) if Path(out_dir).is_dir() else []:
        match = CHECKPOINT_PATTERN.match(folder.name)
        results = finished_results(folder, tasks) if match and folder.name not in names else None
        if results is not None:
            found.append((Target(int(match.group(1)), folder.name, folder.name), results))
    return found


def in_process(argv: list[str]) -> int:
    """lm_eval in this process (``em-eval eval``): fast to start, but the model's memory is freed late."""
    from em_eval.eval_command import run_eval

    return run_eval(argv)


def in_subprocess(argv: list[str]) -> int:
    """lm_eval in a fresh process per checkpoint: all its (GPU) memory is returned when it ends."""
    return subprocess.run([sys.executable, "-m", "em_eval", "eval", *argv]).returncode


def evaluate_all(
    targets: Sequence[Target],
    out_dir: Path,
    argv_for: Callable[[Target, Path], list[str]],
    evaluator: Evaluator,
    tasks: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> list[tuple[Target, Path]]:
    """Each target's complete results file, evaluating only those without one; stops at the first failure."""
    done = []
    for target in targets:
        out = Path(out_dir) / target.name
        found = finished_results(out, tasks)
        if found is None:
            if out.exists():
                log(f"{target.name}: removing an incomplete evaluation in {out}")
                shutil.rmtree(out)
            log(f"{target.name}: evaluating step {target.step}")
            code = evaluator(argv_for(target, out))
            found = finished_results(out, tasks)
            if code != 0 or found is None:
                raise EvaluationFailed(
                    f"{target.name}: lm-eval failed (exit code {code}) or wrote no complete results "
                    f"under {out}; fix the cause and rerun: finished checkpoints are kept"
                )
        else:
            log(f"{target.name}: already evaluated ({found})")
        done.append((target, found))
    return done
