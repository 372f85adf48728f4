"""Trained em-eval checkpoints (full and LoRA) evaluate through the stock ``lm_eval`` command."""

from __future__ import annotations

from lm_eval_cli import evaluate_checkpoints


def test_trained_checkpoints_evaluate_with_stock_lm_eval(trained, tmp_path) -> None:
    """Full and LoRA, given as run folders; both lm_eval processes run at once to save wall time."""
    for kind, results in evaluate_checkpoints(trained, tmp_path).items():
        recorded = results["config"]["em_checkpoint"]
        assert recorded["checkpoint"] == str((trained[kind] / "checkpoint-000001").resolve())
        assert recorded["step"] == 1 and recorded["method"] == "em_ft"
        assert recorded["adapter"] == ("lora" if kind == "lora" else None)
        assert ("peft_sha" in results["config"]) == (kind == "lora")  # HFLM loaded the adapter on its base
