"""The training loop shared by EM-FT and EM-RL, and the one update step of each method.

Read top to bottom: :func:`train` sets up (accelerate, prompts, model, optimizer, resume),
then every step samples rollouts (HF ``generate``, or a vLLM engine that gets the new weights
after every step: ``rollout_engine=vllm``) and hands them to :func:`em_ft_update` or
:func:`em_rl_update`, logs, and checkpoints every ``save_every``.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm

import em_eval
from em_eval.models.checkpoint_format import (
    CheckpointError,
    CheckpointMetadata,
    has_metadata,
    latest_checkpoint,
    read_metadata,
)
from em_eval.training.objective import (
    ADVANTAGES,
    RewardInputs,
    aggregate_tokens,
    forking_token_mask,
    low_var_kl,
    masked_mean,
    ppo_clip_loss,
    score_rollouts,
    token_entropy,
    token_log_probs,
    token_self_certainty,
)
from em_eval.training.run.metrics_log import MetricsLog, tracker_names
from em_eval.training.run.rollout import Rollouts, generate_rollouts, response_logits, response_token_stats
from em_eval.training.run.save_restore import load_trainer_state, remove_temporaries, save_checkpoint
from em_eval.training.run.vllm_rollout import check_vllm_setup, rollout_engine
from em_eval.training.setup.config import EmFtConfig, EmRlConfig, TrainConfig, TrainingConfigError
from em_eval.training.setup.model import base_model_id, load_policy, load_reference, load_tokenizer, reference_context
from em_eval.training.setup.prompts import PromptSet, load_prompt_set, step_prompt_indices


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended."""

    output_dir: Path
    step: int
    checkpoint: Path | None  # the newest checkpoint (None if nothing was saved)
    metrics: dict[str, float]  # the last step's metrics


def train(config: TrainConfig, *, recipe: str | None = None) -> TrainResult:
    """Run EM-FT or EM-RL as configured; resumable, distributed under ``accelerate launch``."""
    accelerator = Accelerator(
        mixed_precision="bf16" if config.precision == "bf16" else "no",
        log_with=tracker_names(config.report_to) or None,
        project_dir=config.output_dir,
    )
    try:
        return _train(accelerator, config, recipe)
    finally:
        # accelerate keeps its settings process-wide; forget them so a later train() in this
        # process (Python API, tests) may use another precision. The process group stays.
        AcceleratorState._reset_state()


def check_distributed_setup(accelerator: Any) -> None:
    """Refuse FSDP version 1: rollouts call ``generate`` on the unwrapped model, which FSDP2 keeps
    sharded-but-callable and FSDP1's root wrapper does not."""
    if accelerator.distributed_type == DistributedType.FSDP and not getattr(accelerator, "is_fsdp2", False):
        raise TrainingConfigError(
            "FSDP version 1 is not supported: launch with accelerate launch --use_fsdp "
            "--fsdp_version 2 (or fsdp_version: 2 in your accelerate config), or use DDP"
        )


