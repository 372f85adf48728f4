"""The stock ``lm_eval --model em_inf --tasks em_ugphysics --limit 2`` on the embedded model."""

from __future__ import annotations

import math

from lm_eval_cli import lm_eval, outputs


def test_stock_lm_eval_runs_em_ugphysics_on_the_embedded_model(tmp_path, data_dir) -> None:
    lm_eval(
        "--model",
        "em_inf",
        "--model_args",
        "pretrained=smollm2-135m",
        "--tasks",
        "em_ugphysics",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--batch_size",
        "2",
        "--gen_kwargs",
        "max_gen_toks=24",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(tmp_path),
        env={"EM_EVAL_DATA_DIR": str(data_dir)},
    )
    results, samples = outputs(tmp_path)
    res = results["results"]["em_ugphysics"]
    assert 0.0 <= res["accuracy,none"] <= 1.0 and 0.0 <= res["accuracy_paper,none"] <= 1.0 and res["judged,none"] == 2
    assert res["acc_en,none"] == res["accuracy,none"] and math.isnan(res["acc_zh,none"])  # --limit 2: two EN items
    assert results["configs"]["em_ugphysics"]["metadata"]["judge"] == "ugphysics-rule-1e-2+paper"
    rows = samples["em_ugphysics"]
    prompt = next(iter(rows[0]["arguments"].values()))["arg_0"]
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "The following is an open-ended problem from Semiconductor Physics" in prompt
    assert rows[0]["doc"]["problem"] in prompt
    assert set(rows[0]["judged"]) == {"correct", "parts", "predicted", "paper", "disagree"}
    assert all(r["judged"]["disagree"] == (r["judged"]["correct"] != r["judged"]["paper"]) for r in rows)
