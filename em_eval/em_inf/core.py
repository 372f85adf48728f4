"""EM-INF and adaptive temperature as pure tensor functions on ``[batch, vocab]`` logits.

No lm-eval, transformers or vLLM imports: the HF and vLLM backends both call these.
Every row is independent, everything runs under ``torch.inference_mode()`` (closed-form
gradient, no autograd), computes and returns fp32 whatever the input dtype (rounding the adjusted
logits back to bf16 would shift them by up to 0.03 at logits near 30).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8
LOG_FLOOR = -1e30  # stands in for log 0 (a -inf logit), so that 0 * log 0 terms are 0, not NaN
BISECTION_HALVINGS = 48  # after this many the fp32 interval [t_min, t_max] has collapsed

# The paper's released EM-INF script (em_methods.md section 1); EmSettings and both backends use these.
EM_THRESHOLD, EM_KL_WEIGHT, EM_LR, EM_STEPS = 0.3, 0.05, 0.1, 3
# Its adaptive-temperature baseline processor.
AT_TARGET_RATIO, AT_THRESHOLD, AT_T_MIN, AT_T_MAX, AT_TOL, AT_MAX_ITERS = 0.85, 1e-5, 0.01, 1.0, 0.1, 100


@dataclass(frozen=True)
class EmInfStats:
    """Per-row telemetry of one :func:`minimize_entropy_with_stats` call."""

    entropy_before: torch.Tensor  # [batch] nats, temperature 1
    entropy_after: torch.Tensor  # [batch] nats, temperature 1
    steps: torch.Tensor  # [batch] Adam updates applied (int32)


@dataclass(frozen=True)
class AdaptiveStats:
    """Per-row telemetry of one :func:`adaptive_temperature_with_stats` call."""

    temperature: torch.Tensor  # [batch] the chosen temperature (1 for rows left alone)
    entropy_before: torch.Tensor  # [batch] nats at temperature 1
    entropy_after: torch.Tensor  # [batch] nats at the chosen temperature


class Workspace:
    """Reusable ``[rows, vocab]`` fp32 buffers for a decoding loop's repeated calls.

    On the CPU a fresh tensor of that size costs more (page faults, in a VM especially) than
    the arithmetic done on it; the processors of both backends keep one workspace each. A call
    without one allocates its buffers as usual."""

    def __init__(self) -> None:
        self._flat: dict[int, torch.Tensor] = {}

    def get(self, slot: int, like: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """Buffer ``slot`` shaped like ``like`` (or with ``rows`` rows); contents undefined."""
        shape = (like.shape[0] if rows is None else rows, *like.shape[1:])
        size = math.prod(shape)
        flat = self._flat.get(slot)
        if flat is None or flat.numel() < size or flat.device != like.device or flat.dtype != like.dtype:
            flat = self._flat[slot] = torch.empty(size, dtype=like.dtype, device=like.device)
        return flat[:size].view(shape)


def _buffers(workspace: Workspace | None, like: torch.Tensor, rows: int | None = None):
    """``take(slot)``: a workspace buffer, or a fresh tensor without a workspace."""
    if workspace is None:
        shape = (like.shape[0] if rows is None else rows, *like.shape[1:])
        return lambda slot: torch.empty(shape, dtype=like.dtype, device=like.device)
    return lambda slot: workspace.get(slot, like, rows)


def _log_weights(z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``z - max(z)`` per row with ``-inf`` entries at :data:`LOG_FLOOR` (NaN for invalid rows:
    a NaN, a +inf, or nothing finite)."""
    return torch.sub(z, z.amax(-1, keepdim=True), out=out).clamp_min_(LOG_FLOOR)


