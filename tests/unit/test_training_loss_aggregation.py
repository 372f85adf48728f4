"""EM-RL's loss aggregation against the paper's verl fork, whose update_policy was run on fixed tensors
(``tests/data/em_rl_fork_loss_aggregation.json``: inputs, the fork's gradients, commit and command)."""

from __future__ import annotations

import json
import math
import types
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from em_eval.training import objective
from em_eval.training.objective import aggregate_tokens
from em_eval.training.run.loop import em_rl_update
from em_eval.training.run.rollout import Rollouts
from em_eval.training.setup.config import EmRlConfig, TrainingConfigError

ORACLE = json.loads((Path(__file__).parents[1] / "data" / "em_rl_fork_loss_aggregation.json").read_text())


class TableModel(torch.nn.Module):
    """A policy whose logits are a parameter table, one row per sequence (the id in ``input_ids[:, 0]``)."""

    def __init__(self, logits: list) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_to_keep=0, use_cache=False):
        return types.SimpleNamespace(logits=self.logits[input_ids[:, 0]][:, -logits_to_keep:])


class RecordingSGD(torch.optim.SGD):
    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.grads: list[torch.Tensor] = []

    def step(self, closure=None):
        self.grads.append(self.param_groups[0]["params"][0].grad.detach().clone())
        return super().step(closure)


