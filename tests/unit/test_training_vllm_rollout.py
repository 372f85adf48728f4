"""The pure pieces of ``rollout_engine=vllm``: config keys, engine and sampling arguments, seeds,
vLLM outputs turned into :class:`Rollouts`, the weights a policy hands to vLLM, set-up refusals."""

from __future__ import annotations

import copy
import os
from types import SimpleNamespace

import pytest
import torch
from accelerate.utils import DistributedType

from em_eval.backends import vllm_dist
from em_eval.training.run.vllm_rollout import (
    check_vllm_setup,
    engine_args,
    environment,
    policy_weights,
    rollout_seeds,
    rollouts_from_samples,
    sampling_args,
)
from em_eval.training.setup.config import TrainingConfigError, load_recipe, recipe_names


def test_every_recipe_names_its_rollout_engine_and_hf_is_the_default() -> None:
    for name in recipe_names():
        assert load_recipe(name).rollout_engine == "hf", name
    config = load_recipe("em_ft", ["rollout_engine=vllm", "vllm_gpu_memory_utilization=0.5", "vllm_dtype=bfloat16"])
    assert (config.rollout_engine, config.vllm_gpu_memory_utilization, config.vllm_dtype) == ("vllm", 0.5, "bfloat16")


def test_environment_sets_names_for_the_block_and_restores_them_also_on_error(monkeypatch) -> None:
    monkeypatch.setenv("EM_EVAL_TEST_SET", "before")
    monkeypatch.delenv("EM_EVAL_TEST_UNSET", raising=False)
    with pytest.raises(RuntimeError, match="inside"):
        with environment({"EM_EVAL_TEST_SET": "0", "EM_EVAL_TEST_UNSET": "1"}):
            assert (os.environ["EM_EVAL_TEST_SET"], os.environ["EM_EVAL_TEST_UNSET"]) == ("0", "1")
            raise RuntimeError("inside")
    assert os.environ["EM_EVAL_TEST_SET"] == "before" and "EM_EVAL_TEST_UNSET" not in os.environ


@pytest.mark.parametrize(
    "override,message",
    [
        ("rollout_engine=sglang", r"rollout_engine must be one of hf, vllm \(got 'sglang'\)"),
        ("vllm_gpu_memory_utilization=1.5", r"vllm_gpu_memory_utilization must be in \(0, 1\]"),
        ("vllm_gpu_memory_utilization=0", r"vllm_gpu_memory_utilization must be in \(0, 1\]"),
        ("vllm_dtype=int8", "vllm_dtype must be one of auto, float32, bfloat16, float16"),
    ],
)
def test_bad_engine_settings_are_refused(override: str, message: str) -> None:
    with pytest.raises(TrainingConfigError, match=message):
        load_recipe("em_rl_token", [override])


def test_engine_args_follow_the_recipe() -> None:
    config = load_recipe("em_rl_token", ["rollout_engine=vllm", "max_prompt_tokens=100", "max_new_tokens=28"])
    args = engine_args(config, "/m", world=1, sleep_mode=False)
    assert args == {
        "model": "/m",
        "dtype": "float32",
        "max_model_len": 128,
        "gpu_memory_utilization": 0.3,
        "enforce_eager": False,
        "enable_sleep_mode": False,
        "seed": 0,
        "logprobs_mode": "processed_logprobs",
    }
    bf16 = load_recipe("em_rl_token", ["precision=bf16", "vllm_enforce_eager=true"])
    args = engine_args(bf16, "/m", world=4, sleep_mode=True)
    assert args["dtype"] == "bfloat16" and args["enforce_eager"] and args["enable_sleep_mode"]
    assert (args["distributed_executor_backend"], args["data_parallel_size"]) == ("external_launcher", 4)
    fp16 = load_recipe("em_ft", ["vllm_dtype=float16"])
    assert engine_args(fp16, "/m", world=1, sleep_mode=False)["dtype"] == "float16"


def test_sampling_is_plain_at_the_recipe_temperature() -> None:
    args = sampling_args(load_recipe("em_ft", ["temperature=0.7", "max_new_tokens=9"]), [2, 7])
    assert args["temperature"] == 0.7 and args["max_tokens"] == 9 and args["stop_token_ids"] == [2, 7]
    assert (args["top_p"], args["top_k"], args["min_p"], args["repetition_penalty"]) == (1.0, -1, 0.0, 1.0)
    assert args["logprobs"] == 0  # the sampled token's log-prob only


