"""Per-sample confidence signals from the next-token distributions a backend already computes.

Per token (:func:`token_signals`, on ``[rows, vocab]`` logits at temperature 1), on the model's own
distribution ``p`` (``_before``) and, under EM-INF or adaptive temperature, on the adjusted one
(``_after``; equal to ``_before`` for plain decoding):

* ``self_certainty`` (Intuitor, 2505.19590): ``KL(U || p) = -log V - mean_v log p_v`` over the
  ``V`` entries with a finite logit;
* ``conf`` (DeepConf, 2508.15260): ``-mean`` of the :data:`CONF_TOP_K` largest ``log p`` (higher:
  more peaked);
* ``top1``: the top-1 probability mass ``max_v p_v`` (Yue et al. 2504.13837 and the follow-ups track
  its mean over a response: how much the model concentrates on its first choice).

Per response (:func:`sequence_signals`, on its tokens' :data:`TOKEN_FIELDS`, sync-free on any
device): mean entropy of each third of the response (RENT, 2505.22660, uses the last third;
``numpy.array_split`` sizes, earlier thirds one token longer), entropy percentiles, and DeepConf's
group confidences over sliding windows of ``window`` tokens (stride 1; a response shorter than the
window is one window): the lowest window mean, the mean of the lowest 10% of window means (at least
one), and the tail (the mean of the last ``window`` tokens). NaN tokens (logits that were not
finite) are left out of every mean.
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import torch

from em_eval.records import CONF_FIELDS, PERCENTILES, SIGNAL_FIELDS, TOKEN_FIELDS

__all__ = [
    "SIGNAL_FIELDS",
    "TOKEN_FIELDS",
    "adjusted_signals",
    "buffer_tokens",
    "sequence_signals",
    "token_signals",
    "with_signals",
]

CONF_TOP_K = 20  # DeepConf's k
CONF_WINDOW = 2048  # DeepConf's group (and tail) size, in tokens
BOTTOM_SHARE = 0.1  # DeepConf's bottom-10% group confidence
BUFFER_ENV = "EM_EVAL_SIGNAL_MB"
DEFAULT_BUFFER_MB = 256
MAX_SIGNAL_TOKENS = 32768  # per-response buffer length, whatever the budget allows


def token_signals(logits: torch.Tensor, host_reads: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(self_certainty, conf, top1)`` per row of ``[rows, vocab]`` logits (NaN for rows without a
    finite logit, or with a NaN or +inf one). Rows with ``-inf`` (masked) entries take a slower
    path: for all rows, reading nothing on the host, or with ``host_reads`` (the CPU) only for
    the rows that have such entries, found by one host read."""
    z = logits.float()
    top = z.amax(-1)
    valid = torch.isfinite(top)  # amax carries a NaN through
    lse = (z - top[:, None]).exp_().sum(-1).log_() + top  # faster than torch.logsumexp on the CPU
    total = z.sum(-1)
    count = torch.full_like(lse, z.shape[-1])
    masked = z.amin(-1) == float("-inf")
    rows = masked.nonzero()[:, 0] if host_reads else None
    if rows is None or len(rows):
        part = z if rows is None else z.index_select(0, rows)
        kept = part != float("-inf")
        sums, counts = torch.where(kept, part, 0.0).sum(-1), kept.sum(-1).float()
        if rows is None:
            total, count = torch.where(masked, sums, total), torch.where(masked, counts, count)
        else:
            total, count = total.index_copy(0, rows, sums), count.index_copy(0, rows, counts)
    certainty = -count.clamp_min(1).log() - (total / count.clamp_min(1) - lse)
    k = min(CONF_TOP_K, z.shape[-1])
    conf = -(z.topk(k, -1).values - lse[:, None]).clamp_min(-1e4).mean(-1)  # log p = -inf (masked) as -1e4
    top1 = (top - lse).exp()
    nan = torch.full_like(lse, float("nan"))
    return torch.where(valid, certainty, nan), torch.where(valid, conf, nan), torch.where(valid, top1, nan)


def adjusted_signals(
    out: torch.Tensor, before: tuple[torch.Tensor, ...], adjusted: torch.Tensor | None, host_reads: bool = False
) -> tuple[torch.Tensor, ...]:
    """:func:`token_signals` of the transformed logits ``out``: ``before`` for the rows the method
    left alone (``adjusted`` False; all of them without ``adjusted``, plain decoding). With
    ``host_reads`` only the adjusted rows are computed."""
    if adjusted is None:
        return before
    if not host_reads:
        return tuple(torch.where(adjusted, a, b) for a, b in zip(token_signals(out), before))
    rows = adjusted.nonzero()[:, 0]
    if not len(rows):
        return before
    part = token_signals(out.index_select(0, rows), True)
    return tuple(b.index_copy(0, rows, p) for b, p in zip(before, part))


