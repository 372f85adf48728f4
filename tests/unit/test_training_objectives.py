"""Pure pieces of the trainer: entropy/log-prob helpers, advantages, PPO/KL terms, rewards,
recipes and prompt files. No model, so these run in well under a second each."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import yaml

from em_eval.em_inf.core import entropy as decoding_entropy
from em_eval.training.objective import (
    RewardInputs,
    get_reward,
    grpo_advantages,
    low_var_kl,
    masked_mean,
    ppo_clip_loss,
    random_reward,
    rloo_advantages,
    sequence_reward,
    token_entropy,
    token_log_probs,
    token_reward,
)
from em_eval.training.run.rollout import response_mask
from em_eval.training.setup.config import (
    EmFtConfig,
    EmRlConfig,
    TrainingConfigError,
    config_from_dict,
    load_recipe,
    recipe_names,
)
from em_eval.training.setup.prompts import read_prompts, step_prompt_indices

# ---- entropy helpers ------------------------------------------------------------------------


def test_token_entropy_matches_brute_force_and_decoding_entropy() -> None:
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0)) * 4
    p = torch.softmax(logits.double(), -1)
    brute = -(p * p.log()).sum(-1)
    assert torch.allclose(token_entropy(logits).double(), brute, atol=1e-5)
    assert torch.allclose(token_entropy(logits).reshape(-1), decoding_entropy(logits.reshape(-1, 11)), atol=1e-5)
    # temperature scales the logits before the softmax
    p2 = torch.softmax(logits.double() / 0.5, -1)
    assert torch.allclose(token_entropy(logits, 0.5).double(), -(p2 * p2.log()).sum(-1), atol=1e-5)


def test_token_entropy_is_differentiable_with_the_closed_form_gradient() -> None:
    z = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    token_entropy(z).sum().backward()
    p = torch.softmax(z.detach(), -1)
    h = -(p * p.log()).sum(-1, keepdim=True)
    closed_form = -p * (p.log() + h)  # dH/dz
    assert torch.allclose(z.grad, closed_form, atol=1e-10)
    assert torch.autograd.gradcheck(lambda x: token_entropy(x, 0.7), (z.detach().requires_grad_(),))


def test_token_log_probs_and_masked_mean() -> None:
    logits = torch.randn(2, 4, 9)
    tokens = torch.randint(0, 9, (2, 4))
    expected = torch.log_softmax(logits, -1).gather(-1, tokens[..., None])[..., 0]
    assert torch.allclose(token_log_probs(logits, tokens), expected, atol=1e-6)
    values = torch.tensor([[1.0, 2.0, 30.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    assert masked_mean(values, mask).item() == pytest.approx(1.5)
    assert masked_mean(values, mask, dim=1).tolist() == [1.5, 0.0]


def test_response_mask_keeps_tokens_through_the_first_stop() -> None:
    responses = torch.tensor([[5, 6, 2, 2, 2], [5, 2, 7, 2, 9], [5, 6, 7, 8, 9], [2, 2, 2, 2, 2]])
    mask = response_mask(responses, [2])
    assert mask.long().tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


# ---- advantages and loss terms --------------------------------------------------------------


def test_rloo_advantages_hand_computed() -> None:
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0, 5.0, 5.0, 5.0, 5.0])
    # r_i minus the mean of the three others: 1 - 11/3, 2 - 10/3, 3 - 9/3, 6 - 6/3; a flat group gives 0
    expected = [-8 / 3, -4 / 3, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    assert rloo_advantages(rewards, 4).tolist() == pytest.approx(expected, abs=1e-6)
    # the same thing as n/(n-1) * (r - group mean), no std normalisation
    assert rloo_advantages(torch.tensor([0.0, 1.0]), 2).tolist() == pytest.approx([-1.0, 1.0])


def test_grpo_advantages_hand_computed() -> None:
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0, 5.0, 5.0, 5.0, 5.0])
    std = math.sqrt((4 + 1 + 0 + 9) / 3)  # unbiased
    expected = [-2 / std, -1 / std, 0.0, 3 / std, 0.0, 0.0, 0.0, 0.0]
    assert grpo_advantages(rewards, 4).tolist() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("fn", [rloo_advantages, grpo_advantages])
def test_advantages_reject_bad_groups(fn) -> None:
    with pytest.raises(ValueError, match="group_size"):
        fn(torch.ones(6), 4)
    with pytest.raises(ValueError, match="group_size"):
        fn(torch.ones(4), 1)


def test_ppo_clip_loss_hand_computed() -> None:
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 0.5, 1.1]])).requires_grad_()
    adv = torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    loss, clipped = ppo_clip_loss(new, old, adv, clip_ratio=0.2)
    # ratio 1.5, A=+1: max(-1.5, -1.2) = -1.2 (clipped); ratio 0.5, A=-1: max(0.5, 0.8) = 0.8 (clipped);
    # ratio 0.5, A=+1: max(-0.5, -0.8) = -0.5; ratio 1.1 inside the band: -1.1
    assert loss.tolist()[0] == pytest.approx([-1.2, 0.8, -0.5, -1.1], abs=1e-6)
    assert clipped.tolist() == [[True, True, False, False]]
    loss.sum().backward()
    assert new.grad[0, 0] == 0 and new.grad[0, 1] == 0 and new.grad[0, 2] != 0
    # one advantage per rollout broadcasts over its tokens
    per_row, _ = ppo_clip_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([2.0, -1.0]))
    assert per_row.tolist() == [[-2.0] * 3, [1.0] * 3]


def test_low_var_kl_values() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5, -30.0])
    ref = torch.tensor([-1.0, -1.0, -1.5, 0.0])
    d = ref - logp
    expected = torch.clamp(torch.exp(d) - d - 1, max=10)
    kl = low_var_kl(logp, ref)
    assert torch.allclose(kl, expected)
    assert kl[0] == 0 and (kl >= 0).all() and kl[3] == 10  # clamped


# ---- rewards --------------------------------------------------------------------------------


def _inputs(texts: list[str], group: int, **kw) -> RewardInputs:
    g = torch.Generator().manual_seed(1)
    b = len(texts)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]][:b]).bool()
    return RewardInputs(
        texts=texts,
        log_probs=-torch.rand(b, 5, generator=g),
        entropies=torch.rand(b, 5, generator=g) * 3,
        mask=mask,
        group_size=group,
        seed=kw.get("seed", 0),
        step=kw.get("step", 0),
        rank=kw.get("rank", 0),
    )


def test_entropy_rewards_match_brute_force() -> None:
    x = _inputs(["a"] * 4, 2)
    for row in range(4):
        n = int(x.mask[row].sum())
        assert token_reward(x)[row].item() == pytest.approx(-sum(x.entropies[row, :n].tolist()) / n, abs=1e-6)
        assert sequence_reward(x)[row].item() == pytest.approx(sum(x.log_probs[row, :n].tolist()) / n, abs=1e-6)


def test_random_reward_is_a_seeded_coin() -> None:
    x = _inputs(["t"] * 4, 2)
    many = RewardInputs(
        texts=["t"] * 2000,
        log_probs=torch.zeros(2000, 1),
        entropies=torch.zeros(2000, 1),
        mask=torch.ones(2000, 1, dtype=torch.bool),
        group_size=2,
        seed=0,
        step=3,
        rank=0,
    )
    r = random_reward(many)
    assert set(r.unique().tolist()) == {0.0, 1.0} and 0.45 < r.mean().item() < 0.55
    assert torch.equal(random_reward(many), r)  # reproducible
    assert not torch.equal(random_reward(RewardInputs(**{**many.__dict__, "step": 4})), r)
    assert random_reward(x).shape == (4,)


def test_get_reward_by_name_or_import_path() -> None:
    assert get_reward("token") is token_reward
    assert get_reward("em_eval.training.objective:sequence_reward") is sequence_reward
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        get_reward("nope")
    with pytest.raises(ValueError, match="cannot be imported"):
        get_reward("em_eval.training.objective:missing")


# ---- recipes and config ---------------------------------------------------------------------


def test_shipped_recipes_load_with_the_paper_settings() -> None:
    assert set(recipe_names()) >= {"em_ft", "em_rl_token", "em_rl_sequence", "sc_rl", "random_reward"}
    ft = load_recipe("em_ft")
    assert isinstance(ft, EmFtConfig) and ft.samples_per_prompt == 1 and ft.kl_coef == 0 and ft.temperature == 1.0
    rewards = {name: load_recipe(name).reward for name in ("em_rl_token", "em_rl_sequence", "sc_rl", "random_reward")}
    assert rewards == {
        "em_rl_token": "token",
        "em_rl_sequence": "sequence",
        "sc_rl": "self_consistency",
        "random_reward": "random",
    }
    rl = load_recipe("em_rl_token")
    assert (rl.rollouts_per_prompt, rl.advantage, rl.clip_ratio, rl.kl_coef, rl.lr) == (4, "rloo", 0.2, 0.001, 1e-6)
    assert rl.system_prompt.endswith("\\boxed{{}}.") and rl.user_template.endswith("\\boxed{}")  # verbatim (P9)
    assert read_prompts(Path(rl.prompts))  # relative to the recipe file


def test_overrides_are_typed_and_checked(tmp_path) -> None:
    cfg = load_recipe(
        "em_rl_token", ["lr=1e-5", "finetune=lora", "resume=true", "max_steps=3", "prompt_field=none", "advantage=grpo"]
    )
    assert (cfg.lr, cfg.finetune, cfg.resume, cfg.max_steps, cfg.prompt_field, cfg.advantage) == (
        1e-5,
        "lora",
        True,
        3,
        None,
        "grpo",
    )
    with pytest.raises(TrainingConfigError, match="did you mean 'max_steps'"):
        load_recipe("em_ft", ["max_step=3"])
    with pytest.raises(TrainingConfigError, match="max_steps must be int"):
        load_recipe("em_ft", ["max_steps=many"])
    with pytest.raises(TrainingConfigError, match="finetune must be one of full, lora"):
        load_recipe("em_ft", ["finetune=qlora"])
    with pytest.raises(TrainingConfigError, match="rollouts_per_prompt must be >= 2"):
        load_recipe("em_rl_token", ["rollouts_per_prompt=1"])
    with pytest.raises(TrainingConfigError, match="not key=value"):
        load_recipe("em_ft", ["lr"])
    with pytest.raises(TrainingConfigError, match="recipe 'nope' not found"):
        load_recipe("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\n")
    with pytest.raises(TrainingConfigError, match="'method' key"):
        load_recipe(str(bad))
    assert EmRlConfig(prompts="p.jsonl").updates_per_step == 4
    listed = config_from_dict({"method": "em_ft", "prompts": "p.jsonl", "lora_target_modules": ["q_proj", "v_proj"]})
    assert listed.lora_target_modules == "q_proj,v_proj"


def test_train_help_lists_every_field_with_default_and_help(capsys) -> None:
    from em_eval.cli import main

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the formatter wraps lines
    for cls in (EmFtConfig, EmRlConfig):
        for f in dataclasses.fields(cls):
            assert f"--{f.name}" in text, f.name
            assert " ".join(f.metadata["help"].split()) in text, f.name
    assert "learning rate (AdamW) (default: 1e-06)" in text
    assert "em_rl recipes add or change" in text and "(default: 100)" in text  # EM-RL's max_steps
    assert main(["train", "em_rl_sequence", "--help"]) == 0  # the recipe's values become the defaults
    assert "(default: sequence)" in " ".join(capsys.readouterr().out.split())


def test_flags_and_key_values_override_a_recipe(capsys) -> None:
    from em_eval.cli import main

    assert (
        main(
            ["train", "em_rl_sequence", "--lr", "3e-6", "max_steps=7", "--finetune=lora", "--resume", "--print-config"]
        )
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["method"], printed["lr"], printed["max_steps"], printed["finetune"], printed["resume"]) == (
        "em_rl",
        3e-6,
        7,
        "lora",
        True,
    )
    assert main(["train", "em_ft", "--lr", "fast", "--print-config"]) == 2
    assert "lr must be float (got 'fast')" in capsys.readouterr().err
    assert main(["train", "em_ft", "--no_such_field", "1"]) == 2
    assert "unrecognized arguments: --no_such_field 1" in capsys.readouterr().err


def test_prompt_order_is_a_per_epoch_shuffle_determined_by_the_step() -> None:
    first_epoch = step_prompt_indices(10, 0, 5, seed=3) + step_prompt_indices(10, 1, 5, seed=3)
    assert sorted(first_epoch) == list(range(10))
    assert step_prompt_indices(10, 2, 5, seed=3) + step_prompt_indices(10, 3, 5, seed=3) != first_epoch
    assert step_prompt_indices(10, 1, 5, seed=3) == step_prompt_indices(10, 1, 5, seed=3)
    assert step_prompt_indices(10, 0, 5, seed=4) != step_prompt_indices(10, 0, 5, seed=3)
    assert step_prompt_indices(3, 0, 7, seed=0)[:3] == list(step_prompt_indices(3, 0, 3, seed=0))
