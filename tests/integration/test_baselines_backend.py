"""Decode methods through the HF backend on the tiny llama: self-consistency records every sample,
refinement equals greedy rounds done by hand."""

from __future__ import annotations

import pytest

from em_eval.decoding.methods import (
    SAMPLE_SEEDS,
    refinement_prompt,
)
from em_eval.records import DECODE_KEY, TELEMETRY_KEY
from lm_requests import SAMPLE, make_requests


# ---- through the real HF backend ---------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm_factory(tiny_llama_dir):
    from em_eval.backends.hf import EmInfLM

    def make(**kwargs) -> EmInfLM:
        return EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=8, em_mode="off", **kwargs)

    return make


def test_backend_self_consistency_records_all_samples(tiny_lm_factory) -> None:
    lm = tiny_lm_factory(decode_method="self_consistency", decode_n=3)
    expected = {"decode_method": "self_consistency", "decode_n": 3, "decode_seed": 42, "sample_seeds": SAMPLE_SEEDS}
    assert lm.get_model_info()["decode_method"] == expected
    reqs = make_requests(
        ["<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", "Count: 1, 2,"],
        {**SAMPLE, "temperature": 1.0, "max_gen_toks": 6},
    )
    out = lm.generate_until(reqs)
    for req, text in zip(reqs, out):
        record, telemetry = req.args[1][DECODE_KEY], req.args[1][TELEMETRY_KEY]
        assert len(record["samples"]) == 3 and text == record["samples"][record["chosen"]]
        assert len(telemetry) == 3 and all(t["gen_tokens"] <= 6 for t in telemetry)


def test_backend_refinement_equals_manual_greedy_rounds(tiny_lm_factory) -> None:
    greedy = {"until": [], "do_sample": False, "max_gen_toks": 5}
    prompt = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
    plain_lm = tiny_lm_factory()
    first = plain_lm.generate_until(make_requests([prompt], greedy))[0]
    second = plain_lm.generate_until(make_requests([refinement_prompt(prompt, first, prompt)], greedy))[0]
    reqs = make_requests([prompt], greedy)
    assert tiny_lm_factory(decode_method="refinement", decode_n=2).generate_until(reqs) == [second]
    assert reqs[0].args[1][DECODE_KEY]["rounds"] == [first, second]
    assert len(reqs[0].args[1][TELEMETRY_KEY]) == 2


def test_backend_refinement_feeds_leetcode_code_back_with_the_tokenizers_eos(tiny_lm_factory, monkeypatch) -> None:
    """LeetCode's round k+1 is shown round k's fenced code and the tokenizer's EOS (EM_PT evaluate_leetcode.py)."""
    lm = tiny_lm_factory(decode_method="refinement", decode_n=2)
    shown: list[str] = []
    real = lm._generate_plain

    def spy(reqs, disable_tqdm):
        shown.extend(r.args[0] for r in reqs)
        return real(reqs, disable_tqdm)

    monkeypatch.setattr(lm, "_generate_plain", spy)
    prompt = "<|im_start|>user\nWrite code.<|im_end|>\n<|im_start|>assistant\n"
    reqs = make_requests([prompt], {"until": [], "do_sample": False, "max_gen_toks": 4}, task="em_leetcode")
    lm.generate_until(reqs)
    assert len(shown) == 2 and shown[0] == prompt
    assert shown[1].startswith(prompt + "```python\n") and lm.tokenizer.eos_token + "\n\n" + prompt in shown[1]
