"""Per-sample confidence signals: each checked against a from-scratch computation on fixed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from em_eval.backends.hf_processor import EntropyMinimizationProcessor
from em_eval.em_inf.core import entropy
from em_eval.em_inf.settings import EmSettings
from em_eval.em_inf.signals import BUFFER_ENV, adjusted_signals, buffer_tokens, sequence_signals, token_signals
from em_eval.records import SIGNAL_FIELDS, signal_record, telemetry_record


def fixed_logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    z = torch.randn(5, 40, generator=g) * 2
    z[1, 30:] = float("-inf")  # masked entries: left out of the uniform reference
    z[2, 5:] = float("-inf")  # fewer finite entries than DeepConf's k = 20
    z[3, 7] = float("nan")  # not a distribution
    z[4] *= 30  # nearly one-hot
    return z


def reference_token(row: np.ndarray) -> tuple[float, float]:
    """Self-certainty KL(U||p) over the finite entries and DeepConf's -mean top-20 log p, by hand."""
    if np.isnan(row).any() or not np.isfinite(row).any():
        return math.nan, math.nan
    finite = row[np.isfinite(row)].astype(np.float64)
    log_p = finite - math.log(np.exp(finite - finite.max()).sum()) - finite.max()
    kl = sum((1 / len(finite)) * (math.log(1 / len(finite)) - lp) for lp in log_p)
    top = sorted(log_p.tolist(), reverse=True)[:20]
    top += [-1e4] * (20 - len(top))  # absent entries (p = 0) enter as log p = -1e4
    return kl, -sum(top) / 20


def reference_top1(row: np.ndarray) -> float:
    """The largest softmax probability, by hand (float64, masked entries have p = 0)."""
    if np.isnan(row).any() or not np.isfinite(row).any():
        return math.nan
    weights = [math.exp(v) for v in row[np.isfinite(row)].astype(np.float64)]  # no shift: these logits stay < 700
    return max(weights) / sum(weights)


@pytest.mark.parametrize("host_reads", [False, True])
def test_token_signals_match_hand_computation(host_reads: bool) -> None:
    z = fixed_logits()
    certainty, conf, top1 = token_signals(z, host_reads)
    for i, row in enumerate(z.numpy()):
        want_kl, want_conf = reference_token(row)
        if math.isnan(want_kl):
            assert math.isnan(certainty[i]) and math.isnan(conf[i]) and math.isnan(top1[i])
        else:
            assert certainty[i].item() == pytest.approx(want_kl, rel=1e-5, abs=1e-5)
            assert conf[i].item() == pytest.approx(want_conf, rel=1e-5)
            assert top1[i].item() == pytest.approx(reference_top1(row), rel=1e-5)
    assert certainty[4] > certainty[0] and conf[4] > conf[0]  # the peaked row is the more certain one
    assert top1[4] > 0.9 > top1[0] > 1 / 40  # the peaked row; any row is above the uniform 1/V


def reference_sequence(tokens: np.ndarray, window: int) -> list[float]:
    """SIGNAL_FIELDS by loops: array_split thirds, linear percentiles, stride-1 windows."""
    n = len(tokens)
    out = [float(n)]
    for col in (0, 1):
        out += [
            float(np.nanmean(part)) if np.isfinite(part).any() else math.nan
            for part in np.array_split(tokens[:, col], 3)
        ]
    for col in (0, 1):
        out += [float(np.nanpercentile(tokens[:, col], q)) for q in (10, 50, 90, 99)]
    for col in (2, 3):
        c = tokens[:, col]
        w = min(window, n)
        groups = sorted(float(np.nanmean(c[i : i + w])) for i in range(n - w + 1) if np.isfinite(c[i : i + w]).any())
        bottom = groups[: max(1, math.ceil(0.1 * len(groups)))]
        out += [float(np.nanmean(c)), float(np.nanmean(c[n - w :])), sum(bottom) / len(bottom), groups[0]]
    return out


