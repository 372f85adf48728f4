"""Replaying EM-INF on logits: what changed, and how much at a sampling temperature."""

from __future__ import annotations

import pytest
import torch

from em_eval.em_inf.settings import EmSettings
from em_eval.em_inf.trace import replay


def _logits() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    z = torch.randn(3, 50)
    z[0, 7] += 30  # confident: below the entropy threshold, left alone
    z[2] *= 0.2  # nearly flat: adjusted the most
    return z, z.argmax(-1)


def test_confident_rows_are_left_alone_and_uncertain_ones_sharpened() -> None:
    z, picked = _logits()
    out = replay(z, picked, EmSettings(), temperature=1.0)
    assert out["adjusted"].tolist() == [False, True, True]
    assert out["tv"][0] == 0 and out["p_after"][0] == out["p_before"][0]
    assert (out["entropy_after"][1:] < out["entropy_before"][1:]).all()
    assert (out["p_after"][1:] > out["p_before"][1:]).all(), "the argmax gains probability"


def test_at_a_low_temperature_the_change_to_sampling_is_small() -> None:
    z, picked = _logits()
    hot, cold = (replay(z, picked, EmSettings(), temperature=t)["tv"] for t in (1.0, 0.1))
    assert (cold[1:] < hot[1:]).all()


def test_plain_decoding_replays_as_unchanged_and_a_zero_temperature_is_refused() -> None:
    z, picked = _logits()
    out = replay(z, picked, EmSettings(mode="off"), temperature=0.7)
    assert not out["adjusted"].any() and torch.equal(out["entropy_before"], out["entropy_after"])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        replay(z, picked, EmSettings(), temperature=0.0)
