"""Loading the policy (full or LoRA), the frozen reference and the tokenizer."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from em_eval.models.embedded import embedded_model_dir, is_embedded
from em_eval.training.setup.config import TrainConfig


def base_model_id(name: str) -> str:
    """How a base model is recorded: the embedded short name or a hub id as given, a local folder absolute."""
    path = Path(name).expanduser()
    return str(path.resolve()) if not is_embedded(name) and path.is_dir() else name


def model_location(name: str) -> str:
    """Something ``from_pretrained`` loads: the embedded model's folder, else ``name``."""
    return str(embedded_model_dir()) if is_embedded(name) else name


def load_tokenizer(name: str) -> Any:
    """The base model's tokenizer, with a pad token (EOS when it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(model_location(name))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _from_pretrained(location: str | Path) -> Any:
    # fp32 master weights; bf16 runs use autocast on top (precision=bf16)
    return AutoModelForCausalLM.from_pretrained(str(location), dtype=torch.float32)


def load_policy(config: TrainConfig, checkpoint: Path | None = None) -> Any:
    """The model to train: the base (or a full checkpoint), wrapped in LoRA if asked."""
    full_checkpoint = checkpoint is not None and config.finetune == "full"
    model = _from_pretrained(checkpoint if full_checkpoint else model_location(config.model))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.finetune == "lora":
        from peft import LoraConfig, PeftModel, get_peft_model

        if checkpoint is not None:
            return PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
        targets = config.lora_target_modules
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, lora)
    return model


def load_reference(config: TrainConfig) -> Any | None:
    """The frozen initial model for the KL term: None without KL or with LoRA (whose
    reference is the same model with the adapter disabled)."""
    if config.kl_coef == 0 or config.finetune == "lora":
        return None
    model = _from_pretrained(model_location(config.model))
    model.requires_grad_(False)
    return model.eval()


def reference_context(policy: Any, reference: Any | None) -> tuple[Any, AbstractContextManager]:
    """The model that computes reference log-probs, and the context to call it in."""
    if reference is not None:
        return reference, nullcontext()
    return policy, policy.disable_adapter()
