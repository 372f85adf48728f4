"""Helpers of the training-run tests: overrides for a tiny run, its metrics and checkpoint weights."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import torch
from safetensors.torch import load_file


def tiny_args(tiny_llama_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"model={tiny_llama_dir}",
        f"output_dir={out}",
        "max_new_tokens=4",
        "prompts_per_step=2",
        "report_to=none",
        *extra,
    ]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (checkpoint / "adapter_config.json").exists() else "model.safetensors"
    return load_file(checkpoint / name)


def free_port() -> int:
    """A TCP port free on this machine now (for a launcher's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
