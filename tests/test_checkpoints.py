"""em-eval checkpoints: metadata, resolution to loadable model args, and evaluation of trained
checkpoints (full and LoRA) through the stock ``lm_eval`` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from em_eval.models.checkpoint_format import (CheckpointError, checkpoint_info, latest_checkpoint, list_checkpoints, read_metadata,
                                 resolve_checkpoint_args, write_metadata)
from em_eval.models.embedded import embedded_model_dir
from em_eval.models.presets import resolve_model_args
from em_eval.training import load_recipe, train


@pytest.fixture(scope="module")
def trained(tiny_llama_dir, tmp_path_factory) -> dict[str, Path]:
    """One-step EM-FT runs on the tiny llama: a full and a LoRA checkpoint."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for kind in ("full", "lora"):
        out = root / kind
        train(load_recipe("em_ft", [f"model={tiny_llama_dir}", f"output_dir={out}", f"finetune={kind}", "max_steps=1",
                                    "max_new_tokens=4", "prompts_per_step=2", "report_to=none", "lr=1e-3"]))
        runs[kind] = out
    torch.set_num_threads(before)
    return runs


def test_metadata_errors_name_the_problem(tmp_path, trained) -> None:
    with pytest.raises(CheckpointError, match="has no em_eval_checkpoint.json, so it is not a finished em-eval"):
        read_metadata(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(trained["full"] / "checkpoint-000001", broken)
    (broken / "em_eval_checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_metadata(broken)
    meta = read_metadata(trained["full"] / "checkpoint-000001")
    write_metadata(broken, replace(meta, format=99))
    with pytest.raises(CheckpointError, match="format 99"):
        read_metadata(broken)


def test_latest_skips_unfinished_folders(tmp_path, trained) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained["full"], run)
    (run / "checkpoint-000007").mkdir()  # no metadata: never finished
    (run / ".tmp-checkpoint-000008").mkdir()
    assert list_checkpoints(run) == [run / "checkpoint-000001"]
    assert latest_checkpoint(run) == run / "checkpoint-000001"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_resolution_of_full_lora_run_and_plain_folders(trained, tiny_llama_dir) -> None:
    full, lora = trained["full"] / "checkpoint-000001", trained["lora"] / "checkpoint-000001"
    assert resolve_checkpoint_args({"pretrained": str(full), "dtype": "float32"}) == {"pretrained": str(full),
                                                                                      "dtype": "float32"}
    assert resolve_checkpoint_args({"pretrained": str(lora)}) == {"pretrained": str(tiny_llama_dir.resolve()),
                                                                  "peft": str(lora)}
    assert resolve_checkpoint_args({"pretrained": str(trained["lora"])})["peft"] == str(lora)  # run folder: latest
    assert resolve_checkpoint_args({"pretrained": str(lora), "peft": "/elsewhere"})["peft"] == "/elsewhere"
    plain = {"pretrained": str(tiny_llama_dir)}
    assert resolve_checkpoint_args(plain) == plain and resolve_checkpoint_args({"pretrained": "org/model"}) == {
        "pretrained": "org/model"}
    assert checkpoint_info(tiny_llama_dir) is None
    info = checkpoint_info(lora)
    assert (info["step"], info["method"], info["adapter"], info["checkpoint"]) == (1, "em_ft", "lora", str(lora.resolve()))


def test_lora_checkpoint_on_the_embedded_model_resolves_through_presets(tmp_path, trained) -> None:
    lora = tmp_path / "checkpoint-000001"
    shutil.copytree(trained["lora"] / "checkpoint-000001", lora)
    write_metadata(lora, replace(read_metadata(lora), base_model="smollm2-135m"))
    args = resolve_model_args({"pretrained": str(lora)})
    assert args == {"pretrained": str(embedded_model_dir()), "peft": str(lora)}


@pytest.mark.slow
def test_trained_checkpoints_evaluate_with_stock_lm_eval(trained, tmp_path) -> None:
    """Full and LoRA, given as run folders; both lm_eval processes run at once to save wall time."""
    procs = {}
    for kind in ("full", "lora"):
        cmd = [shutil.which("lm_eval") or "lm_eval", "--model", "em_inf", "--model_args", f"pretrained={trained[kind]}",
               "--tasks", "em_smoke", "--limit", "2", "--device", "cpu", "--batch_size", "2",
               "--gen_kwargs", "max_gen_toks=4", "--output_path", str(tmp_path / kind)]
        procs[kind] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    for kind, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        results = json.loads(next((tmp_path / kind).rglob("results_*.json")).read_text())
        assert "exact_match,none" in results["results"]["em_smoke"]
        recorded = results["config"]["em_checkpoint"]
        assert recorded["checkpoint"] == str((trained[kind] / "checkpoint-000001").resolve())
        assert recorded["step"] == 1 and recorded["method"] == "em_ft"
        assert recorded["adapter"] == ("lora" if kind == "lora" else None)
        assert ("peft_sha" in results["config"]) == (kind == "lora")  # HFLM loaded the adapter on its base
