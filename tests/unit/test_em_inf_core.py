"""EM-INF and adaptive temperature: the pure tensor core against reference implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from em_eval.em_inf.core import (
    adaptive_temperature,
    adaptive_temperature_with_stats,
    entropy,
    force_token_on_invalid_rows,
    minimize_entropy,
    minimize_entropy_with_stats,
)

PAPER = dict(threshold=0.3, kl_weight=0.05, lr=0.1, steps=3)


def reference_em_inf(row: torch.Tensor, threshold: float, kl_weight: float, lr: float, steps: int) -> torch.Tensor:
    """The paper's loop for one row: autograd + a fresh torch.optim.Adam, entropy gate before each step."""
    z0 = row.detach().double()
    p0 = torch.softmax(z0, -1)
    z = torch.nn.Parameter(z0.clone())
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            logq = torch.log_softmax(z, -1)
            q = logq.exp()
            h = -(q * logq).sum()
            if h.item() < threshold:
                break
            kl = F.kl_div(logq[None], p0[None], reduction="batchmean")
            loss = h + kl_weight * kl
            opt.zero_grad()
            loss.backward()
        opt.step()
    return z.detach()


def sampling_tv(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Total variation between the sampling distributions at ``temperature`` (per row)."""
    pa = torch.softmax(a.double() / temperature, -1)
    pb = torch.softmax(b.double() / temperature, -1)
    return 0.5 * (pa - pb).abs().sum(-1)


def peaked_logits(batch: int, vocab: int, seed: int, candidates: int = 20, scale: float = 3.0) -> torch.Tensor:
    """Realistic next-token rows: a few plausible candidates over a long flat tail."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, vocab, generator=g) * 2.0
    idx = torch.randint(0, vocab, (batch, candidates), generator=g)
    z.scatter_(1, idx, 8.0 + scale * torch.randn(batch, candidates, generator=g))
    return z


@pytest.mark.parametrize("vocab,seed", [(50, 0), (1000, 1), (32000, 2)])
def test_matches_autograd_adam_row_by_row(vocab: int, seed: int) -> None:
    z = peaked_logits(6, vocab, seed, candidates=min(20, vocab // 3))
    z = torch.cat([z, torch.randn(2, vocab) * 0.5])  # near-uniform rows too
    with torch.inference_mode():
        ours = minimize_entropy(z, **PAPER)
    ref = torch.stack([reference_em_inf(r, **PAPER) for r in z]).float()
    assert sampling_tv(ours, ref).max().item() < 1e-3
    assert not torch.equal(ours, z), "EM-INF must change high-entropy rows"


def test_matches_reference_on_qwen_vocab_in_bf16() -> None:
    z = peaked_logits(3, 151_936, seed=3).to(torch.bfloat16)
    with torch.inference_mode():
        ours = minimize_entropy(z, **PAPER)
    assert ours.dtype == torch.float32
    ref = torch.stack([reference_em_inf(r.float(), **PAPER) for r in z])
    assert sampling_tv(ours.float(), ref.float()).max().item() < 1e-3


def test_other_hyperparameters_match_reference() -> None:
    z = peaked_logits(4, 500, seed=4)
    cfg = dict(threshold=0.1, kl_weight=0.001, lr=0.05, steps=10)
    ours = minimize_entropy(z, **cfg)
    ref = torch.stack([reference_em_inf(r, **cfg) for r in z]).float()
    assert sampling_tv(ours, ref).max().item() < 1e-3


def test_entropy_decreases_and_argmax_is_preserved() -> None:
    z = peaked_logits(16, 4096, seed=5)
    out, stats = minimize_entropy_with_stats(z, **PAPER)
    assert torch.equal(out.argmax(-1), z.argmax(-1))
    active = stats.entropy_before >= PAPER["threshold"]
    assert active.any()
    assert (stats.entropy_after[active] < stats.entropy_before[active]).all()
    assert torch.allclose(stats.entropy_before, entropy(z))
    assert torch.allclose(stats.entropy_after, entropy(out), atol=1e-5)


def test_adam_moves_logits_by_about_lr_per_step() -> None:
    z = peaked_logits(2, 151_936, seed=6)
    shift = (minimize_entropy(z, **PAPER) - z).abs()
    assert shift.max().item() == pytest.approx(PAPER["steps"] * PAPER["lr"], rel=1e-2)
    assert (shift > 0.05).float().mean().item() > 0.9  # sign-like first step moves almost every logit


def test_row_below_threshold_is_returned_unchanged() -> None:
    low = torch.tensor([[20.0, 0.0, 0.0, 0.0]])
    assert entropy(low).item() < 0.3
    out, stats = minimize_entropy_with_stats(low, **PAPER)
    assert torch.equal(out, low)
    assert stats.steps.tolist() == [0]


def test_threshold_stops_a_row_midway() -> None:
    z = torch.log(torch.tensor([[0.9, 0.05, 0.03, 0.02]]))
    h0 = entropy(z).item()
    _, stats = minimize_entropy_with_stats(z, threshold=h0 - 0.05, kl_weight=0.0, lr=0.5, steps=10)
    assert 1 <= stats.steps.item() < 10
    ref = reference_em_inf(z[0], threshold=h0 - 0.05, kl_weight=0.0, lr=0.5, steps=10)
    ours = minimize_entropy(z, threshold=h0 - 0.05, kl_weight=0.0, lr=0.5, steps=10)
    assert sampling_tv(ours, ref[None].float()).item() < 1e-3


def test_rows_are_independent() -> None:
    z = torch.cat([peaked_logits(5, 2000, seed=7), torch.tensor([[9.0] + [0.0] * 1999])])
    batched = minimize_entropy(z, **PAPER)
    alone = torch.cat([minimize_entropy(row[None], **PAPER) for row in z])
    assert sampling_tv(batched, alone).max().item() < 1e-6


def test_masked_tokens_stay_masked() -> None:
    z = peaked_logits(3, 300, seed=8)
    z[:, ::3] = float("-inf")
    out = minimize_entropy(z, **PAPER)
    assert torch.isneginf(out[:, ::3]).all()
    assert torch.isfinite(out[:, 1::3]).all()
    assert not torch.isnan(out).any()


def test_nan_and_all_masked_rows_come_back_unchanged() -> None:
    z = peaked_logits(3, 100, seed=9)
    z[1, 5] = float("nan")
    z[2] = float("-inf")
    out, stats = minimize_entropy_with_stats(z, **PAPER)
    assert torch.equal(out[2], z[2])
    assert torch.isnan(out[1, 5]) and torch.equal(out[1].nan_to_num(0), z[1].nan_to_num(0))
    assert not torch.isnan(out[0]).any() and not torch.equal(out[0], z[0])
    assert stats.steps[1:].tolist() == [0, 0]


def test_runs_under_inference_mode_and_returns_float32() -> None:
    z = peaked_logits(2, 1000, seed=10).half()
    with torch.inference_mode():
        out = minimize_entropy(z, **PAPER)
    assert out.dtype == torch.float32 and out.shape == z.shape


@pytest.mark.parametrize("compact", [False, True])
def test_bf16_logits_get_the_float32_result_unrounded(compact: bool) -> None:
    z = (peaked_logits(3, 2000, seed=12) + 30).to(torch.bfloat16)  # logits near 30: a bf16 step there is 0.125
    for inplace in (False, True):
        out = minimize_entropy(z.clone(), compact=compact, inplace=inplace, **PAPER)
        assert out.dtype == torch.float32
        assert torch.equal(out, minimize_entropy(z.float(), compact=compact, **PAPER))
    scaled = adaptive_temperature(z, target_ratio=0.5)
    assert scaled.dtype == torch.float32 and torch.equal(scaled, adaptive_temperature(z.float(), target_ratio=0.5))


def test_invalid_rows_are_forced_to_their_token_and_valid_rows_kept() -> None:
    z = peaked_logits(4, 20, seed=13)
    z[1, 3], z[2, 0], z[3] = float("nan"), float("inf"), float("-inf")
    for host_reads in (True, False):
        out, invalid = force_token_on_invalid_rows(z.clone(), torch.tensor([5, 6, 7, 8]), host_reads=host_reads)
        assert invalid.tolist() == [False, True, True, True]
        assert torch.equal(out[0], z[0])
        for row, token in ((1, 6), (2, 7), (3, 8)):
            assert out[row, token] == 0 and torch.isneginf(out[row]).sum() == 19


def test_zero_steps_is_identity_and_bad_shapes_raise() -> None:
    z = peaked_logits(2, 50, seed=11)
    assert torch.equal(minimize_entropy(z, steps=0), z)
    with pytest.raises(ValueError, match=r"\[batch, vocab\]"):
        minimize_entropy(z[0])
    with pytest.raises(ValueError, match="must be >= 0"):
        minimize_entropy(z, lr=-1.0)


def reference_adaptive_temperature(
    row: torch.Tensor, target_ratio=0.85, threshold=1e-5, t_min=0.01, t_max=1.0, tol=0.1, max_iters=100
):
    """The paper's AdaptiveTemperatureProcessor for one row (float64 bisection)."""
    h0 = entropy(row[None]).item()
    if h0 <= threshold:
        return row, 1.0
    target = max(threshold, target_ratio * h0)
    lo, hi, t = t_min, t_max, 1.0
    for _ in range(max_iters):
        t = (lo + hi) / 2
        h = entropy((row / t)[None]).item()
        if abs(h - target) < tol:
            break
        if h < target:
            lo = t
        else:
            hi = t
    return row / t, t


@pytest.mark.parametrize("ratio", [0.85, 0.5, 0.1])
def test_adaptive_temperature_matches_reference(ratio: float) -> None:
    z = torch.cat([peaked_logits(6, 3000, seed=12), torch.tensor([[30.0] + [0.0] * 2999])])
    out, stats = adaptive_temperature_with_stats(z, target_ratio=ratio)
    temps = stats.temperature
    for row, o, t in zip(z, out, temps):
        ref, t_ref = reference_adaptive_temperature(row, target_ratio=ratio)
        assert t.item() == pytest.approx(t_ref, rel=1e-4, abs=1e-6)
        assert sampling_tv(o[None], ref[None], temperature=1.0).item() < 1e-4
    reached = entropy(out)
    targets = (entropy(z) * ratio).clamp(min=1e-5)
    reachable = temps > 0.0101  # below t_min the target cannot be reached; the row ends at t_min
    assert ((reached - targets).abs() < 0.1 + 1e-4)[:-1][reachable[:-1]].all()
    assert temps[-1].item() == 1.0  # the near-deterministic row is left alone


def test_adaptive_temperature_edge_rows() -> None:
    z = torch.zeros(3, 10)
    z[0, 0] = 1e4  # zero entropy: unchanged
    z[1, 3] = float("nan")
    z[2, :5] = float("-inf")
    out = adaptive_temperature(z)
    assert torch.equal(out[0], z[0])
    assert torch.isnan(out[1, 3])
    assert torch.isneginf(out[2, :5]).all() and torch.isfinite(out[2, 5:]).all()
    assert torch.equal(out.argmax(-1)[[0, 2]], z.argmax(-1)[[0, 2]])


def test_entropy_of_uniform_is_log_vocab() -> None:
    assert entropy(torch.zeros(1, 128)).item() == pytest.approx(math.log(128), rel=1e-6)


def test_compact_mode_matches_the_sync_free_path() -> None:
    z = torch.cat([peaked_logits(6, 3000, seed=13), torch.tensor([[40.0] + [0.0] * 2999]), torch.zeros(1, 3000)])
    z[-1, 7] = float("nan")
    full, full_stats = minimize_entropy_with_stats(z, **PAPER)
    compact, compact_stats = minimize_entropy_with_stats(z, **PAPER, compact=True)
    assert torch.equal(full.nan_to_num(0), compact.nan_to_num(0))
    assert torch.equal(full_stats.steps, compact_stats.steps)
    assert torch.allclose(full_stats.entropy_after, compact_stats.entropy_after, equal_nan=True)
    assert compact_stats.steps[-2:].tolist() == [0, 0]  # confident and NaN rows are skipped
    nothing, _ = minimize_entropy_with_stats(z[-2:-1], **PAPER, compact=True)
    assert torch.equal(nothing, z[-2:-1])


def test_adaptive_compact_mode_matches_the_sync_free_path_and_reports_the_reached_entropy() -> None:
    z = torch.cat([peaked_logits(6, 3000, seed=14), torch.tensor([[40.0] + [0.0] * 2999]), torch.zeros(1, 3000)])
    z[-1, 7] = float("nan")
    full, full_stats = adaptive_temperature_with_stats(z, target_ratio=0.5)
    compact, compact_stats = adaptive_temperature_with_stats(z, target_ratio=0.5, compact=True)
    assert torch.equal(full.nan_to_num(0), compact.nan_to_num(0))
    assert torch.equal(full_stats.temperature, compact_stats.temperature)
    reached = entropy(full)
    assert torch.allclose(full_stats.entropy_after[:-1], reached[:-1], atol=1e-4)
    assert torch.allclose(compact_stats.entropy_after[:-1], reached[:-1], atol=1e-4)
    assert full_stats.temperature[-2:].tolist() == [1.0, 1.0]  # confident and NaN rows are left alone
