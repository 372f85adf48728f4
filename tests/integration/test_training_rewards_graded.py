"""SC-RL's reward with the real math grader (its sympy worker runs in a process)."""

from __future__ import annotations

import pytest
import torch

from em_eval.tasks.math.grade import extract_answer, is_equiv
from em_eval.training.objective import RewardInputs, self_consistency_reward


def test_self_consistency_reward_counts_equivalent_answers_in_each_group() -> None:
    texts = [
        "so \\boxed{4}",
        "\\boxed{ 4 }",
        "no answer",
        "\\boxed{5}",
        "\\boxed{\\frac{1}{2}}",
        "\\boxed{\\frac{1}{2}}",
        "\\boxed{\\frac{1}{2}}",
        "\\boxed{x}",
    ]
    x = RewardInputs(
        texts=texts,
        log_probs=torch.zeros(8, 1),
        entropies=torch.zeros(8, 1),
        mask=torch.ones(8, 1, dtype=torch.bool),
        group_size=4,
        seed=0,
        step=0,
        rank=0,
    )
    assert self_consistency_reward(x).tolist() == pytest.approx([0.5, 0.5, 0.25, 0.25, 0.75, 0.75, 0.75, 0.25])


def test_self_consistency_reward_matches_brute_force_with_the_installed_grader() -> None:
    extract, equiv = extract_answer, is_equiv
    texts = ["\\boxed{2}", "\\boxed{2.0}", "The answer is \\boxed{3}", "nothing", "\\boxed{7}", "\\boxed{7}"]
    x = RewardInputs(
        texts=texts,
        log_probs=torch.zeros(6, 1),
        entropies=torch.zeros(6, 1),
        mask=torch.ones(6, 1, dtype=torch.bool),
        group_size=3,
        seed=0,
        step=0,
        rank=0,
    )
    answers = [extract(t) for t in texts]
    brute = []
    for i, a in enumerate(answers):
        group = answers[(i // 3) * 3 : (i // 3) * 3 + 3]
        brute.append(1 / 3 if a is None else sum(b is not None and (b == a or equiv(a, b)) for b in group) / 3)
    assert self_consistency_reward(x).tolist() == pytest.approx(brute)