def test_rollout_seeds_depend_on_seed_step_and_rank_only() -> None:
    seeds = rollout_seeds(0, 3, 1, 8)
    assert seeds == rollout_seeds(0, 3, 1, 8) and len(set(seeds)) == 8
    assert all(isinstance(s, int) for s in seeds)
    others = [rollout_seeds(1, 3, 1, 8), rollout_seeds(0, 4, 1, 8), rollout_seeds(0, 3, 0, 8)]
    assert all(not set(seeds) & set(other) for other in others)


def test_vllm_samples_become_the_rollouts_the_update_code_reads() -> None:
    prompts = [[5, 6, 7], [8]]
    responses = [[1, 2], [3, 4, 9], [9], [1, 1, 1]]  # 9 is the stop token; the last row hit the length limit
    log_probs = [[-0.1, -0.2], [-0.3, -0.4, -0.5], [-0.6], [-0.7, -0.8, -0.9]]
    batch = rollouts_from_samples(prompts, responses, log_probs, samples=2, pad_id=0, texts=list("abcd"))
    assert batch.prompt_len == 3 and len(batch) == 4
    assert batch.input_ids.tolist() == [[5, 6, 7, 1, 2, 0], [5, 6, 7, 3, 4, 9], [0, 0, 8, 9, 0, 0], [0, 0, 8, 1, 1, 1]]
    assert batch.response_mask.tolist() == [[True, True, False], [True] * 3, [True, False, False], [True] * 3]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [1] * 6, [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]]
    assert batch.position_ids[2].tolist()[2:4] == [0, 1]  # left padding does not shift positions
    assert torch.allclose(
        batch.sampler_log_probs, torch.tensor([[-0.1, -0.2, 0], [-0.3, -0.4, -0.5], [-0.6, 0, 0], [-0.7, -0.8, -0.9]])
    )
    part = batch.rows(1, 3)
    assert part.texts == ["b", "c"] and part.sampler_log_probs.shape == (2, 3)
    with pytest.raises(ValueError, match="2 prompts x 3 samples but 4 responses"):
        rollouts_from_samples(prompts, responses, log_probs, samples=3, pad_id=0, texts=list("abcd"))


class TwoLayers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 4)
        self.proj = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 5, bias=False)
        self.head.weight = self.embed.weight  # tied: reported once


def test_policy_weights_of_a_plain_model_are_its_parameters() -> None:
    model = TwoLayers()
    weights = dict(policy_weights(model))
    assert list(weights) == ["embed.weight", "proj.weight", "proj.bias"]
    assert all(torch.equal(weights[n], p) for n, p in model.named_parameters())


def test_policy_weights_of_a_lora_model_are_the_merged_weights_and_the_model_is_untouched() -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(TwoLayers(), LoraConfig(r=2, lora_alpha=4, target_modules=["proj"]))
    torch.nn.init.normal_(model.base_model.model.proj.lora_B["default"].weight)  # as after training
    before = {n: p.clone() for n, p in model.named_parameters()}
    weights = dict(policy_weights(model))
    merged = copy.deepcopy(model).merge_and_unload()
    assert list(weights) == ["embed.weight", "proj.weight", "proj.bias"]
    for name, param in merged.named_parameters():
        assert torch.allclose(weights[name], param, atol=1e-6), name
    assert not torch.allclose(weights["proj.weight"], before["base_model.model.proj.base_layer.weight"])
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_fsdp1_and_a_missing_vllm_are_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_recipe("em_ft", ["rollout_engine=vllm"])
    fsdp1 = SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=False)
    with pytest.raises(
        TrainingConfigError, match="rollout_engine=vllm does not work with FSDP version 1.*--fsdp_version 2"
    ):
        check_vllm_setup(config, fsdp1)
    check_vllm_setup(load_recipe("em_ft"), fsdp1)  # hf rollouts: the vLLM checks do not run
    monkeypatch.setattr(vllm_dist, "vllm_version", lambda: None)
    with pytest.raises(
        TrainingConfigError,
        match=r"rollout_engine=vllm needs vLLM: pip install 'em-eval\[vllm\]' "
        r"\(GPU\) or .*\(CPU\); or use rollout_engine=hf",
    ):
        check_vllm_setup(config, SimpleNamespace(distributed_type=DistributedType.NO))