def _softmax_terms(
    z: torch.Tensor,
    q: torch.Tensor | None = None,
    log_q: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``q = softmax(z)``, ``log q`` (floored) and ``H`` per row, with one exp pass over ``z``
    (into the buffers ``q``, ``log_q`` and ``scratch`` when given: on the CPU a fresh
    [rows, vocab] tensor costs more page faults than the arithmetic on it)."""
    log_q = _log_weights(z, out=log_q)
    q = torch.exp(log_q, out=q)
    total = q.sum(-1, keepdim=True)
    q.div_(total)
    log_q.sub_(total.log())
    return q, log_q, -torch.mul(q, log_q, out=scratch).sum(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of ``softmax(logits)`` per row (``-inf`` entries contribute 0; NaN for rows
    with NaN, +inf or only ``-inf``)."""
    return _softmax_terms(logits.float())[2]


def minimize_entropy_with_stats(
    logits: torch.Tensor,
    *,
    threshold: float = EM_THRESHOLD,
    kl_weight: float = EM_KL_WEIGHT,
    lr: float = EM_LR,
    steps: int = EM_STEPS,
    compact: bool = False,
    inplace: bool = False,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, EmInfStats]:
    """EM-INF on ``[batch, vocab]`` logits, plus per-row entropy before/after and steps taken.

    Minimises ``H(softmax(z)) + kl_weight * KL(p0 || softmax(z))`` with ``steps`` Adam
    updates (fresh state, torch defaults). Before each update a row whose entropy is below
    ``threshold`` stops for good. Rows with NaN, +inf or only ``-inf`` come back unchanged.

    ``compact=True`` optimises only the rows that start above the threshold (most tokens of a
    confident model do not), which reads the gate on the host: fine for HF ``generate`` and on
    the CPU; the default keeps the whole call free of host syncs (vLLM on a GPU).
    ``inplace=True`` writes the result into ``logits`` when they are fp32 (other dtypes get a new
    fp32 tensor: the result is always fp32); ``workspace`` lends the temporaries.
    """
    if logits.ndim != 2:
        raise ValueError(f"minimize_entropy expects [batch, vocab] logits, got shape {tuple(logits.shape)}")
    if steps < 0 or lr < 0 or kl_weight < 0:
        raise ValueError(f"steps, lr and kl_weight must be >= 0 (got steps={steps}, lr={lr}, kl_weight={kl_weight})")
    original = logits.float()
    if not inplace and original is logits:
        original = logits.clone()
    minimize = _minimize_compact if compact else _minimize_sync_free
    return minimize(original, threshold, kl_weight, lr, steps, workspace)


# Workspace slots: the first softmax's q (p0) and log q, later q's, Adam's m and v, a scratch
# buffer (products, the denominator), and the rows the compact path gathers (z, p0, log q).
_P0, _LOG_Q, _Q, _M, _V, _SCRATCH, _ROWS, _ROWS_P0, _ROWS_LOG_Q = range(9)


def _minimize_sync_free(
    z: torch.Tensor, threshold: float, kl_weight: float, lr: float, steps: int, workspace: Workspace | None
) -> tuple[torch.Tensor, EmInfStats]:
    """Every row through the loop, gated by masks (invalid rows worked on as zeros, restored after)."""
    take = _buffers(workspace, z)
    valid = torch.isfinite(z.amax(-1))
    work = torch.where(valid[:, None], z, 0.0)
    q, log_q, h0 = _softmax_terms(work, take(_P0), take(_LOG_Q), take(_SCRATCH))
    h_after, taken = _adam_on_entropy(
        work, q, log_q, h0, valid & (h0 >= threshold), threshold, kl_weight, lr, steps, take, host_reads=False
    )
    z.copy_(torch.where(valid[:, None], work, z))
    nan = torch.full_like(h0, float("nan"))
    return z, EmInfStats(torch.where(valid, h0, nan), torch.where(valid, h_after, nan), taken)


def _minimize_compact(
    z: torch.Tensor, threshold: float, kl_weight: float, lr: float, steps: int, workspace: Workspace | None
) -> tuple[torch.Tensor, EmInfStats]:
    """Entropy of every row, then the Adam loop only on rows at or above the threshold.

    Invalid rows (NaN, +inf, all ``-inf``) get a NaN entropy, fail the gate and stay as they are.
    """
    take = _buffers(workspace, z)
    q, log_q, h0 = _softmax_terms(z, take(_P0), take(_LOG_Q), take(_SCRATCH))
    rows = torch.nonzero(h0 >= threshold).flatten()
    taken = torch.zeros(h0.shape[0], dtype=torch.int32, device=h0.device)
    if rows.numel() == 0:
        return z, EmInfStats(h0, h0.clone(), taken)
    if rows.numel() == z.shape[0]:
        h_after, taken = _adam_on_entropy(
            z,
            q,
            log_q,
            h0,
            torch.ones_like(h0, dtype=torch.bool),
            threshold,
            kl_weight,
            lr,
            steps,
            take,
            host_reads=True,
        )
        return z, EmInfStats(h0, h_after, taken)
    take_rows = _buffers(workspace, z, rows.numel())
    work = torch.index_select(z, 0, rows, out=take_rows(_ROWS))
    q = torch.index_select(q, 0, rows, out=take_rows(_ROWS_P0))
    log_q = torch.index_select(log_q, 0, rows, out=take_rows(_ROWS_LOG_Q))
    h_rows, taken_rows = _adam_on_entropy(
        work,
        q,
        log_q,
        h0[rows],
        torch.ones_like(rows, dtype=torch.bool),
        threshold,
        kl_weight,
        lr,
        steps,
        take_rows,
        host_reads=True,
    )
    z.index_copy_(0, rows, work)
    return z, EmInfStats(h0, h0.index_copy(0, rows, h_rows), taken.index_copy(0, rows, taken_rows))


def _adam_on_entropy(
    z: torch.Tensor,
    q: torch.Tensor,
    log_q: torch.Tensor,
    h: torch.Tensor,
    active: torch.Tensor,
    threshold: float,
    kl_weight: float,
    lr: float,
    steps: int,
    take,
    host_reads: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Adam loop on rows ``z``, in place, from their softmax terms (``q`` is p0 from now on);
    returns their final entropy and the number of updates each row took. ``take(slot)`` lends
    the buffers of the slots ``_Q``, ``_M``, ``_V`` and ``_SCRATCH``; ``host_reads`` lets it skip the
    mask when every row is still active.

    Works with the negated gradient ``g = q (log q + H - kl) + kl p0``, so each update is one
    ``addcdiv``; Adam's bias corrections are folded into scalars."""
    p0, h0 = q, h
    taken = torch.zeros(z.shape[0], dtype=torch.int32, device=z.device)
    m, v, denom = take(_M), take(_V), take(_SCRATCH)
    for i in range(1, steps + 1):
        if i > 1:
            q, log_q, h = _softmax_terms(z, take(_Q), log_q, denom)
        active = active & (h >= threshold)
        gate = not (host_reads and bool(active.all()))  # rows may have stopped: mask their update
        kl = kl_weight if i > 1 else 0.0  # q == p0 on the first step, so the KL gradient is exactly 0
        g = log_q.add_(h[:, None] - kl).mul_(q)  # q (log q + H) - kl q, in the buffer of log q
        if kl:
            g.add_(p0, alpha=kl)  # ... + kl p0
        if i == 1:  # m_hat = g and v_hat = g**2: the update is lr * g / (|g| + eps)
            torch.abs(g, out=denom).add_(ADAM_EPS)
            if gate:
                denom.div_(active[:, None])  # stopped rows: g / inf == 0
            z.addcdiv_(g, denom, value=lr)
            if steps > 1:
                torch.mul(g, 1 - ADAM_BETA1, out=m)
                torch.mul(g, g, out=v).mul_(1 - ADAM_BETA2)
        else:  # lr * m_hat / (sqrt(v_hat) + eps) == (lr * sqrt(c2) / c1) * m / (sqrt(v) + eps * sqrt(c2))
            m.lerp_(g, 1 - ADAM_BETA1)
            v.mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
            c1, c2 = 1 - ADAM_BETA1**i, math.sqrt(1 - ADAM_BETA2**i)
            torch.sqrt(v, out=denom).add_(ADAM_EPS * c2)
            if gate:
                denom.div_(active[:, None])
            z.addcdiv_(m, denom, value=lr * c2 / c1)
        taken += active.to(torch.int32)
    h_after = _softmax_terms(z, take(_Q), log_q, denom)[2] if steps else h0
    return h_after, taken


def force_token_on_invalid_rows(
    logits: torch.Tensor, token_ids: torch.Tensor, host_reads: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``logits`` with a NaN, a +inf or nothing finite become certain of ``token_ids[row]``
    (logit 0, every other -inf), in place; returns ``logits`` and the ``[rows]`` mask of those rows.

    No sampler can draw from such a row (HF raises, vLLM draws garbage); the backends force EOS there.
    ``host_reads=False`` skips the host check for a bad row (a sync on a GPU) and always rewrites.
    """
    invalid = ~torch.isfinite(logits.amax(-1))
    if host_reads and not bool(invalid.any()):
        return logits, invalid
    forced = torch.full_like(logits, float("-inf"))
    forced.scatter_(1, token_ids.to(device=logits.device, dtype=torch.long)[:, None], 0.0)
    logits.copy_(torch.where(invalid[:, None], forced, logits))
    return logits, invalid


def minimize_entropy(logits: torch.Tensor, **settings: Any) -> torch.Tensor:
    """EM-INF on ``[batch, vocab]`` logits (the paper's released defaults); ``settings`` as for
    :func:`minimize_entropy_with_stats`, which also returns per-row telemetry."""
    return minimize_entropy_with_stats(logits, **settings)[0]


def adaptive_temperature(logits: torch.Tensor, **settings: Any) -> torch.Tensor:
    """Per row, bisect a temperature so the entropy reaches ``max(threshold, target_ratio * H0)``.

    The paper's "Adaptive Temp" baseline. Rows with ``H0 <= threshold`` (and invalid rows)
    are unchanged. ``settings`` as for :func:`adaptive_temperature_with_stats`.
    """
    return adaptive_temperature_with_stats(logits, **settings)[0]


def _entropy_at(log_w: torch.Tensor, inverse_t: torch.Tensor, take) -> torch.Tensor:
    """Entropy of ``softmax(log_w * inverse_t)`` per row, from log-weights ``log_w <= 0`` (one exp pass)."""
    scaled = torch.mul(log_w, inverse_t[:, None], out=take(_SCALED))
    w = torch.exp(scaled, out=take(_WEIGHTS))
    total = w.sum(-1)
    return total.log() - scaled.mul_(w).sum(-1) / total


_LOG_W, _SCALED, _WEIGHTS, _LOG_W_ROWS = range(4)  # adaptive temperature's workspace slots


def adaptive_temperature_with_stats(
    logits: torch.Tensor,
    *,
    target_ratio: float = AT_TARGET_RATIO,
    threshold: float = AT_THRESHOLD,
    t_min: float = AT_T_MIN,
    t_max: float = AT_T_MAX,
    tol: float = AT_TOL,
    max_iters: int = AT_MAX_ITERS,
    compact: bool = False,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, AdaptiveStats]:
    """:func:`adaptive_temperature`, also returning each row's temperature and entropy before/after.

    The bisection of the paper's processor, on ``[t_min, t_max]``, until ``|H - target| < tol``.
    Without ``compact`` it runs a fixed number of iterations without host synchronisation
    (``min(max_iters, 48)``: once the fp32 interval has collapsed, more iterations cannot change
    any row); ``compact=True`` stops when every row has converged and evaluates only the rows
    still searching (host reads; for HF ``generate`` and the CPU). Both give the same result.
    ``workspace`` lends the temporaries.
    """
    if logits.ndim != 2:
        raise ValueError(f"adaptive_temperature expects [batch, vocab] logits, got shape {tuple(logits.shape)}")
    if not 0 < t_min <= t_max:
        raise ValueError(f"need 0 < t_min <= t_max (got t_min={t_min}, t_max={t_max})")
    original = logits.float()
    take = _buffers(workspace, original)
    log_w = _log_weights(original, out=take(_LOG_W))
    h0 = _entropy_at(log_w, torch.ones(log_w.shape[0], device=log_w.device), take)
    target = torch.clamp(h0 * target_ratio, min=threshold)
    searching = torch.isfinite(h0) & (h0 > threshold)
    lo = torch.full_like(h0, t_min)
    hi = torch.full_like(h0, t_max)
    temp = torch.ones_like(h0)
    h_after = h0.clone()
    for _ in range(min(max_iters, BISECTION_HALVINGS)):
        if not compact:
            mid = (lo + hi) / 2
            h = _entropy_at(log_w, 1 / mid, take)
            temp = torch.where(searching, mid, temp)
            h_after = torch.where(searching, h, h_after)
            searching &= (h - target).abs() >= tol
            too_hot = h >= target
            hi = torch.where(searching & too_hot, mid, hi)
            lo = torch.where(searching & ~too_hot, mid, lo)
            continue
        rows = torch.nonzero(searching).flatten()
        if rows.numel() == 0:
            break
        take_rows = _buffers(workspace, original, rows.numel())
        subset = (
            log_w if rows.numel() == log_w.shape[0] else torch.index_select(log_w, 0, rows, out=take_rows(_LOG_W_ROWS))
        )
        mid = (lo[rows] + hi[rows]) / 2
        h = _entropy_at(subset, 1 / mid, take_rows)
        temp[rows], h_after[rows] = mid, h
        going = (h - target[rows]).abs() >= tol
        searching[rows] = going
        too_hot = h >= target[rows]
        hi[rows] = torch.where(going & too_hot, mid, hi[rows])
        lo[rows] = torch.where(going & ~too_hot, mid, lo[rows])
    return original / temp[:, None], AdaptiveStats(temp, h0, h_after)
