"""The demo's lab views: a tiny EM-FT run of the embedded model saving two checkpoints, the checkpoint
sweep over them (:mod:`em_eval.sweep`) and the pass@k curve of each (:mod:`em_eval.analysis`), all
written into the demo's leaderboard folder, whose page shows them in its "Analyses" section.

The training run is the shipped ``em_ft`` recipe shrunk to seconds: LoRA on the attention's query and
value projections (a checkpoint is an adapter of a few MB, not the model and its optimizer state), two
steps of two prompts, short rollouts, a learning rate high enough for two steps to move the model. Its
prompts are em_smoke questions the sweep does not evaluate, without their answers. The sweep samples
several responses per problem on a slice of ``em_smoke`` (a variant with ``repeats``, written next to
the run), so its accuracy is avg@n and the same samples give the pass@k curves.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TextIO

LAB = "lab"  # the demo's subfolder for the training run and the task variant
TRAIN = {
    "finetune": "lora",
    "lora_target_modules": "q_proj,v_proj",
    "max_steps": 2,
    "save_every": 1,
    "prompts_per_step": 2,
    "micro_batch_size": 2,
    "max_new_tokens": 16,
    "lr": 2e-3,
    "report_to": "none",
}
FIRST_TRAINING_PROBLEM = 20  # em_smoke problems 20..39 train, the sweep evaluates the first (at most 8)
SMOKE_TEMPLATE = "{prompt} Answer with a single number."  # em_smoke's doc_to_text
SAMPLES = 4  # responses per problem in the sweep: pass@k for k = 1..4
SWEEP_TEMPERATURE = 0.7  # enough spread between the samples for pass@k to rise with k


@dataclass(frozen=True)
class LabResult:
    train_command: str  # the equivalent `em-eval train` line
    sweep_status: str
    paths: dict[str, Path]


def smoke_variant(folder: Path, samples: int) -> str:
    """Write ``em_smoke_n<samples>.yaml`` (em_smoke with ``samples`` responses per problem; em_smoke's filter
    grades each) into ``folder``; returns the task's name. lm-eval finds it with ``--include_path folder``."""
    from em_eval.asset_paths import asset_dir

    name = f"em_smoke_n{samples}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(
        f"# em_smoke with {samples} samples per problem (written by em-eval demo): exact_match is avg@{samples};\n"
        "# the grading records (one per response, the samples' filtered_resps) feed em-eval passk.\n"
        f"include: {asset_dir('tasks') / 'smoke' / 'em_smoke.yaml'}\n"
        f"task: {name}\n"
        f"repeats: {samples}\n"
    )
    return name


def training_prompts(path: Path) -> Path:
    """em_smoke's questions from :data:`FIRST_TRAINING_PROBLEM` on (never swept), without answers, as a
    prompt file: EM-FT needs no labels."""
    from em_eval.tasks.smoke.task import problems

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"prompt": p["question"]}) + "\n" for p in problems()[FIRST_TRAINING_PROBLEM:]))
    return path


def training_settings(model: str, prompts: Path, run_dir: Path) -> dict[str, Any]:
    """Overrides of the ``em_ft`` recipe: :data:`TRAIN`, and em_smoke's prompt (no system prompt)."""
    return {
        "model": model,
        "prompts": str(prompts),
        "system_prompt": None,
        "user_template": SMOKE_TEMPLATE,
        **TRAIN,
        "output_dir": str(run_dir),
    }


def train_command(settings: dict[str, Any]) -> str:
    """The same run as an ``em-eval train`` line."""
    return "em-eval train em_ft " + " ".join(
        shlex.quote(f"{k}={'null' if v is None else v}") for k, v in settings.items()
    )


def train_two_checkpoints(settings: dict[str, Any]) -> None:
    """The shrunk ``em_ft`` recipe: checkpoints ``checkpoint-000001`` and ``-000002`` in its output_dir."""
    from em_eval.training.run.loop import train
    from em_eval.training.setup.config import load_recipe

    config = load_recipe("em_ft", settings)
    run_dir = Path(settings["output_dir"])
    with _quiet(run_dir.parent / "train.log"):
        train(config, recipe="em_ft")


@contextlib.contextmanager
def _quiet(path: Path) -> Iterator[TextIO]:
    """Send this process's printed output (stdout and stderr) to ``path`` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield log


def run_lab(out: Path, board: Path, model: str, limit: int, max_gen_toks: int, batch_size: int, seed: int) -> LabResult:
    """Train, sweep both checkpoints on ``limit`` em_smoke problems with :data:`SAMPLES` responses each
    (``seed``: lm-eval's numpy/torch seeds), and draw their pass@k curves; the reports go into ``board``
    (the leaderboard folder, written after). Logs: ``out/lab/train.log`` and ``sweep.log``."""
    from em_eval.analysis.report import passk_report
    from em_eval.analysis.samples import load_sample_runs
    from em_eval.sweep.evaluate import in_process
    from em_eval.sweep.run import run_sweep

    lab = out / LAB
    run_dir = lab / "em_ft"
    settings = training_settings(model, training_prompts(lab / "prompts.jsonl"), run_dir)
    train_two_checkpoints(settings)
    task = smoke_variant(lab / "tasks", SAMPLES)
    extra = [
        "--include_path",
        str(lab / "tasks"),
        "--limit",
        str(limit),
        "--device",
        "cpu",
        "--batch_size",
        str(batch_size),
        "--apply_chat_template",
        "--seed",
        f"0,{seed},{seed},{seed}",
        "--gen_kwargs",
        f"max_gen_toks={max_gen_toks},temperature={SWEEP_TEMPERATURE}",
    ]
    with _quiet(lab / "sweep.log") as log:  # lm-eval's tables and progress bars: the page shows the results
        result = run_sweep(
            run_dir, [task], board, lm_eval_args=extra, evaluator=in_process, log=lambda line: print(line, file=log)
        )
    runs = [f"EM-FT step {p.step}={p.results}" for p in result.series[0].points]
    passk = passk_report(load_sample_runs(runs), board)
    return LabResult(train_command(settings), result.status, {**result.paths, **_named(passk)})


def _named(report: dict[str, Any]) -> dict[str, Path]:
    return {"passk:json": report["json"], **{f"passk:{t}": p for t, p in report["plots"].items()}}
