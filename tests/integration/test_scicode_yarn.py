"""The SciCode card's YaRN x4 recipes (the paper's ``vllm serve --rope-scaling``) do what they say, on a tiny
Qwen2 with Qwen2.5-7B-Instruct's rope settings: the HF one through ``--model em_inf``, the vLLM one
through vLLM's own config resolution (no engine)."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import pytest
from lm_eval._cli.utils import key_val_to_dict

from vllm_required import require_vllm

CARD = Path(__file__).resolve().parents[2] / "tasks" / "scicode" / "README.md"
YARN_CONTEXT = 4 * 32768


def card_recipe(backend: str) -> dict:
    """The ``--model_args`` of the card's code block under ``<backend> (`--model ...`):``, parsed as lm-eval does."""
    text = CARD.read_text(encoding="utf-8")
    block = text.split(f"{backend} (`--model ", 1)[1].split("```\n", 2)[1]
    words = shlex.split(block.strip())
    assert words[0] == "--model_args", block
    args: dict = {}
    for word in words[1:]:
        args.update(key_val_to_dict(word))
    assert args.pop("pretrained") == "Qwen/Qwen2.5-7B-Instruct"
    return args


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory, smollm2_dir) -> Path:
    """A 1-layer random Qwen2 with Qwen2.5-7B-Instruct's context (32768) and rope_theta (1e6)."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("tiny_qwen2")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_hf_recipe_gives_yarn_x4_and_the_longer_context(tiny_qwen2) -> None:
    from em_eval.backends.hf import EmInfLM

    plain = EmInfLM(pretrained=str(tiny_qwen2), device="cpu")
    lm = EmInfLM(pretrained=str(tiny_qwen2), device="cpu", **card_recipe("HF"))
    rotary, before = lm.model.model.rotary_emb, plain.model.model.rotary_emb
    assert (plain.max_length, lm.max_length) == (32768, YARN_CONTEXT)
    assert (before.rope_type, rotary.rope_type) == ("default", "yarn")
    assert rotary.attention_scaling == pytest.approx(0.1 * math.log(4) + 1)  # YaRN's mscale for factor 4
    assert not bool((rotary.inv_freq == before.inv_freq).all())  # low frequencies interpolated


@pytest.mark.vllm
def test_vllm_recipe_gives_yarn_x4_and_the_longer_context(tiny_qwen2) -> None:
    require_vllm()
    from vllm.config import ModelConfig

    overrides = card_recipe("vLLM")["hf_overrides"]
    assert ModelConfig(model=str(tiny_qwen2)).max_model_len == 32768
    config = ModelConfig(model=str(tiny_qwen2), hf_overrides=overrides)
    assert config.max_model_len == YARN_CONTEXT
    assert config.hf_config.rope_parameters == {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
    }
