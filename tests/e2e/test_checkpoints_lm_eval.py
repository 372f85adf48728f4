"""Trained em-eval checkpoints (full and LoRA) evaluate through the stock ``lm_eval`` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess


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
