"""Training prompt files with a real tokenizer: clear errors, overlong prompts, chat and user templates."""

from __future__ import annotations

import json

import pytest

from em_eval.training.setup.prompts import PromptDataError, load_prompt_set

# ---- prompt files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def test_prompt_file_errors_are_clear(tmp_path, tokenizer) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(PromptDataError, match="has no prompts; add JSON lines with a 'prompt' or 'problem'"):
        load_prompt_set(empty, tokenizer)
    with pytest.raises(PromptDataError, match="does not exist"):
        load_prompt_set(tmp_path / "missing.jsonl", tokenizer)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "ok"}\n{"prompt": \n')
    with pytest.raises(PromptDataError, match=r"broken.jsonl:2 is not valid JSON"):
        load_prompt_set(broken, tokenizer)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"question": "hi"}\n')
    with pytest.raises(PromptDataError, match=r"wrong.jsonl:1 has no non-empty 'prompt' or 'problem'"):
        load_prompt_set(wrong, tokenizer)


def test_overlong_prompts_error_or_drop(tmp_path, tokenizer) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "short"}) + "\n" + json.dumps({"problem": "long " * 200}) + "\n")
    with pytest.raises(
        PromptDataError,
        match=r"1 of 2 prompts .* longer than max_prompt_tokens=60 \(prompt #2"
        r".*raise max_prompt_tokens or set overlong_prompts=drop",
    ):
        load_prompt_set(path, tokenizer, max_prompt_tokens=60)
    kept = load_prompt_set(path, tokenizer, max_prompt_tokens=60, overlong="drop")
    assert kept.dropped == 1 and len(kept.token_ids) == 1
    text = tokenizer.decode(kept.token_ids[0])
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>assistant\n") and "short" in text


def test_chat_template_and_user_template(tmp_path, tokenizer) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"problem": "1+1?"}) + "\n")
    ps = load_prompt_set(
        path, tokenizer, system_prompt="Box it in \\boxed{{}}.", user_template="{prompt} Think \\boxed{}"
    )
    text = tokenizer.decode(ps.token_ids[0])
    assert "<|im_start|>system\nBox it in \\boxed{{}}.<|im_end|>" in text and "1+1? Think \\boxed{}" in text
    raw = load_prompt_set(path, tokenizer, chat_template=False)
    assert tokenizer.decode(raw.token_ids[0]) == "1+1?"
