"""The transformers ``LogitsProcessor`` that applies EM-INF / adaptive temperature per token."""

from __future__ import annotations

import functools
from typing import Callable

import torch
from transformers import LogitsProcessor

from em_eval.em_inf.core import Workspace, force_token_on_invalid_rows
from em_eval.em_inf.settings import EmSettings
from em_eval.em_inf.signals import adjusted_signals, buffer_tokens, sequence_signals, token_signals, with_signals
from em_eval.records import telemetry_record

Transform = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@functools.lru_cache(maxsize=16)
def compiled_transform(settings: EmSettings) -> Transform:
    """``settings.transform`` (sync-free path) under ``torch.compile``, once per settings."""
    return torch.compile(functools.partial(settings.transform, compact=False), dynamic=True)


class EntropyMinimizationProcessor(LogitsProcessor):
    """Transforms next-token logits with :class:`EmSettings` and keeps per-row telemetry.

    Placed first in the chain (before temperature, top-k, top-p), like the paper's loop; returns fp32.
    Rows that already produced a stop token are finished: they are still passed through
    (HF pads them) but no longer counted in the telemetry. Each step's per-token signals
    (:data:`~em_eval.em_inf.signals.TOKEN_FIELDS`) are kept for the first
    :func:`~em_eval.em_inf.signals.buffer_tokens` steps (``[rows, 4]`` fp16 per step).
    """

    def __init__(
        self,
        settings: EmSettings,
        stop_token_ids: list[int],
        compile: bool | None = None,
        eos_token_id: int | None = None,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        """``compile``: fuse the transform with ``torch.compile``; None means on CUDA only, where
        the fused, sync-free kernel beats skipping rows (on CPU, skipping rows below the
        threshold wins). A row whose logits are not finite (NaN, +inf) is forced to
        ``eos_token_id`` (default: the smallest stop id) and counted as ``nonfinite``.
        ``on_step`` is called once per token."""
        self.settings = settings
        self._compile = compile
        self._transform: Transform | None = None
        self._stop_ids = torch.tensor(sorted(set(stop_token_ids)), dtype=torch.long)
        self._eos = torch.tensor(
            [min(stop_token_ids, default=0) if eos_token_id is None else eos_token_id], dtype=torch.long
        )
        self._on_step = on_step
        self._finished: torch.Tensor | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._host_reads = True
        self._tokens: list[torch.Tensor] = []
        self._max_tokens: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._on_step is not None:
            self._on_step()
        if self._finished is None:
            self._finished = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
            self._stop_ids = self._stop_ids.to(scores.device)
            self._eos = self._eos.to(scores.device)
            use_compile = scores.is_cuda if self._compile is None else self._compile
            self._host_reads = not use_compile
            self._transform = (
                compiled_transform(self.settings)
                if use_compile  # generate syncs every token anyway:
                else functools.partial(self.settings.transform, compact=True, inplace=True, workspace=Workspace())
            )
        else:
            self._finished |= torch.isin(input_ids[:, -1], self._stop_ids)
        live = ~self._finished
        before = token_signals(scores, self._host_reads)  # before the transform, which may work in place
        out, stats = self._transform(scores)  # leaves rows that are not finite as they are
        after = adjusted_signals(out, before, stats.get("adjusted"), self._host_reads)
        stats, step = with_signals(stats, before, after)
        out, invalid = force_token_on_invalid_rows(out, self._eos.expand(out.shape[0]))
        counted = live & ~invalid
        self._accumulate("tokens", counted.to(torch.float32))
        self._accumulate("nonfinite", (live & invalid).to(torch.float32))
        for name, value in stats.items():
            self._accumulate(name, torch.where(counted, value.float(), torch.zeros_like(value, dtype=torch.float32)))
        if self._max_tokens is None:
            self._max_tokens = buffer_tokens(scores.shape[0])
        if len(self._tokens) < self._max_tokens:
            self._tokens.append(torch.where(counted[:, None], step, torch.nan).half())
        return out

    def _accumulate(self, name: str, value: torch.Tensor) -> None:
        self._sums[name] = self._sums[name] + value if name in self._sums else value.clone()

    def row_telemetry(self, batch_wall_s: float) -> list[dict[str, float | int | str]]:
        """One :func:`telemetry_record` per batch row."""
        if not self._sums:
            return []
        sums = {k: v.cpu().tolist() for k, v in self._sums.items()}
        rows = len(sums["tokens"])
        signals = self._row_signals(rows)
        return [
            telemetry_record(
                self.settings.mode,
                int(sums["tokens"][i] + sums["nonfinite"][i]),
                {k: v[i] for k, v in sums.items()},
                batch_wall_s,
                rows,
                signals[i],
            )
            for i in range(rows)
        ]

    def _row_signals(self, rows: int) -> list[list[float] | None]:
        """Each row's :func:`sequence_signals` over its counted steps (a prefix: a row stops counting
        once it has finished), or None without a buffer."""
        if not self._tokens:
            return [None] * rows
        steps = torch.stack(self._tokens, 1).cpu().float()  # [rows, steps, fields]: one copy, small ops on the host
        lengths = (~torch.isnan(steps[:, :, 0])).sum(1).tolist()
        return [sequence_signals(steps[i, : lengths[i]]).tolist() for i in range(rows)]
