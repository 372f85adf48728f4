"""The follow-up controls in a real (one-step) EM-RL run of the tiny llama: the self-certainty reward
with forking-token updates, and majority pseudo-labels logging their accuracy against the prompts' answers."""

from __future__ import annotations

import pytest

from em_eval.cli import main
from training_runs import metrics, tiny_args


def test_self_certainty_with_forking_tokens_and_majority_labels(tiny_llama_dir, tmp_path) -> None:
    common = ["max_steps=1", "updates_per_step=1", "rollouts_per_prompt=2"]
    out = tmp_path / "sc"
    assert main(["train", "self_certainty", *tiny_args(tiny_llama_dir, out, *common, "forking_tokens=0.2")]) == 0
    (row,) = metrics(out)
    # a random 2-layer model is close to uniform: small positive self-certainty; the forking tokens are its
    # most uncertain ones (nearly all alike here)
    assert 0 < row["reward"] < 1 and row["forking_token_entropy"] >= row["entropy"]

    out = tmp_path / "ttrl"
    assert main(["train", "ttrl_majority", *tiny_args(tiny_llama_dir, out, *common)]) == 0
    (row,) = metrics(out)
    # the random model writes no \boxed answer: no pseudo-label, reward 0, and every 0 agrees with the truth
    assert (row["reward"], row["pseudo_label_accuracy"], row["pseudo_reward_accuracy"]) == pytest.approx((0, 0, 1))
