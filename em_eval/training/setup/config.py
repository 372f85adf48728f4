"""One config dataclass per method; a recipe YAML maps onto it field by field.

Defaults follow the paper's setup (em_methods.md sections 2 and 3) where it is known: a
7B model, 512 prompts per step, 3072 response tokens, constant lr 1e-6. The shipped
recipes in ``training/`` scale the sizes down so they run on a CPU, and say so.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from transformers import HfArgumentParser

from em_eval.asset_paths import asset_dir, asset_names, read_mapping
from em_eval.training.objective import LOSS_AGGREGATIONS
from em_eval.user_errors import UserError


class TrainingConfigError(UserError, ValueError):
    """A recipe or override that cannot be turned into a valid training config."""


def _field(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(kw_only=True)
class TrainConfig:
    """Fields shared by EM-FT and EM-RL."""

    method: ClassVar[str] = ""

    # model
    model: str = _field("smollm2-135m", "HF id, local HF folder, or the embedded short name (smollm2-135m)")
    finetune: str = _field("full", '"full" or "lora" (peft)')
    lora_r: int = _field(16, "LoRA rank")
    lora_alpha: int = _field(32, "LoRA alpha")
    lora_dropout: float = _field(0.0, "LoRA dropout")
    lora_target_modules: str = _field("all-linear", 'peft name list, comma-separated, or "all-linear"')
    precision: str = _field("fp32", '"fp32" or "bf16" (autocast; weights and optimizer stay fp32)')
    gradient_checkpointing: bool = _field(False, "recompute activations in the backward pass (less memory, more time)")

    # prompts
    prompts: str = _field("", "prompt file, JSONL with a `prompt` or `problem` field (no labels needed)")
    prompt_field: str | None = _field(None, "JSON field holding the prompt (default: `prompt`, else `problem`)")
    chat_template: bool = _field(True, "wrap each prompt in the tokenizer's chat template")
    system_prompt: str | None = _field(None, "system message for the chat template (none by default)")
    user_template: str = _field("{prompt}", "`{prompt}` is replaced by the row's text")
    max_prompt_tokens: int = _field(1024, "longest prompt, in tokens (see overlong_prompts)")
    overlong_prompts: str = _field("error", '"error" or "drop" (verl\'s filter_overlong_prompts)')

    # rollouts
    max_new_tokens: int = _field(3072, "response tokens per rollout (plain sampling: no top-k, no top-p)")
    temperature: float = _field(1.0, "sampling temperature; entropies and log-probs use the same")
    rollout_engine: str = _field(
        "hf",
        '"hf" (transformers generate) or "vllm" (a vLLM engine in this process, '
        "weights synced after every optimiser step)",
    )
    vllm_gpu_memory_utilization: float = _field(
        0.3, "share of the GPU's memory the vLLM engine may take (it shares the GPU with training)"
    )
    vllm_dtype: str = _field(
        "auto", '"auto" (bfloat16 with precision=bf16, else float32), "float32", "bfloat16" or "float16"'
    )
    vllm_enforce_eager: bool = _field(
        False, "no CUDA graphs / torch.compile in vLLM: starts in seconds, decodes slower (use on CPU)"
    )

    # optimisation
    prompts_per_step: int = _field(512, "prompts per optimiser step, across all processes")
    micro_batch_size: int = _field(8, "sequences per forward/backward pass, per process")
    max_steps: int = _field(40, "optimiser steps")
    lr: float = _field(1e-6, "learning rate (AdamW)")
    warmup_steps: int = _field(0, "linear warmup, then constant")
    weight_decay: float = _field(0.01, "AdamW weight decay")
    max_grad_norm: float = _field(1.0, "gradient clipping norm")
    kl_coef: float = _field(0.0, "low-variance KL to the frozen initial model, in the loss")

    # bookkeeping
    output_dir: str = _field("runs/em-train", "run folder: checkpoints, metrics.jsonl, config.yaml")
    seed: int = _field(0, "seed of sampling and data order")
    save_every: int = _field(20, "save a checkpoint every N steps; the last step is always saved")
    keep_last: int = _field(0, "keep only the newest K checkpoints (0: keep all)")
    resume: bool = _field(False, "continue from the latest checkpoint in output_dir")
    resume_from: str | None = _field(None, "continue from this checkpoint folder")
    report_to: str = _field("auto", '"auto", "none", "tensorboard", "wandb" (JSONL + stdout always)')

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        _one_of("finetune", self.finetune, ("full", "lora"))
        _one_of("precision", self.precision, ("fp32", "bf16"))
        _one_of("overlong_prompts", self.overlong_prompts, ("error", "drop"))
        _one_of("report_to", self.report_to, ("auto", "none", "tensorboard", "wandb"))
        _one_of("rollout_engine", self.rollout_engine, ("hf", "vllm"))
        _one_of("vllm_dtype", self.vllm_dtype, ("auto", "float32", "bfloat16", "float16"))
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise TrainingConfigError(
                "vllm_gpu_memory_utilization must be in (0, 1], a share of the GPU's memory "
                f"(got {self.vllm_gpu_memory_utilization})"
            )
        if not self.prompts:
            raise TrainingConfigError("no prompt file: set prompts=<file.jsonl> (one JSON object per line)")
        if "{prompt}" not in self.user_template:
            raise TrainingConfigError(f"user_template must contain '{{prompt}}' (got {self.user_template!r})")
        for name in (
            "max_prompt_tokens",
            "max_new_tokens",
            "prompts_per_step",
            "micro_batch_size",
            "max_steps",
            "save_every",
            "lora_r",
        ):
            if getattr(self, name) < 1:
                raise TrainingConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("lr", "kl_coef", "weight_decay", "max_grad_norm", "warmup_steps", "keep_last", "lora_dropout"):
            if getattr(self, name) < 0:
                raise TrainingConfigError(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.temperature <= 0:
            raise TrainingConfigError(f"temperature must be > 0: rollouts are sampled (got {self.temperature})")

    @property
    def samples(self) -> int:
        """Responses sampled per prompt."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """All fields plus ``method``: what a recipe YAML holds."""
        return {"method": self.method, **dataclasses.asdict(self)}


@dataclass(kw_only=True)
class EmFtConfig(TrainConfig):
    """EM-FT: minimise the mean full-vocabulary entropy of the model's own samples.

    Paper main row: N = 1, no KL, full fine-tuning, 40 steps of 512 prompts. Learning rate
    and token normalisation are unstated; we use lr 1e-6 and a token-level mean.
    """

    method: ClassVar[str] = "em_ft"
    samples_per_prompt: int = _field(1, "responses sampled per prompt (the paper's N = 1)")

    def _check(self) -> None:
        super()._check()
        if self.samples_per_prompt < 1:
            raise TrainingConfigError(f"samples_per_prompt must be >= 1 (got {self.samples_per_prompt})")

    @property
    def samples(self) -> int:
        return self.samples_per_prompt


@dataclass(kw_only=True)
class EmRlConfig(TrainConfig):
    """EM-RL: PPO-clip with RLOO advantages and an unsupervised reward (verl defaults of the paper).

    ``reward``: ``token`` (minus mean token entropy), ``sequence`` (mean token log-prob),
    ``self_consistency`` (SC-RL), ``random`` (control), the follow-up controls ``self_certainty``
    (Intuitor), ``last_third_entropy`` (RENT), ``majority`` (TTRL), or ``module:function``.
    """

    method: ClassVar[str] = "em_rl"
    reward: str = _field(
        "token",
        "token (minus mean token entropy), sequence (mean token log-prob), "
        "self_consistency (SC-RL), random (control), self_certainty (Intuitor: mean KL(U||p)), "
        "last_third_entropy (RENT), majority (TTRL majority vote), or module:function",
    )
    forking_tokens: float = _field(
        0.0,
        "share of the batch's response tokens with the highest entropy that carry "
        "the policy gradient loss (arXiv 2506.01939: 0.2); 0 = every token",
    )
    rollouts_per_prompt: int = _field(4, "responses per prompt (>= 2: advantages compare rollouts of one prompt)")
    advantage: str = _field("rloo", '"rloo" (leave-one-out mean, no std) or "grpo"')
    clip_ratio: float = _field(0.2, "PPO clip range")
    kl_coef: float = _field(0.001, "low-variance KL to the frozen initial model, in the loss")
    entropy_coeff: float = _field(0.001, "verl's default entropy *bonus*, left on by the paper's scripts")
    updates_per_step: int = _field(4, "PPO mini-batches per rollout batch (verl: 512 / 128)")
    loss_agg: str = _field(
        "micro_batch_token_mean",
        '"micro_batch_token_mean" (the paper\'s verl fork: token mean '
        "per micro-batch, micro-batches averaged; then micro_batch_size changes the weights) "
        'or "mini_batch_token_mean" (every token of a mini-batch weighs the same)',
    )
    max_steps: int = _field(100, "optimiser steps")

    def _check(self) -> None:
        super()._check()
        _one_of("advantage", self.advantage, ("rloo", "grpo"))
        _one_of("loss_agg", self.loss_agg, LOSS_AGGREGATIONS)
        if self.rollouts_per_prompt < 2:
            raise TrainingConfigError(
                f"rollouts_per_prompt must be >= 2: advantages compare rollouts of one prompt "
                f"(got {self.rollouts_per_prompt})"
            )
        if not 0 <= self.forking_tokens < 1:
            raise TrainingConfigError(
                f"forking_tokens must be in [0, 1), a share of the tokens such as 0.2; 0 "
                f"updates on every token (got {self.forking_tokens})"
            )
        if self.updates_per_step < 1 or self.clip_ratio <= 0 or self.entropy_coeff < 0:
            raise TrainingConfigError("updates_per_step must be >= 1, clip_ratio > 0 and entropy_coeff >= 0")

    @property
    def samples(self) -> int:
        return self.rollouts_per_prompt


METHODS: dict[str, type[TrainConfig]] = {"em_ft": EmFtConfig, "em_rl": EmRlConfig}


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise TrainingConfigError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")


def recipe_names() -> list[str]:
    """Names of the shipped recipes."""
    return asset_names("training")


def recipe_path(name_or_path: str) -> Path:
    """A recipe file: an existing path, else a shipped recipe by name (``em_ft``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = asset_dir("training") / f"{path.stem}.yaml"
    if shipped.is_file() and path.suffix in ("", ".yaml"):
        return shipped
    raise TrainingConfigError(
        f"recipe {name_or_path!r} not found; give a YAML path or one of: {', '.join(recipe_names())}"
    )


def load_recipe(name_or_path: str, overrides: list[str] | dict[str, Any] | None = None) -> TrainConfig:
    """Read a recipe YAML, apply ``key=value`` overrides, return the method's config.

    Relative ``prompts`` and ``resume_from`` paths in the file are relative to the file;
    in overrides, and ``output_dir`` always, to the current directory.
    """
    path = recipe_path(name_or_path)
    data = read_mapping(path, "recipe", "method", f" ({' or '.join(METHODS)})", TrainingConfigError)
    for key in ("prompts", "resume_from"):
        if data.get(key) and not Path(str(data[key])).is_absolute():
            data[key] = str((path.parent / str(data[key])).resolve())
    if overrides:
        data.update(overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    return config_from_dict(data)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["lr=1e-5", "finetune=lora"]`` -> ``{"lr": "1e-5", "finetune": "lora"}`` (typed later)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrainingConfigError(f"override {item!r} is not key=value (e.g. lr=1e-5)")
        out[key.strip()] = value
    return out


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build the method's config from a mapping; values (YAML's or strings) are parsed to the field
    types by the same ``HfArgumentParser`` that serves ``em-eval train``."""
    data = dict(data)
    method = data.pop("method", None)
    if method not in METHODS:
        raise TrainingConfigError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    cls = METHODS[method]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    argv = []
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(sorted(fields))}"
            raise TrainingConfigError(f"unknown {method} config field {key!r}{hint}")
        optional = type(None) in typing.get_args(hints[key])
        if value is None or (optional and isinstance(value, str) and value.lower() in ("", "none", "null")):
            if not optional:
                raise TrainingConfigError(f"{key} cannot be empty")
            continue  # every optional field defaults to None
        argv += [f"--{key}", _as_text(value)]
    return ConfigParser(cls).parse(argv)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):  # e.g. lora_target_modules: [q_proj, v_proj]
        return ",".join(str(v) for v in value)
    return str(value)


class ConfigParser(HfArgumentParser):
    """One ``--field`` option per field of a method's config, with its type, default and help;
    errors raise :class:`TrainingConfigError`."""

    def __init__(self, cls: type[TrainConfig], **kwargs: Any) -> None:
        super().__init__(cls, exit_on_error=False, **kwargs)
        self.config_class = cls

    def error(self, message: str) -> typing.NoReturn:
        raise TrainingConfigError(message)

    def parse(self, argv: list[str]) -> TrainConfig:
        """The config from ``--field value`` arguments (anything else is an error)."""
        try:
            namespace = self.parse_args(argv)
        except argparse.ArgumentError as exc:
            name = (exc.argument_name or "").lstrip("-").split("/")[0]
            hint = typing.get_type_hints(self.config_class).get(name)
            kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            kind = getattr(kind, "__name__", kind)
            if exc.message.startswith("invalid"):  # "invalid int value: 'many'"
                raise TrainingConfigError(f"{name} must be {kind} (got {exc.message.rpartition(': ')[2]})") from None
            raise TrainingConfigError(f"{name} must be {kind}: {exc.message}") from None
        return self.config_class(**vars(namespace))
