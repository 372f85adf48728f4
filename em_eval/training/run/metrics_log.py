"""Per-step metrics to a JSONL file and stdout, plus TensorBoard / W&B through accelerate's trackers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

METRICS_FILE = "metrics.jsonl"


def tracker_names(report_to: str) -> list[str]:
    """accelerate tracker names for ``report_to``; ``auto`` picks what is installed (W&B only
    when configured through ``WANDB_API_KEY`` or ``WANDB_MODE``, so nothing prompts for a login)."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    if report_to == "none":
        return []
    if report_to != "auto":
        return [report_to]
    names = ["tensorboard"] if is_tensorboard_available() else []
    if is_wandb_available() and (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")):
        names.append("wandb")
    return names


def _tracker_config(config: dict[str, Any]) -> dict[str, Any]:
    # TensorBoard's hparams accept only scalars and strings
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.items()}


class MetricsLog:
    """Writes on the main process only; every process may call it."""

    def __init__(self, accelerator: Any, run_dir: Path, config: dict[str, Any]) -> None:
        self.accelerator = accelerator
        self.path = run_dir / METRICS_FILE
        if accelerator.is_main_process:
            run_dir.mkdir(parents=True, exist_ok=True)
        if accelerator.log_with:
            accelerator.init_trackers("em-eval", config=_tracker_config(config))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """One line per step: ``{"step": N, ...metrics}``."""
        if not self.accelerator.is_main_process:
            return
        row = {"step": step, **{k: float(f"{float(v):.6g}") for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        tqdm.write("step {step}: ".format(step=step) + " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"))
        if self.accelerator.log_with:
            self.accelerator.log(metrics, step=step)

    def close(self) -> None:
        if self.accelerator.log_with:
            self.accelerator.end_training()
