"""The trainer's maths on real models: the tiny random llama and the embedded SmolLM2."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from transformers import AutoModelForCausalLM

from em_eval.asset_paths import asset_dir
from em_eval.training.objective import RewardInputs, masked_mean, sequence_reward, token_reward
from em_eval.training.run.heldout import heldout_entropy
from em_eval.training.run.loop import em_ft_update
from em_eval.training.run.rollout import generate_rollouts, response_token_stats
from em_eval.training.setup.config import EmFtConfig
from em_eval.training.setup.model import load_tokenizer
from em_eval.training.setup.prompts import load_prompt_set, render_prompt

PROMPTS = ["Hi!", "What is the capital of France? Answer in one short sentence."]


@pytest.fixture(scope="module", params=["tiny_llama_dir", "smollm2_dir"])
def loaded(request):
    path = request.getfixturevalue(request.param)
    tokenizer = load_tokenizer(str(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    prompts = [
        tokenizer(
            render_prompt(tokenizer, p, system_prompt=None, user_template="{prompt}", chat_template=True),
            add_special_tokens=False,
        )["input_ids"]
        for p in PROMPTS
    ]
    assert len(prompts[0]) != len(prompts[1])  # left padding is exercised
    return request.param, model, tokenizer, prompts


def test_entropy_loss_has_nonzero_gradients(loaded) -> None:
    _, model, tokenizer, prompts = loaded
    torch.manual_seed(0)
    batch = generate_rollouts(model, tokenizer, prompts, samples=2, max_new_tokens=4)
    model.zero_grad(set_to_none=True)
    _, entropy = response_token_stats(model, batch)
    loss = masked_mean(entropy, batch.response_mask)
    assert loss.requires_grad
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None for g in grads.values())
    first_layer = next(g for name, g in grads.items() if "layers.0." in name and "q_proj" in name)
    assert first_layer.abs().sum() > 0 and grads["model.embed_tokens.weight"].abs().sum() > 0
    model.zero_grad(set_to_none=True)

    # the guard: EM-FT refuses an entropy computed without autograd
    accelerator = Accelerator()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with torch.no_grad(), pytest.raises(RuntimeError, match="no gradient"):
        em_ft_update(accelerator, model, None, optimizer, batch, EmFtConfig(prompts="unused.jsonl"))
    AcceleratorState._reset_state()


def test_rewards_match_an_unpadded_recomputation(loaded) -> None:
    _, model, tokenizer, prompts = loaded
    torch.manual_seed(1)
    batch = generate_rollouts(model, tokenizer, prompts, samples=2, max_new_tokens=5)
    with torch.no_grad():
        log_probs, entropies = response_token_stats(model, batch)
    x = RewardInputs(
        texts=batch.texts,
        log_probs=log_probs,
        entropies=entropies,
        mask=batch.response_mask,
        group_size=2,
        seed=0,
        step=0,
        rank=0,
    )
    token, sequence = token_reward(x), sequence_reward(x)
    for row in range(len(batch)):
        prompt = prompts[row // 2]
        response = batch.response_ids[row][batch.response_mask[row]].tolist()
        with torch.no_grad():
            logits = model(torch.tensor([prompt + response])).logits[0].double()
        entropies_row, log_probs_row = [], []
        for t, token_id in enumerate(response):
            logp = torch.log_softmax(logits[len(prompt) - 1 + t], -1)
            entropies_row.append(-(logp.exp() * logp).sum().item())
            log_probs_row.append(logp[token_id].item())
        assert token[row].item() == pytest.approx(-sum(entropies_row) / len(response), abs=2e-4)
        assert sequence[row].item() == pytest.approx(sum(log_probs_row) / len(response), abs=2e-4)


def test_rollouts_sample_without_the_models_own_filters(tiny_llama_dir) -> None:
    tokenizer = load_tokenizer(str(tiny_llama_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.generation_config.top_k = 1  # would make every sample the argmax
    torch.manual_seed(2)
    batch = generate_rollouts(model, tokenizer, [tokenizer("Hello")["input_ids"]], samples=4, max_new_tokens=5)
    assert len({tuple(r.tolist()) for r in batch.response_ids}) > 1


def test_em_ft_steps_lower_heldout_entropy(smollm2_dir) -> None:
    tokenizer = load_tokenizer(str(smollm2_dir))
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    train_prompts = load_prompt_set(asset_dir("training") / "prompts" / "math_example.jsonl", tokenizer).token_ids
    held_out = [
        tokenizer(
            render_prompt(tokenizer, p, system_prompt=None, user_template="{prompt}", chat_template=True),
            add_special_tokens=False,
        )["input_ids"]
        for p in ("What is 9 + 14?", "Name a primary colour.", "What is 6 times 7?", "Spell cat backwards.")
    ]
    accelerator = Accelerator()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    config = EmFtConfig(prompts="unused.jsonl", micro_batch_size=2, max_new_tokens=8)
    before = heldout_entropy(model, tokenizer, held_out, max_new_tokens=8)
    torch.manual_seed(0)
    for step in range(2):  # 2 steps of 2 prompts, 8 sampled tokens each (lr chosen for a clear drop)
        batch = generate_rollouts(model, tokenizer, train_prompts[2 * step : 2 * step + 2], samples=1, max_new_tokens=8)
        stats = em_ft_update(accelerator, model, None, optimizer, batch, config)
        assert stats["grad_norm"] > 0
    after = heldout_entropy(model, tokenizer, held_out, max_new_tokens=8)
    AcceleratorState._reset_state()
    assert after < before - 0.3, (before, after)  # measured: 2.02 -> 0.85 nats