@pytest.mark.parametrize("n, window", [(23, 5), (4, 8), (1, 3), (30, 1)])
def test_sequence_signals_match_hand_computation(n: int, window: int) -> None:
    rng = np.random.default_rng(n)
    tokens = rng.uniform(0, 3, size=(n, 4)).astype(np.float32)
    if n > 4:
        tokens[n // 2] = np.nan  # a token whose logits were not finite
    got = sequence_signals(torch.from_numpy(tokens), window=window).tolist()
    want = reference_sequence(tokens.astype(np.float64), window)
    assert len(got) == len(SIGNAL_FIELDS) == len(want)
    for name, g, w in zip(SIGNAL_FIELDS, got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-5, abs=1e-6, nan_ok=True), name


def test_rent_third_is_the_last_third_and_empty_responses_are_nan() -> None:
    tokens = torch.zeros(7, 4)
    tokens[:, 0] = torch.tensor([1.0, 1, 1, 2, 2, 4, 4])  # thirds of 3, 2, 2 tokens
    record = signal_record(sequence_signals(tokens, window=2).tolist())
    assert record["entropy_before_thirds"] == [1.0, 2.0, 4.0]
    empty = signal_record(sequence_signals(torch.zeros(0, 4)).tolist())
    assert empty["signal_tokens"] == 0 and empty["entropy_after_thirds"] == [None] * 3
    assert empty["conf_before"] == {"mean": None, "tail": None, "bottom10": None, "lowest": None}


def test_telemetry_record_carries_the_signals() -> None:
    sums = {
        "tokens": 4.0,
        "entropy_before": 4.0,
        "entropy_after": 2.0,
        "steps": 3.0,
        "adjusted": 2.0,
        "self_certainty_before": 8.0,
        "self_certainty_after": 10.0,
        "top1_before": 2.0,
        "top1_after": 3.0,
        "nonfinite": 0.0,
    }
    values = sequence_signals(torch.arange(16.0).reshape(4, 4), window=2).tolist()
    record = telemetry_record("em_inf", 4, sums, 1.0, 1, values)
    assert (record["self_certainty_before"], record["self_certainty_after"]) == (2.0, 2.5)
    assert (record["top1_before"], record["top1_after"]) == (0.5, 0.75)
    assert record["signal_tokens"] == 4 and record["entropy_before_pct"]["p50"] == 6.0
    assert record["conf_after"] == {"mean": 9.0, "tail": 13.0, "bottom10": 5.0, "lowest": 5.0}  # 3, 7, 11, 15
    assert "signal_tokens" not in telemetry_record("off", 0, None, 1.0, 1, values)  # nothing measured


def test_buffer_budget_and_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUFFER_ENV, "1")
    assert buffer_tokens(8) == 2**20 // (8 * 4 * 2)
    monkeypatch.setenv(BUFFER_ENV, "0")
    assert buffer_tokens(2) == 0
    for bad, match in (("lots", "must be a number of MiB"), ("-1", "must be >= 0")):
        monkeypatch.setenv(BUFFER_ENV, bad)
        with pytest.raises(ValueError, match=match):
            buffer_tokens(1)


def _nan(value):
    """A record value with None (a field without tokens) as NaN, for pytest.approx."""
    if isinstance(value, dict):
        return {k: _nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan(v) for v in value]
    return math.nan if value is None else value


@pytest.mark.parametrize(
    "settings",
    [EmSettings(), EmSettings(mode="off"), EmSettings(mode="adaptive_temp")],
    ids=["em_inf", "off", "adaptive_temp"],
)
def test_hf_processor_signals_equal_the_pure_functions_on_its_steps(settings: EmSettings) -> None:
    """Three rows over five steps; row 1 emits the stop token (id 0) after its second step."""
    g = torch.Generator().manual_seed(5)
    steps = [torch.randn(3, 40, generator=g) * s for s in (0.3, 1.0, 3.0, 0.5, 2.0)]
    proc = EntropyMinimizationProcessor(settings, stop_token_ids=[0], compile=False)
    ids = torch.ones(3, 1, dtype=torch.long)
    for i, z in enumerate(steps):
        ids = torch.cat([ids, torch.tensor([[1], [0 if i == 2 else 1], [1]])], 1) if i else ids
        proc(ids, z.clone())
    records = proc.row_telemetry(1.0)
    for row, record in enumerate(records):
        kept = steps if row != 1 else steps[:2]
        per_token = []
        for z in kept:
            after, stats = settings.transform(z[row : row + 1].clone())
            per_token.append(
                [
                    stats["entropy_before"][0],
                    stats["entropy_after"][0],
                    token_signals(z[row : row + 1])[1][0],
                    token_signals(after)[1][0],
                ]
            )
        want = signal_record(sequence_signals(torch.tensor(per_token).half()).tolist())
        assert record["signal_tokens"] == len(kept)
        for key, value in want.items():
            assert _nan(record[key]) == pytest.approx(_nan(value), rel=1e-5, nan_ok=True), key
        certainty = [token_signals(z[row : row + 1])[0][0].item() for z in kept]
        assert record["self_certainty_before"] == pytest.approx(sum(certainty) / len(kept), rel=1e-5)
        for when, logits in (
            ("before", [z[row] for z in kept]),
            ("after", [settings.transform(z[row : row + 1].clone())[0][0] for z in kept]),
        ):
            top1 = [reference_top1(x.double().numpy()) for x in logits]  # from scratch, per token
            assert record[f"top1_{when}"] == pytest.approx(sum(top1) / len(kept), rel=1e-5), when
        first = np.array_split(np.array([entropy(z[row : row + 1]).item() for z in kept]), 3)[0]
        assert record["entropy_before_thirds"][0] == pytest.approx(first.mean(), rel=1e-3)
    if settings.mode == "off":
        assert all(r["conf_after"] == r["conf_before"] for r in records)
    else:
        assert any(r["conf_after"]["mean"] > r["conf_before"]["mean"] for r in records)


def test_adjusted_signals_recompute_only_the_rows_the_method_changed() -> None:
    before_logits = fixed_logits()
    out = before_logits * 2  # every row changed, but only rows 0 and 2 report it
    adjusted = torch.tensor([True, False, True, False, False])
    before = token_signals(before_logits)
    full = token_signals(out)
    for host_reads in (False, True):
        after = adjusted_signals(out, before, adjusted, host_reads)
        for got, new, old in zip(after, full, before):
            torch.testing.assert_close(got, torch.where(adjusted, new, old), equal_nan=True)
    assert adjusted_signals(out, before, None) is before  # plain decoding
    assert adjusted_signals(out, before, torch.zeros(5, dtype=torch.bool), True) is before
