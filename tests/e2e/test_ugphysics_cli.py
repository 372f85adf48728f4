"""The stock ``lm_eval --model em_inf --tasks em_ugphysics --limit 2`` on the embedded model."""

from __future__ import annotations

import math

from em_eval.records import response_records
from lm_eval_cli import lm_eval, outputs


def test_stock_lm_eval_runs_em_ugphysics_on_the_embedded_model(tmp_path, data_dir) -> None:
    proc = lm_eval(
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
    assert 0.0 <= res["accuracy,none"] <= 1.0 and 0.0 <= res["accuracy_paper,none"] <= 1.0
    assert not any(k.startswith(("judged,", "judged_stderr,")) for k in res), "the judges' records are no metric"
    assert "|accuracy_paper" in proc.stdout and "|judged" not in proc.stdout, "nor a row of the printed table"
    assert results["n-samples"]["em_ugphysics"]["effective"] == 2
    assert res["acc_en,none"] == res["accuracy,none"] and math.isnan(res["acc_zh,none"])  # --limit 2: two EN items
    assert results["configs"]["em_ugphysics"]["metadata"]["judge"] == "ugphysics-rule-1e-2+paper"
    rows = samples["em_ugphysics"]
    prompt = next(iter(rows[0]["arguments"].values()))["arg_0"]
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "The following is an open-ended problem from Semiconductor Physics" in prompt
    assert rows[0]["doc"]["problem"] in prompt
    judged = [response_records(r) for r in rows]
    assert all(len(j) == 1 for j in judged) and not any("judged" in r for r in rows)
    assert set(judged[0][0]) == {"correct", "parts", "predicted", "paper", "disagree"}
    assert all(j["disagree"] == (j["correct"] != j["paper"]) for (j,) in judged)
    assert [float(j["correct"]) for (j,) in judged] == [r["accuracy"] for r in rows]
