"""Training under ``accelerate launch`` with two processes, and an exact resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from em_eval.models.checkpoint_format import read_metadata
from training_runs import free_port, metrics, tiny_args, weights


def launch_two_processes(tiny_llama_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    # CPU-only: torchrun-style launch (--multi_gpu) with accelerate told to use the CPU (gloo)
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "em_eval",
        "train",
        "em_rl_sequence",
        *tiny_args(tiny_llama_dir, out, "prompts_per_step=4", "updates_per_step=2", "lr=1e-3", *extra),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_accelerate_launch_two_processes_and_resume_exactly(tiny_llama_dir, tmp_path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    done = launch_two_processes(tiny_llama_dir, straight, "max_steps=2", "save_every=1")
    assert "2 process(es)" in done.stderr + done.stdout
    checkpoint = straight / "checkpoint-000002"
    assert read_metadata(checkpoint).world_size == 2
    assert {p.name for p in (checkpoint / "trainer_state").iterdir()} == {
        "optimizer.pt",
        "rng_rank0.pt",
        "rng_rank1.pt",
    }
    assert [r["step"] for r in metrics(straight)] == [1, 2]  # one log line per step (main process only)
    optimizer = torch.load(checkpoint / "trainer_state" / "optimizer.pt", weights_only=True)
    assert "model.embed_tokens.weight" in optimizer["state"]  # one full copy keyed by name, not by DDP's wrapper

    split.mkdir()
    shutil.copytree(straight / "checkpoint-000001", split / "checkpoint-000001")
    launch_two_processes(tiny_llama_dir, split, "max_steps=2", "save_every=1", "resume=true")
    final_a, final_b = weights(checkpoint), weights(split / "checkpoint-000002")
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)  # bitwise, optimizer and both RNGs restored
    assert any(not torch.equal(final_a[k], v) for k, v in weights(straight / "checkpoint-000001").items())
