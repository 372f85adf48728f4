"""Checkpoint sweeps: every checkpoint of a training run evaluated through lm-eval (resumable),
then accuracy, token entropy, response length and the rate of transitional words against step,
the entropy-performance fit and the collapse alarm.

* Fit (Cui et al., 2505.22617): ``accuracy = -a * exp(H) + b`` over the checkpoints, least squares;
  its ceiling, the accuracy predicted at zero entropy, is ``b - a``.
* Collapse alarm (No Free Lunch 2506.17219; SRT 2505.21444): between consecutive checkpoints,
  accuracy falls significantly (``em-eval check``'s paired statistics, Bonferroni over tasks) while
  the mean token entropy keeps falling.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from em_eval.analysis.samples import ProblemSamples, load_sample_runs
from em_eval.gate.compare import GateSettings, gate
from em_eval.models.checkpoint_format import CHECKPOINT_PATTERN, list_checkpoints
from em_eval.results import ResultsError, load_run, result_files

TRANSITIONS = ("wait", "but wait", "let me check", "let me verify", "let me double-check", "double-check",
               "hmm", "alternatively", "on second thought")
_TRANSITION = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in sorted(TRANSITIONS, key=len, reverse=True))
                         + r")\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    model: str  # pretrained= value
    output: Path  # its lm-eval --output_path

    @property
    def done(self) -> bool:
        """Evaluated already: its output folder holds a results file."""
        return self.output.is_dir() and any(self.output.rglob("results_*.json"))


def plan(run_dir: Path, out: Path, base: str | None = None) -> list[Checkpoint]:
    """The run's finished checkpoints oldest first (``base`` as step 0), each with its output folder."""
    found = list_checkpoints(run_dir)
    if not found and base is None:
        raise ResultsError(f"{run_dir} holds no finished checkpoint-NNNNNN folder (written by `em-eval train`)")
    steps = [Checkpoint(0, base, out / "step-000000")] if base else []
    for folder in found:
        step = int(CHECKPOINT_PATTERN.match(folder.name).group(1))
        steps.append(Checkpoint(step, str(folder), out / f"step-{step:06d}"))
    return steps


def lm_eval_command(checkpoint: Checkpoint, model: str, model_args: str, tasks: str, extra: Sequence[str]
                    ) -> list[str]:
    """``em-eval eval`` for one checkpoint, with ``--log_samples`` into its output folder."""
    args = ",".join(a for a in (f"pretrained={checkpoint.model}", model_args) if a)
    return [sys.executable, "-m", "em_eval", "eval", "--model", model, "--model_args", args, "--tasks", tasks,
            "--output_path", str(checkpoint.output), "--log_samples", *extra]


def evaluate_missing(checkpoints: Sequence[Checkpoint], command: Callable[[Checkpoint], list[str]],
                     run: Callable[[list[str]], int] = lambda cmd: subprocess.run(cmd).returncode) -> list[int]:
    """Evaluate each checkpoint not yet done (in step order); returns the steps evaluated. A failed
    evaluation stops the sweep with an error naming the step (rerunning resumes there)."""
    evaluated = []
    for ckpt in checkpoints:
        if ckpt.done:
            continue
        code = run(command(ckpt))
        if code != 0 or not ckpt.done:
            raise ResultsError(f"evaluating step {ckpt.step} ({ckpt.model}) failed (exit {code}); fix the cause and "
                               "rerun the same sweep: finished steps are kept")
        evaluated.append(ckpt.step)
    return evaluated


def transitional_rate(texts: Sequence[str]) -> float:
    """Transitional phrases (:data:`TRANSITIONS`) per 1,000 words of ``texts`` (NaN without words)."""
    words = sum(len(_WORD.findall(t)) for t in texts)
    return 1000 * sum(len(_TRANSITION.findall(t)) for t in texts) / words if words else math.nan


def step_metrics(problems: Sequence[ProblemSamples]) -> dict[str, float]:
    """Accuracy (mean over problems of each one's share correct), token-weighted mean entropy
    (before the method), mean tokens per response and transitional words per 1,000 words."""
    accuracy = sum(sum(p.correct) / p.n for p in problems) / len(problems)
    weighted = [(t.get("entropy_before"), n) for p in problems for t, n in zip(p.telemetry, p.tokens)
                if t.get("entropy_before") is not None and n]
    tokens = [n for p in problems for n in p.tokens if n is not None]
    return {"accuracy": accuracy,
            "entropy": math.fsum(h * n for h, n in weighted) / sum(n for _, n in weighted) if weighted else math.nan,
            "tokens": sum(tokens) / len(tokens) if tokens else math.nan,
            "transitional_per_1k_words": transitional_rate([r for p in problems for r in p.responses])}


def entropy_fit(entropy: Sequence[float], accuracy: Sequence[float]) -> dict[str, float] | None:
    """Least-squares ``accuracy = -a * exp(entropy) + b`` with its ceiling ``b - a`` and R²; None
    with fewer than three points or no spread in entropy."""
    pairs = [(h, r) for h, r in zip(entropy, accuracy) if not (math.isnan(h) or math.isnan(r))]
    if len(pairs) < 3 or max(h for h, _ in pairs) - min(h for h, _ in pairs) < 1e-12:
        return None
    x = np.exp([h for h, _ in pairs])
    y = np.array([r for _, r in pairs])
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(((y - (slope * x + intercept)) ** 2).sum())
    total = float(((y - y.mean()) ** 2).sum())
    return {"a": float(-slope), "b": float(intercept), "ceiling": float(intercept + slope),
            "r2": 1 - residual / total if total else 1.0}


def collapse_alarms(steps: Sequence[int], runs: Sequence[Any], entropy: Sequence[dict[str, float]],
                    settings: GateSettings) -> list[dict[str, Any]]:
    """Per consecutive pair of checkpoints and task: the gate's verdict and whether entropy fell;
    ``alarm`` when a significant drop comes with falling entropy."""
    out = []
    for i in range(1, len(runs)):
        for verdict in gate(runs[i - 1], runs[i], settings):
            before, after = entropy[i - 1].get(verdict.task, math.nan), entropy[i].get(verdict.task, math.nan)
            falling = after < before
            out.append({"from_step": steps[i - 1], "to_step": steps[i], "task": verdict.task, "status": verdict.status,
                        "diff": verdict.comparison.diff, "p_value": verdict.comparison.p_value,
                        "entropy_falling": falling, "alarm": verdict.regression and falling})
    return out


def summarise(checkpoints: Sequence[Checkpoint], settings: GateSettings) -> dict[str, Any]:
    """Per step and task :func:`step_metrics`, the fit per task and the alarms."""
    done = [c for c in checkpoints if c.done]
    if not done:
        raise ResultsError("no checkpoint of this sweep has been evaluated yet")
    rows, runs, entropy = [], [], []
    for ckpt in done:
        (sample_run,) = load_sample_runs([str(ckpt.output)])
        (results_file,) = result_files(ckpt.output)
        runs.append(load_run(results_file))
        metrics = {task: step_metrics(problems) for task, problems in sample_run.tasks.items()}
        entropy.append({task: m["entropy"] for task, m in metrics.items()})
        rows += [{"step": ckpt.step, "model": ckpt.model, "task": task, **m} for task, m in metrics.items()]
    fits = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        fits[task] = entropy_fit([r["entropy"] for r in mine], [r["accuracy"] for r in mine])
    alarms = collapse_alarms([c.step for c in done], runs, entropy, settings)
    return {"rows": rows, "fits": fits, "alarms": alarms, "alarm": any(a["alarm"] for a in alarms)}