def _update(monkeypatch: pytest.MonkeyPatch, micro: int, loss_agg: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    x = ORACLE["inputs"]
    case = ORACLE["cases"][0]
    monkeypatch.setitem(objective.REWARDS, "fixed", lambda _: torch.tensor(x["rewards"]))
    ids, attention = torch.tensor(x["input_ids"]), torch.tensor(x["attention_mask"])
    batch = Rollouts(ids, attention, attention[:, x["prompt_len"] :].bool(), x["prompt_len"], [""] * len(ids))
    policy = TableModel(x["logits"])
    optimizer = RecordingSGD(policy.parameters(), lr=case["lr"])
    config = EmRlConfig(
        prompts="unused.jsonl",
        reward="fixed",
        rollouts_per_prompt=x["group_size"],
        updates_per_step=len(ids) // case["ppo_mini_batch_size"],
        micro_batch_size=micro,
        clip_ratio=x["clip_ratio"],
        entropy_coeff=case["entropy_coeff"],
        kl_coef=case["kl_loss_coef"],
        max_grad_norm=0.0,
        temperature=x["temperature"],
        loss_agg=loss_agg,
    )
    try:
        em_rl_update(Accelerator(cpu=True), policy, TableModel(x["ref_logits"]), optimizer, batch, config, step=0)
    finally:
        AcceleratorState._reset_state()
    return optimizer.grads, policy.logits.detach()


@pytest.mark.parametrize("case", ORACLE["cases"], ids=lambda c: f"micro{c['ppo_micro_batch_size_per_gpu']}")
def test_em_rl_update_matches_the_forks_per_micro_batch_token_mean(case: dict, monkeypatch) -> None:
    grads, after = _update(monkeypatch, case["ppo_micro_batch_size_per_gpu"], "micro_batch_token_mean")
    assert len(grads) == len(case["grads_per_mini_batch"]) == 2
    for ours, fork in zip(grads, case["grads_per_mini_batch"]):
        torch.testing.assert_close(ours, torch.tensor(fork), atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(after, torch.tensor(case["logits_after"]), atol=2e-6, rtol=1e-5)


def test_the_mini_batch_token_mean_is_the_forks_update_with_one_micro_batch(monkeypatch) -> None:
    one_micro_batch = next(c for c in ORACLE["cases"] if c["ppo_micro_batch_size_per_gpu"] == c["ppo_mini_batch_size"])
    per_sequence = next(c for c in ORACLE["cases"] if c["ppo_micro_batch_size_per_gpu"] == 1)
    grads, _ = _update(monkeypatch, 1, "mini_batch_token_mean")
    for ours, fork in zip(grads, one_micro_batch["grads_per_mini_batch"]):
        torch.testing.assert_close(ours, torch.tensor(fork), atol=2e-6, rtol=1e-5)
    assert not torch.allclose(grads[0], torch.tensor(per_sequence["grads_per_mini_batch"][0]), atol=1e-3), (
        "response lengths differ, so the two aggregations weight tokens differently"
    )


def test_aggregate_tokens_weights_by_hand() -> None:
    values = torch.tensor([[2.0, 9.0, 9.0], [1.0, 1.0, 1.0]])  # a 1-token and a 3-token response
    mask = torch.tensor([[True, False, False], [True, True, True]])
    tokens = mask.sum()
    micro = [
        aggregate_tokens(
            values[i : i + 1], mask[i : i + 1], mode="micro_batch_token_mean", mini_rows=2, mini_tokens=tokens
        )
        for i in range(2)
    ]
    assert sum(micro).item() == pytest.approx((2.0 + 1.0) / 2)  # each sequence's mean, sequences averaged
    mini = [
        aggregate_tokens(
            values[i : i + 1], mask[i : i + 1], mode="mini_batch_token_mean", mini_rows=2, mini_tokens=tokens
        )
        for i in range(2)
    ]
    assert sum(mini).item() == pytest.approx((2.0 + 3.0) / 4)  # every token the same weight
    whole = aggregate_tokens(values, mask, mode="micro_batch_token_mean", mini_rows=2, mini_tokens=tokens)
    assert whole.item() == pytest.approx(5.0 / 4), "one micro-batch: the two coincide"
    with pytest.raises(TrainingConfigError, match="loss_agg must be one of"):
        EmRlConfig(prompts="unused.jsonl", loss_agg="seq_mean")


def test_forking_tokens_alone_carry_the_policy_gradient(monkeypatch) -> None:
    """forking_tokens=0.2 without KL and entropy terms: the gradient reaches exactly the logits that
    predicted the 20% highest-entropy response tokens of the batch (found here by sorting by hand)."""
    x = ORACLE["inputs"]
    monkeypatch.setitem(objective.REWARDS, "fixed", lambda _: torch.tensor(x["rewards"]))
    ids, attention = torch.tensor(x["input_ids"]), torch.tensor(x["attention_mask"])
    p = x["prompt_len"]
    mask = attention[:, p:].bool()
    batch = Rollouts(ids, attention, mask, p, [""] * len(ids))
    policy = TableModel(x["logits"])
    optimizer = RecordingSGD(policy.parameters(), lr=0.1)
    config = EmRlConfig(
        prompts="unused.jsonl",
        reward="fixed",
        rollouts_per_prompt=x["group_size"],
        updates_per_step=1,
        micro_batch_size=3,
        entropy_coeff=0.0,
        kl_coef=0.0,
        max_grad_norm=0.0,
        forking_tokens=0.2,
    )
    try:
        stats = em_rl_update(Accelerator(cpu=True), policy, None, optimizer, batch, config, step=0)
    finally:
        AcceleratorState._reset_state()
    predicting = torch.tensor(x["logits"])[:, p - 1 : -1]  # the logits that predicted each response token
    probs = torch.softmax(predicting.double(), -1)
    entropy = -(probs * probs.log()).sum(-1)
    valid = [(entropy[r, t].item(), r, t) for r in range(len(ids)) for t in range(mask.shape[1]) if mask[r, t]]
    forking = {(r, t) for _, r, t in sorted(valid, key=lambda v: -v[0])[: math.ceil(0.2 * len(valid))]}
    touched = {
        (r, t)
        for r in range(len(ids))
        for t in range(mask.shape[1])
        if optimizer.grads[0][r, p - 1 + t].abs().sum() > 0
    }
    assert touched == forking and len(forking) < len(valid)
    assert stats["forking_token_entropy"] > stats["entropy"]
