"""The follow-up methods' unsupervised rewards and forking-token updates (pure pieces; no model)."""

from __future__ import annotations

import pytest
import torch

from em_eval.training.objective.losses import forking_mask
from em_eval.training.objective.rewards import (RewardInputs, get_reward, last_third_entropy_reward, majority_reward,
                                                pseudo_label_accuracy, self_certainty_reward)
from em_eval.training.objective.token_stats import token_self_certainty
from em_eval.training.setup.config import TrainingConfigError, load_recipe
from em_eval.training.setup.prompts import read_labels

MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]).bool()


def _inputs(texts: list[str], group: int, **extra) -> RewardInputs:
    g = torch.Generator().manual_seed(3)
    b = len(texts)
    return RewardInputs(texts=texts, log_probs=-torch.rand(b, 5, generator=g), entropies=torch.rand(b, 5, generator=g),
                        mask=MASK[:b], group_size=group, seed=0, step=0, rank=0, **extra)


def test_token_self_certainty_is_the_kl_from_uniform() -> None:
    logits = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0)) * 3
    p = torch.softmax(logits / 0.7, -1).double()
    brute = (1 / 7 * torch.log((1 / 7) / p)).sum(-1)
    torch.testing.assert_close(token_self_certainty(logits, 0.7).double(), brute, rtol=1e-5, atol=1e-6)
    assert token_self_certainty(torch.zeros(1, 4)).abs().max() < 1e-6  # uniform: no certainty


def test_self_certainty_and_last_third_rewards_match_brute_force() -> None:
    certainty = torch.rand(4, 5, generator=torch.Generator().manual_seed(9))
    x = _inputs(["a"] * 4, 2, self_certainties=certainty)
    reward = self_certainty_reward(x)
    rent = last_third_entropy_reward(x)
    for row in range(4):
        n = int(MASK[row].sum())
        assert reward[row].item() == pytest.approx(certainty[row, :n].mean().item(), rel=1e-6)
        last = x.entropies[row, :n][-(n // 3):] if n >= 3 else x.entropies[row, :n]  # array_split: last is n // 3
        assert rent[row].item() == pytest.approx(-last.mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="needs the rollouts' self-certainties"):
        self_certainty_reward(_inputs(["a"], 1))
    assert get_reward("self_certainty") is self_certainty_reward and get_reward("majority") is majority_reward


def test_majority_reward_and_pseudo_label_accuracy() -> None:
    texts = ["so \\boxed{2}", "\\boxed{2.0}", "\\boxed{3}", "no answer", "\\boxed{1}", "\\boxed{5}"]
    x = _inputs(texts[:4], 4)
    assert majority_reward(x).tolist() == [1.0, 1.0, 0.0, 0.0]  # 2 and 2.0 are one cluster
    assert majority_reward(RewardInputs(**{**x.__dict__, "texts": texts[4:6], "group_size": 2,
                                           "mask": MASK[:2]})).tolist() == [1.0, 0.0]  # a tie: the first cluster
    assert pseudo_label_accuracy(texts[:4] + texts[:4], 4, ["2"] * 4 + ["3"] * 4) == 0.5
    assert pseudo_label_accuracy(texts[:4], 4, [None] * 4) is None


def test_forking_mask_keeps_the_highest_entropy_share() -> None:
    entropies = torch.tensor([[0.1, 0.9, 0.5, 7.0], [0.3, 0.8, 0.2, 0.4]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool()  # 7.0 is padding: never kept
    assert forking_mask(entropies, mask, 0.3).tolist() == [[False, True, False, False], [False, True, False, False]]
    assert torch.equal(forking_mask(entropies, mask, 1.0), mask)
    with pytest.raises(ValueError, match=r"forking_share must be in \(0, 1\]"):
        forking_mask(entropies, mask, 0.0)


def test_control_recipes_load(tmp_path) -> None:
    rewards = {name: (load_recipe(name).reward, load_recipe(name).forking_share)
               for name in ("intuitor", "rent", "ttrl", "forking_tokens")}
    assert rewards == {"intuitor": ("self_certainty", 1.0), "rent": ("last_third_entropy", 1.0),
                       "ttrl": ("majority", 1.0), "forking_tokens": ("token", 0.2)}
    with pytest.raises(TrainingConfigError, match=r"forking_share must be in \(0, 1\]"):
        load_recipe("forking_tokens", ["forking_share=1.5"])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"problem": "a", "answer": 12}\n\n{"problem": "b"}\n{"problem": "c", "answer": " "}\n')
    assert read_labels(prompts, "answer") == ["12", None, None]
    assert read_labels(prompts, "solution") == [None] * 3
