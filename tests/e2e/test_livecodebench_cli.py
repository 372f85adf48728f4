"""The stock ``lm_eval --model em_inf --tasks em_livecodebench --metadata '{"data_path": ...}' --limit 2``
on the embedded model, with a small file in the upstream schema."""

from __future__ import annotations

import ast
import json
import math

from livecodebench_records import IN_WINDOW, write_jsonl
from lm_eval_cli import lm_eval, outputs


def test_stock_lm_eval_runs_em_livecodebench_on_the_embedded_model(tmp_path) -> None:
    data = write_jsonl(tmp_path / "lcb_small.jsonl")
    out = tmp_path / "out"
    lm_eval(
        "--model",
        "em_inf",
        "--model_args",
        "pretrained=smollm2-135m",
        "--tasks",
        "em_livecodebench",
        "--metadata",
        json.dumps({"data_path": str(data)}),
        "--limit",
        "2",
        "--device",
        "cpu",
        "--batch_size",
        "2",
        "--gen_kwargs",
        "max_gen_toks=16",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(out),
    )
    results, samples = outputs(out)
    res = results["results"]["em_livecodebench"]
    assert 0.0 <= res["pass@1,sandbox"] <= 1.0
    assert res["problems_in_window,sandbox"] == 3 and res["problems_scored,sandbox"] == 2
    # --limit 2: no easy one
    assert math.isnan(res["pass@1_easy,sandbox"]) and math.isnan(res["pass@1_atcoder,sandbox"])
    assert res["pass@1_hard,sandbox"] == res["pass@1_codeforces,sandbox"] in (0.0, 1.0)
    config = results["configs"]["em_livecodebench"]
    assert config["generation_kwargs"]["temperature"] == 0.2 and config["generation_kwargs"]["top_p"] == 0.95
    assert config["generation_kwargs"]["until"] == ["###"] and config["metadata"]["data_path"] == str(data)
    rows = samples["em_livecodebench"]
    assert [r["doc"]["question_id"] for r in rows] == IN_WINDOW[:2]
    prompt = next(iter(rows[0]["arguments"].values()))["arg_0"]
    assert prompt.startswith("<|im_start|>system\n\\nWhen tackling complex reasoning tasks")
    assert "<|im_start|>user\n### Question:\nPrint N/2 for each N, one per line." in prompt
    verdict = ast.literal_eval(rows[0]["filtered_resps"][0])  # lm-eval logs a filtered response as its repr
    assert verdict["status"] in ("passed", "failed", "timeout", "memory", "error") and verdict["tests_total"] == 2
    assert "bwrap" in verdict["isolation"] or "rlimits" in verdict["isolation"]