def with_signals(
    stats: Mapping[str, torch.Tensor], before: tuple[torch.Tensor, ...], after: tuple[torch.Tensor, ...]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A transform's per-row ``stats`` plus ``self_certainty_{before,after}`` and ``top1_{before,after}``,
    and the rows' ``[rows, len(TOKEN_FIELDS)]`` per-token values, from :func:`token_signals` of the
    logits before and after the transform."""
    out = {
        **stats,
        "self_certainty_before": before[0],
        "self_certainty_after": after[0],
        "top1_before": before[2],
        "top1_after": after[2],
    }
    columns = {**out, "conf_before": before[1], "conf_after": after[1]}
    return out, torch.stack([columns[k].float() for k in TOKEN_FIELDS], 1)


def buffer_tokens(rows: int) -> int:
    """Tokens per response kept for :func:`sequence_signals`: ``rows`` buffers of :data:`TOKEN_FIELDS`
    in fp16 fit in ``$EM_EVAL_SIGNAL_MB`` (256), at most :data:`MAX_SIGNAL_TOKENS`; 0 turns them off."""
    raw = os.environ.get(BUFFER_ENV, str(DEFAULT_BUFFER_MB))
    try:
        budget_mb = float(raw)
    except ValueError:
        raise ValueError(f"{BUFFER_ENV}={raw!r} must be a number of MiB, e.g. {DEFAULT_BUFFER_MB}") from None
    if budget_mb < 0:
        raise ValueError(f"{BUFFER_ENV}={raw!r} must be >= 0 (0 turns the per-token signals off)")
    return min(MAX_SIGNAL_TOKENS, int(budget_mb * 2**20) // (max(rows, 1) * len(TOKEN_FIELDS) * 2))


def _nanmean(x: torch.Tensor) -> torch.Tensor:
    ok = ~torch.isnan(x)
    return torch.where(ok, x, 0.0).sum(-1) / ok.sum(-1)  # NaN when nothing is left


def _group_confidences(conf: torch.Tensor, window: int) -> list[torch.Tensor]:
    """:data:`CONF_FIELDS` of one response's per-token confidences ``[n]`` (``n`` >= 1)."""
    n = conf.shape[0]
    w = max(1, min(window, n))
    ok = ~torch.isnan(conf)
    zero = conf.new_zeros(1, dtype=torch.float64)
    sums = torch.cat([zero, torch.where(ok, conf, 0.0).double().cumsum(0)])
    counts = torch.cat([zero, ok.double().cumsum(0)])
    groups = (sums[w:] - sums[:-w]) / (counts[w:] - counts[:-w])  # NaN for a window with no token
    groups = torch.where(torch.isnan(groups), torch.inf, groups).sort().values
    low = groups[: max(1, math.ceil(BOTTOM_SHARE * groups.shape[0]))]
    bottom = torch.where(torch.isinf(low), torch.nan, low).nanmean()
    lowest = torch.where(torch.isinf(groups[0]), torch.nan, groups[0])
    tail = (sums[-1] - sums[n - w]) / (counts[-1] - counts[n - w])
    return [_nanmean(conf), tail, bottom, lowest]


def sequence_signals(tokens: torch.Tensor, window: int = CONF_WINDOW) -> torch.Tensor:
    """:data:`SIGNAL_FIELDS` of one response from its ``[n, len(TOKEN_FIELDS)]`` per-token values
    (NaN where a token was not measured); NaN for a field with no tokens. ``n`` is known on the
    host, so nothing is read back from the device."""
    x = tokens.float()
    n = x.shape[0]
    column = {name: x[:, i] for i, name in enumerate(TOKEN_FIELDS)}
    sizes = [n // 3 + (i < n % 3) for i in range(3)]
    edges = [sum(sizes[:i]) for i in range(4)]
    nan = torch.tensor(float("nan"), device=x.device)
    out = [torch.tensor(float(n), device=x.device)]
    for when in ("before", "after"):
        out += [_nanmean(column[f"entropy_{when}"][edges[i] : edges[i + 1]]) for i in range(3)]
    quantiles = torch.tensor([q / 100 for q in PERCENTILES], device=x.device)
    for when in ("before", "after"):
        out += list(torch.nanquantile(column[f"entropy_{when}"], quantiles)) if n else [nan] * len(PERCENTILES)
    for when in ("before", "after"):
        out += _group_confidences(column[f"conf_{when}"], window) if n else [nan] * len(CONF_FIELDS)
    return torch.stack([v.float().reshape(()) for v in out])
