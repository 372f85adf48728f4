"""The follow-up methods' EM-RL controls on hand-made inputs: self-certainty (Intuitor), RENT's
last-third entropy, TTRL majority pseudo-labels with their accuracy, forking-token masks, their recipes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from em_eval.training.objective import (
    RewardInputs,
    forking_token_mask,
    get_reward,
    last_third_entropy_reward,
    majority_vote,
    score_rollouts,
    self_certainty_reward,
    token_self_certainty,
)
from em_eval.training.setup.config import TrainingConfigError, load_recipe
from em_eval.training.setup.prompts import read_labels


def _inputs(texts: list[str], group: int, mask: list[list[int]] | None = None, **kw) -> RewardInputs:
    b = len(texts)
    g = torch.Generator().manual_seed(3)
    return RewardInputs(
        texts=texts,
        log_probs=-torch.rand(b, 6, generator=g),
        entropies=torch.rand(b, 6, generator=g) * 3,
        mask=torch.tensor(mask or [[1] * 6] * b).bool(),
        group_size=group,
        seed=0,
        step=0,
        rank=0,
        **kw,
    )


def test_self_certainty_is_the_kl_from_uniform() -> None:
    logits = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0)) * 3
    for t in (1.0, 0.6):
        p = torch.softmax(logits.double() / t, -1)
        brute = (1 / 7 * torch.log((1 / 7) / p)).sum(-1)  # KL(U || p)
        assert torch.allclose(token_self_certainty(logits, t).double(), brute, atol=1e-5)
    assert token_self_certainty(torch.zeros(4, 9)).abs().max() < 1e-6  # uniform: no certainty
    assert (token_self_certainty(logits) > 0).all()


def test_self_certainty_reward_averages_the_response_tokens() -> None:
    mask = [[1, 1, 1, 0, 0, 0], [1] * 6]
    certainty = torch.arange(12.0).view(2, 6)
    x = _inputs(["a", "b"], 2, mask, self_certainties=certainty)
    assert self_certainty_reward(x).tolist() == pytest.approx([1.0, 8.5])
    assert get_reward("self_certainty") is self_certainty_reward
    with pytest.raises(ValueError, match="needs per-token self-certainties"):
        self_certainty_reward(_inputs(["a", "b"], 2, mask))


def test_last_third_entropy_reward_matches_brute_force() -> None:
    mask = [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0], [1, 0, 0, 0, 0, 0], [0] * 6, [1] * 6, [1, 1, 0, 0, 0, 0]]
    x = _inputs(["t"] * 6, 2, mask)
    got = last_third_entropy_reward(x).tolist()
    for row, m in enumerate(mask):
        n = sum(m)
        k = math.ceil(n / 3)
        tail = x.entropies[row, n - k : n].tolist()
        assert got[row] == pytest.approx(-sum(tail) / k if n else 0.0, abs=1e-6), (row, n, k)


def test_majority_vote_rewards_the_pseudo_label_and_logs_its_accuracy() -> None:
    texts = [
        "\\boxed{4}",
        "so \\boxed{4}",
        "\\boxed{5}",
        "no answer",  # majority 4 (right)
        "\\boxed{7}",
        "\\boxed{8}",
        "\\boxed{8}",
        "\\boxed{7}",  # tie: 7, seen first (wrong)
        "none",
        "nothing",
        "no",
        "still none",
    ]  # no answer at all
    x = _inputs(texts, 4, labels=["4", "8", "3"])
    rewards, metrics = majority_vote(x)
    assert rewards.tolist() == [1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    # groups: right, wrong, no pseudo-label; rollouts rewarded as the truth would: 4 + 0 + 4 of 12
    assert metrics == pytest.approx({"pseudo_label_accuracy": 1 / 3, "pseudo_reward_accuracy": 8 / 12})
    unlabelled = _inputs(texts, 4)
    assert score_rollouts("majority", unlabelled)[1] == {}
    assert torch.equal(score_rollouts("majority", unlabelled)[0], rewards)
    assert get_reward("majority")(unlabelled).tolist() == rewards.tolist()
    assert score_rollouts("token", unlabelled)[1] == {}


def test_forking_token_mask_keeps_the_highest_entropy_share() -> None:
    entropy = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.8, 0.2, 5.0, 0.5]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()  # 5.0 is padding: never chosen
    # 6 valid tokens: 0.2 keeps ceil(1.2) = 2 of them, 0.4 keeps 3
    assert forking_token_mask(entropy, mask, 0.2).tolist() == [[False, True, False, False], [True, False, False, False]]
    assert forking_token_mask(entropy, mask, 0.4).tolist() == [[False, True, True, False], [True, False, False, False]]
    ties = forking_token_mask(torch.ones(1, 4), torch.ones(1, 4).bool(), 0.5)
    assert ties.tolist() == [[True, True, False, False]]  # ties go to the earlier token
    with pytest.raises(ValueError, match="share must be in"):
        forking_token_mask(entropy, mask, 0.0)


def test_control_recipes_and_labels(tmp_path) -> None:
    recipes = {name: load_recipe(name) for name in ("self_certainty", "rent", "ttrl_majority", "forking_tokens")}
    assert {n: (c.reward, c.forking_tokens) for n, c in recipes.items()} == {
        "self_certainty": ("self_certainty", 0.0),
        "rent": ("last_third_entropy", 0.0),
        "ttrl_majority": ("majority", 0.0),
        "forking_tokens": ("token", 0.2),
    }
    for config in recipes.values():
        get_reward(config.reward)
    labels = read_labels(Path(recipes["ttrl_majority"].prompts))
    assert labels is not None and len(labels) == 16 and labels[0] == "42"
    partial = tmp_path / "p.jsonl"
    partial.write_text('{"problem": "a", "answer": 3}\n\n{"problem": "b"}\n')
    assert read_labels(partial) is None  # only a file labelled throughout is scored
    partial.write_text('{"problem": "a", "answer": 3}\n\n{"problem": "b", "answer": "x"}\n')
    assert read_labels(partial) == ["3", "x"]
    with pytest.raises(TrainingConfigError, match="forking_tokens must be in"):
        load_recipe("forking_tokens", ["forking_tokens=1.0"])