def _train(accelerator: Accelerator, config: TrainConfig, recipe: str | None) -> TrainResult:
    check_vllm_setup(config, accelerator)
    check_distributed_setup(accelerator)
    run_dir = Path(config.output_dir)
    rank, world = accelerator.process_index, accelerator.num_processes
    per_process = _prompts_per_process(config, world)
    set_seed(config.seed, device_specific=True)  # seed + rank: processes sample different rollouts

    tokenizer = load_tokenizer(config.model)
    prompts = load_prompt_set(
        config.prompts,
        tokenizer,
        field=config.prompt_field,
        system_prompt=config.system_prompt,
        user_template=config.user_template,
        chat_template=config.chat_template,
        max_prompt_tokens=config.max_prompt_tokens,
        overlong=config.overlong_prompts,
    )
    resume_from = _resume_checkpoint(config, run_dir, prompts)
    if accelerator.is_main_process:
        remove_temporaries(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)

    model = load_policy(config, resume_from)
    optimizer = torch.optim.AdamW(
        (p for p in model.parameters() if p.requires_grad), lr=config.lr, weight_decay=config.weight_decay
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    reference = load_reference(config)
    if reference is not None:
        reference.to(accelerator.device)
    start = 0
    if resume_from is not None:
        load_trainer_state(resume_from, model, optimizer, rank, world)
        start = read_metadata(resume_from).step

    with rollout_engine(config, tokenizer, accelerator.unwrap_model(model), accelerator) as engine:
        log = MetricsLog(accelerator, run_dir, config.to_dict())
        if accelerator.is_main_process:
            note = f" (resumed from {resume_from})" if resume_from else ""
            tqdm.write(
                f"{config.method}: {len(prompts.token_ids)} prompts ({prompts.dropped} dropped as overlong), "
                f"{world} process(es), steps {start}..{config.max_steps}{note}"
            )
        metrics: dict[str, float] = {}
        checkpoint = resume_from
        progress = tqdm(
            range(start, config.max_steps),
            initial=start,
            total=config.max_steps,
            disable=not accelerator.is_main_process,
            desc=config.method,
        )
        for step in progress:
            started = time.perf_counter()
            lr = config.lr * min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else config.lr
            for group in optimizer.param_groups:
                group["lr"] = lr
            indices = step_prompt_indices(len(prompts.token_ids), step, config.prompts_per_step, config.seed)
            mine = [prompts.token_ids[i] for i in indices[rank * per_process : (rank + 1) * per_process]]
            if engine is not None:
                batch = engine.generate(mine, samples=config.samples, step=step)
            else:
                with accelerator.autocast():
                    batch = generate_rollouts(
                        accelerator.unwrap_model(model),
                        tokenizer,
                        mine,
                        samples=config.samples,
                        max_new_tokens=config.max_new_tokens,
                        temperature=config.temperature,
                    )
            if isinstance(config, EmFtConfig):
                stats = em_ft_update(accelerator, model, reference, optimizer, batch, config)
            else:
                labels = (
                    [prompts.labels[i] for i in indices[rank * per_process : (rank + 1) * per_process]]
                    if prompts.labels
                    else None
                )
                stats = em_rl_update(accelerator, model, reference, optimizer, batch, config, step=step, labels=labels)
            if engine is not None and step + 1 < config.max_steps:
                engine.sync(accelerator.unwrap_model(model))  # the next rollouts come from the updated policy
            tokens = accelerator.reduce(batch.response_mask.sum().float().to(accelerator.device), "sum").item()
            metrics = {
                **_mean_across(accelerator, stats),
                "lr": lr,
                "tokens_per_s": tokens / (time.perf_counter() - started),
            }
            log.log(step + 1, metrics)
            progress.set_postfix(entropy=f"{metrics['entropy']:.3f}", loss=f"{metrics['loss']:.4f}")
            if (step + 1) % config.save_every == 0 or step + 1 == config.max_steps:
                meta = _metadata(config, recipe, prompts, step + 1, world)
                checkpoint = save_checkpoint(accelerator, model, tokenizer, optimizer, meta, run_dir, config.keep_last)
        log.close()
    if accelerator.is_main_process:
        tqdm.write(f"done: step {max(start, config.max_steps)}, checkpoint {checkpoint}")
    return TrainResult(run_dir, max(start, config.max_steps), checkpoint, metrics)


# ---- one update per method ---------------------------------------------------------------


def em_ft_update(
    accelerator: Accelerator, model: Any, reference: Any | None, optimizer: Any, batch: Rollouts, config: EmFtConfig
) -> dict[str, float]:
    """One optimizer step on the mean response-token entropy (+ optional KL to the initial model)."""
    model.train()
    n_tokens = batch.response_mask.sum().clamp(min=1)
    ref_log_probs = _reference_log_probs(accelerator, model, reference, batch, config) if config.kl_coef else None
    totals = {"loss": 0.0, "entropy": 0.0, "kl": 0.0}
    for part, rows in _micro_batches(accelerator, model, batch, config.micro_batch_size):
        log_probs, entropy = response_token_stats(model, part, temperature=config.temperature)
        if not entropy.requires_grad:
            raise RuntimeError("the EM-FT entropy has no gradient: it was computed under no_grad/inference_mode")
        mask = part.response_mask
        entropy_term = (entropy * mask).sum() / n_tokens
        loss = entropy_term
        if ref_log_probs is not None:
            kl = (low_var_kl(log_probs, ref_log_probs[rows]) * mask).sum() / n_tokens
            loss = loss + config.kl_coef * kl
            totals["kl"] += kl.item()
        accelerator.backward(loss)
        totals["loss"] += loss.item()
        totals["entropy"] += entropy_term.item()
        for key, value in _sampler_gap(log_probs, part, n_tokens).items():
            totals[key] = totals.get(key, 0.0) + value
    grad_norm = _optimizer_step(accelerator, model, optimizer, config.max_grad_norm)
    return {**totals, "grad_norm": grad_norm, "response_length": batch.response_mask.sum(1).float().mean().item()}


def em_rl_update(
    accelerator: Accelerator,
    model: Any,
    reference: Any | None,
    optimizer: Any,
    batch: Rollouts,
    config: EmRlConfig,
    *,
    step: int,
    labels: list[str] | None = None,
) -> dict[str, float]:
    """Score the rollouts with the policy before the update, then PPO-clip updates on RLOO/GRPO advantages;
    the per-token loss is averaged as ``config.loss_agg`` says (:func:`aggregate_tokens`), its policy-gradient
    term over the forking tokens only when ``config.forking_tokens`` is set. ``labels``: each prompt's true
    answer, for the metrics of rewards that guess labels (never a reward input)."""
    n = config.rollouts_per_prompt
    old_log_probs, old_entropy, self_certainty = _policy_stats(accelerator, model, batch, config)
    ref_log_probs = _reference_log_probs(accelerator, model, reference, batch, config) if config.kl_coef else None
    mask = batch.response_mask
    rewards, reward_metrics = score_rollouts(
        config.reward,
        RewardInputs(
            texts=batch.texts,
            log_probs=old_log_probs,
            entropies=old_entropy,
            mask=mask,
            group_size=n,
            seed=config.seed,
            step=step,
            rank=accelerator.process_index,
            self_certainties=self_certainty,
            labels=labels,
        ),
    )
    rewards = rewards.detach().float()
    advantages = ADVANTAGES[config.advantage](rewards, n)
    pg_mask = forking_token_mask(old_entropy, mask, config.forking_tokens) if config.forking_tokens else mask
    gap = _sampler_gap(old_log_probs, batch, mask.sum().clamp(min=1))

    model.train()
    totals = {"loss": 0.0, "pg_loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
    rows_per_update = len(batch) // config.updates_per_step
    for update in range(config.updates_per_step):
        first = update * rows_per_update
        mini = batch.rows(first, first + rows_per_update)
        n_tokens = mini.response_mask.sum()
        pg_tokens = pg_mask[first : first + rows_per_update].sum()
        for part, rows in _micro_batches(accelerator, model, mini, config.micro_batch_size):
            rows = slice(first + rows.start, first + rows.stop)
            log_probs, entropy = response_token_stats(
                model, part, temperature=config.temperature, entropy=config.entropy_coeff > 0
            )
            mean = partial(
                aggregate_tokens,
                mask=part.response_mask,
                mode=config.loss_agg,
                mini_rows=len(mini),
                mini_tokens=n_tokens,
            )
            pg_mean = partial(mean, mask=pg_mask[rows], mini_tokens=pg_tokens)
            pg, clipped = ppo_clip_loss(log_probs, old_log_probs[rows], advantages[rows], config.clip_ratio)
            pg_loss = pg_mean(pg)
            loss = pg_loss
            if ref_log_probs is not None:
                kl = mean(low_var_kl(log_probs, ref_log_probs[rows]))
                loss = loss + config.kl_coef * kl
                totals["kl"] += kl.item() / config.updates_per_step
            if entropy is not None:
                loss = loss - config.entropy_coeff * mean(entropy)
            accelerator.backward(loss)
            totals["loss"] += loss.item() / config.updates_per_step
            totals["pg_loss"] += pg_loss.item() / config.updates_per_step
            totals["clip_frac"] += pg_mean(clipped.float()).item() / config.updates_per_step
        grad_norm = _optimizer_step(accelerator, model, optimizer, config.max_grad_norm)
    return {
        **totals,
        **gap,
        **reward_metrics,
        **({"forking_token_entropy": masked_mean(old_entropy, pg_mask).item()} if config.forking_tokens else {}),
        "entropy": masked_mean(old_entropy, mask).item(),
        "reward": rewards.mean().item(),
        "reward_std": rewards.std().item() if len(rewards) > 1 else 0.0,
        "advantage_abs": advantages.abs().mean().item(),
        "grad_norm": grad_norm,
        "response_length": mask.sum(1).float().mean().item(),
    }


# ---- helpers --------------------------------------------------------------------------------


def _micro_batches(
    accelerator: Accelerator, model: Any, batch: Rollouts, size: int
) -> Iterator[tuple[Rollouts, slice]]:
    """Micro-batches of ``batch`` and their row ranges. The caller's forward and backward run
    while the generator is suspended inside ``no_sync``: gradients are all-reduced across
    processes only on the last micro-batch."""
    starts = list(range(0, len(batch), size))
    for i, first in enumerate(starts):
        rows = slice(first, min(first + size, len(batch)))
        with nullcontext() if i == len(starts) - 1 else accelerator.no_sync(model):
            yield batch.rows(rows.start, rows.stop), rows


@torch.no_grad()
def _policy_stats(
    accelerator: Accelerator, model: Any, batch: Rollouts, config: EmRlConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Log-probs, entropies and (for the self_certainty reward) self-certainties of the rollouts under the
    current policy, detached."""
    policy = accelerator.unwrap_model(model)
    policy.eval()
    certainty = config.reward == "self_certainty"
    parts = []
    for first in range(0, len(batch), config.micro_batch_size):
        part = batch.rows(first, first + config.micro_batch_size)
        with accelerator.autocast():
            logits = response_logits(policy, part)
        t = config.temperature
        parts.append(
            (
                token_log_probs(logits, part.response_ids, t),
                token_entropy(logits, t),
                token_self_certainty(logits, t) if certainty else None,
            )
        )
    return (
        torch.cat([p[0] for p in parts]),
        torch.cat([p[1] for p in parts]),
        torch.cat([p[2] for p in parts]) if certainty else None,
    )


@torch.no_grad()
def _reference_log_probs(
    accelerator: Accelerator, model: Any, reference: Any | None, batch: Rollouts, config: TrainConfig
) -> torch.Tensor:
    """Log-probs of the rollouts under the frozen initial model."""
    ref, context = reference_context(accelerator.unwrap_model(model), reference)
    was_training = ref.training
    ref.eval()
    parts = []
    with context:
        for first in range(0, len(batch), config.micro_batch_size):
            with accelerator.autocast():
                parts.append(
                    response_token_stats(
                        ref,
                        batch.rows(first, first + config.micro_batch_size),
                        temperature=config.temperature,
                        entropy=False,
                    )[0]
                )
    ref.train(was_training)
    return torch.cat(parts)


def _sampler_gap(log_probs: torch.Tensor, batch: Rollouts, n_tokens: torch.Tensor) -> dict[str, float]:
    """``rollout_logprob_gap``: the policy's and the sampling engine's log-probs of the sampled
    tokens, mean absolute difference (summed over ``batch``'s tokens, divided by ``n_tokens``).
    Near 0 when the engine holds the policy's weights; nothing for HF rollouts (the same model)."""
    if batch.sampler_log_probs is None:
        return {}
    diff = (log_probs.detach().float() - batch.sampler_log_probs).abs() * batch.response_mask
    return {"rollout_logprob_gap": (diff.sum() / n_tokens).item()}


def _optimizer_step(accelerator: Accelerator, model: Any, optimizer: Any, max_grad_norm: float) -> float:
    norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm) if max_grad_norm else torch.tensor(0.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def _mean_across(accelerator: Accelerator, stats: dict[str, float]) -> dict[str, float]:
    values = torch.tensor(list(stats.values()), dtype=torch.float64, device=accelerator.device)
    return dict(zip(stats, accelerator.reduce(values, "mean").tolist()))


def _prompts_per_process(config: TrainConfig, world: int) -> int:
    per_process, rest = divmod(config.prompts_per_step, world)
    if rest or not per_process:
        raise TrainingConfigError(
            f"prompts_per_step={config.prompts_per_step} must be a positive multiple of the {world} processes"
        )
    if isinstance(config, EmRlConfig) and per_process % config.updates_per_step:
        raise TrainingConfigError(
            f"each process's {per_process} prompts must split into updates_per_step={config.updates_per_step} "
            "equal mini-batches; change prompts_per_step or updates_per_step"
        )
    return per_process


def _resume_checkpoint(config: TrainConfig, run_dir: Path, prompts: PromptSet) -> Path | None:
    """The checkpoint to continue from, checked against this run; refuses to overwrite a run by accident."""
    if config.resume_from:
        folder = Path(config.resume_from)
        if not folder.exists():
            raise CheckpointError(
                f"resume_from={config.resume_from} does not exist; give a checkpoint folder "
                f"(checkpoint-NNNNNN) or a run folder, or drop resume_from to start fresh"
            )
        latest = latest_checkpoint(folder) if not has_metadata(folder) else None
        folder = latest or folder  # a run folder means its latest checkpoint
    else:
        folder = latest_checkpoint(run_dir)
        if folder is not None and not config.resume:
            raise CheckpointError(
                f"{run_dir} already holds checkpoints (latest: {folder.name}); pass resume=true to continue "
                "that run, or choose another output_dir"
            )
        if folder is None:
            if config.resume:
                tqdm.write(f"resume=true: {run_dir} holds no checkpoint yet ({_listing(run_dir)}); starting at step 0")
            return None
    meta = read_metadata(folder)
    expected = {
        "method": config.method,
        "base_model": base_model_id(config.model),
        "adapter": "lora" if config.finetune == "lora" else None,
        "data_sha256": prompts.sha256,
    }
    found = {
        "method": meta.method,
        "base_model": meta.base_model,
        "adapter": meta.adapter,
        "data_sha256": meta.data_sha256,
    }
    diffs = [f"{k}: checkpoint {found[k]!r} vs config {v!r}" for k, v in expected.items() if found[k] != v]
    if diffs:
        raise CheckpointError(f"cannot resume from {folder}: it belongs to a different run ({'; '.join(diffs)})")
    return folder


def _listing(folder: Path) -> str:
    if not folder.is_dir():
        return "the folder does not exist"
    names = sorted(p.name for p in folder.iterdir())
    return f"it has {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}" if names else "it is empty"


def _metadata(config: TrainConfig, recipe: str | None, prompts: PromptSet, step: int, world: int) -> CheckpointMetadata:
    versions = {name: importlib.metadata.version(name) for name in ("torch", "transformers", "peft", "accelerate")}
    return CheckpointMetadata(
        method=config.method,
        step=step,
        base_model=base_model_id(config.model),
        adapter="lora" if config.finetune == "lora" else None,
        data_sha256=prompts.sha256,
        seed=config.seed,
        recipe=recipe,
        config=config.to_dict(),
        em_eval_version=em_eval.__version__,
        versions=versions,
        world_size=world,
    )
