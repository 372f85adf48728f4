"""EM-INF and adaptive temperature as batch-level vLLM logits processors, with telemetry.

Two classes, one per vLLM model runner, both built on :meth:`EmSettings.transform` (the
same core as the HF backend's ``EntropyMinimizationProcessor``):

* :class:`EmInfLogitsProcessor` for Model Runner V2;
* :class:`EmInfLogitsProcessorV1` for the V1 runner (vLLM's fallback without Triton, e.g. on
  CPU, or for some speculative-decoding modes, or ``VLLM_USE_V2_MODEL_RUNNER=0``).

``em_inf_vllm`` passes :data:`PROCESSOR`, :class:`EmInfProcessor`: both runners' loaders
accept it, and whichever runner vLLM builds gets its own class from it, so the choice is
vLLM's, made with everything vLLM knows (Triton, speculative decoding, the variable).

A request asks for processing with flat ``em_*`` keys in ``SamplingParams.extra_args``
(``em_mode``, ``em_threshold``, ...; see :class:`EmSettings`); requests without them (vLLM's
warm-up, plain requests) are left alone, and ``em_mode=off`` only measures the entropy.
Rows are grouped by their settings on the host and transformed in chunks of bounded size, so
``apply`` never reads device data on the host (except on CPU, where EM-INF then skips the
rows below its threshold) and its temporaries stay small (vLLM's warm-up profiling does not
see them).

Telemetry: each processor sums, per request, the tokens it processed, the entropy before and
after, the EM steps and the temperature, on the device, keyed by the request's
``em_eval_tag`` extra arg. ``em_inf_vllm`` reads them back after each ``generate`` through
:class:`EmInfWorkerExtension` (vLLM's ``worker_extension_cls``), one RPC per batch. A row whose
logits are not finite (NaN, +inf) is forced to the request's EOS and counted as ``nonfinite``,
as the HF processor does, so the response ends there instead of continuing from garbage.
The per-token signals of :mod:`em_eval.em_inf.signals` are kept per slot in one ``[slots, length,
4]`` fp16 buffer that grows (doubling) to the longest live response, at most
:func:`~em_eval.em_inf.signals.buffer_tokens` (``$EM_EVAL_SIGNAL_MB``, 256 MiB, in all); a finished
request's buffer is summarised on the device into :data:`~em_eval.records.SIGNAL_FIELDS` (no host
read). Under speculative decoding (rows mapped on the device only) only the sums are kept.

This module imports without CUDA (vLLM also loads it in its frontend process). Without vLLM
installed the classes have no vLLM base, which keeps their logic importable and testable.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from em_eval.em_inf.core import Workspace, entropy, force_token_on_invalid_rows
from em_eval.em_inf.settings import EmSettings, settings_from
from em_eval.em_inf.signals import (
    TOKEN_FIELDS,
    adjusted_signals,
    buffer_tokens,
    sequence_signals,
    token_signals,
    with_signals,
)

PROCESSOR = f"{__name__}:EmInfProcessor"  # what ``LLM(logits_processors=[...])`` takes
WORKER_EXTENSION = f"{__name__}.EmInfWorkerExtension"  # what ``LLM(worker_extension_cls=...)`` takes
TELEMETRY_RPC = "em_eval_telemetry"
V2_INTERFACE = "vllm.v1.worker.gpu.sample.logits_processor"
V1_INTERFACE = "vllm.v1.sample.logits_processor"
TAG_KEY = "em_eval_tag"  # extra_args key naming a request for its telemetry (not an EM setting)
CHUNK_ENV = "EM_EVAL_VLLM_CHUNK_MB"
DEFAULT_CHUNK_MB = 512
# [rows, vocab] fp32 tensors alive at once: EmSettings.transform peaks at 13.3 for EM-INF (measured;
# adaptive temperature 7.3), plus the gathered input rows and the transformed copy.
ROW_TEMPORARIES = 16
NO_SETTINGS = -1
STAT_FIELDS = (
    "tokens",
    "entropy_before",
    "entropy_after",
    "steps",
    "temperature",
    "adjusted",
    "self_certainty_before",
    "self_certainty_after",
    "top1_before",
    "top1_after",
    "nonfinite",
)
MAX_FINISHED = 100_000  # telemetry of requests nobody collected is dropped beyond this many
_LIVE: "weakref.WeakSet[Any]" = weakref.WeakSet()  # this process's processors, for the telemetry RPC


def _vllm_base(module: str) -> type:
    """vLLM's ``LogitsProcessor`` from ``module``, or ``object`` when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        return object
    return importlib.import_module(module).LogitsProcessor


def request_settings(sampling_params: Any) -> EmSettings | None:
    """The EM settings a request asked for through ``extra_args``; None when it asked for none.

    Raises ``ValueError`` for unknown ``em_*`` keys or invalid values.
    """
    extra = getattr(sampling_params, "extra_args", None) or {}
    picked = {k: v for k, v in extra.items() if k.startswith("em_") and k != TAG_KEY}
    return settings_from(picked) if picked else None


def request_tag(sampling_params: Any) -> str | None:
    return (getattr(sampling_params, "extra_args", None) or {}).get(TAG_KEY)


def request_eos(sampling_params: Any) -> int:
    """The token a row whose logits are not finite is forced to: the request's EOS (else its
    smallest stop token id, else 0)."""
    eos = getattr(sampling_params, "eos_token_id", None)
    if eos is None:
        stops = sorted(getattr(sampling_params, "all_stop_token_ids", None) or ())
        eos = stops[0] if stops else 0
    return int(eos)


def chunk_rows(vocab_size: int) -> int:
    """Rows transformed at once, so temporaries stay within ``$EM_EVAL_VLLM_CHUNK_MB`` (512)."""
    raw = os.environ.get(CHUNK_ENV, str(DEFAULT_CHUNK_MB))
    try:
        budget_mb = float(raw)
    except ValueError:
        raise ValueError(f"{CHUNK_ENV}={raw!r} must be a number of MiB, e.g. {DEFAULT_CHUNK_MB}") from None
    if budget_mb <= 0:
        raise ValueError(f"{CHUNK_ENV}={raw!r} must be positive")
    return max(1, int(budget_mb * 2**20) // (vocab_size * 4 * ROW_TEMPORARIES))


class SettingsCodes:
    """Small integer codes for the distinct settings in use, so per-slot state is one int array."""

    def __init__(self) -> None:
        self._code: dict[EmSettings, int] = {}
        self.settings: list[EmSettings] = []

    def code(self, settings: EmSettings | None) -> int:
        if settings is None:
            return NO_SETTINGS
        if settings not in self._code:
            self._code[settings] = len(self.settings)
            self.settings.append(settings)
        return self._code[settings]


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Asynchronous host-to-device copy (through pinned memory on CUDA)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def _row_stats(
    settings: EmSettings, block: torch.Tensor, compact: bool, workspace: Workspace, eos: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Transform ``block`` (in place where the method allows), forcing rows whose logits are not
    finite to their ``eos`` token; return the rows to write back (None when they are already in
    ``block``), ``[rows, len(STAT_FIELDS)]`` stats in :data:`STAT_FIELDS` order (a forced row
    counts as ``nonfinite``, not as a token) and ``[rows, len(TOKEN_FIELDS)]`` per-token signals
    (NaN for a forced row)."""
    before = token_signals(block, compact)  # before the transform, which works in place
    if settings.mode == "off":
        h0 = entropy(block)
        out, stats = block, {"entropy_before": h0, "entropy_after": h0}
    else:
        out, stats = settings.transform(block, compact=compact, inplace=True, workspace=workspace)
    stats, tokens = with_signals(stats, before, adjusted_signals(out, before, stats.get("adjusted"), compact))
    out, invalid = force_token_on_invalid_rows(out, eos, host_reads=compact)
    invalid = invalid.float()
    valid = 1 - invalid
    zeros = torch.zeros_like(invalid)
    columns = [valid] + [stats[k].float() * valid if k in stats else zeros for k in STAT_FIELDS[1:-1]] + [invalid]
    return (
        (None if out is block else out),
        torch.nan_to_num(torch.stack(columns, dim=1), nan=0.0),
        torch.where(valid[:, None] > 0, tokens, torch.nan),
    )


class RequestStats:
    """Per-slot (or per-row) telemetry sums and per-token signal buffers on the device, and the
    finished requests' sums and signal summaries. Each slot's position in its buffer is counted on
    the host (one row per request and step)."""

    def __init__(self, slots: int, device: torch.device) -> None:
        self.sums = torch.zeros(slots, len(STAT_FIELDS), dtype=torch.float32, device=device)
        self.tags: list[str | None] = [None] * slots
        self.finished: OrderedDict[str, tuple[torch.Tensor, torch.Tensor | None]] = OrderedDict()
        self.max_tokens = buffer_tokens(slots)
        self.tokens = torch.zeros(slots, 0, len(TOKEN_FIELDS), dtype=torch.float16, device=device)
        self.positions = np.zeros(slots, dtype=np.int64)

    def start(self, slot: int, tag: str | None) -> None:
        self.finish(slot)
        self.tags[slot] = tag

    def finish(self, slot: int) -> None:
        tag = self.tags[slot]
        if tag is not None:
            kept = int(min(self.positions[slot], self.tokens.shape[1]))
            summary = sequence_signals(self.tokens[slot, :kept]) if self.max_tokens else None
            self.finished[tag] = (self.sums[slot].clone(), summary)
            if len(self.finished) > MAX_FINISHED:
                self.finished.popitem(last=False)
        self.sums[slot].zero_()
        self.positions[slot] = 0
        self.tags[slot] = None

    def record_tokens(self, slots: np.ndarray, values: torch.Tensor) -> None:
        """Write one token's ``[rows, len(TOKEN_FIELDS)]`` signals at each slot's next position (kept
        while it is below :attr:`max_tokens`; the buffer doubles as needed)."""
        positions = self.positions[slots]
        self.positions[slots] += 1
        keep = positions < self.max_tokens
        if not keep.any():
            return
        needed = int(positions[keep].max()) + 1
        if needed > self.tokens.shape[1]:
            length = min(self.max_tokens, max(needed, 2 * self.tokens.shape[1], 64))
            grown = self.tokens.new_zeros(self.tokens.shape[0], length, self.tokens.shape[2])
            grown[:, : self.tokens.shape[1]] = self.tokens
            self.tokens = grown
        device = self.tokens.device
        rows = _to_device(np.flatnonzero(keep), device)
        self.tokens.index_put_(
            (_to_device(slots[keep], device), _to_device(positions[keep], device)), values.index_select(0, rows).half()
        )

    def move(self, a: int, b: int, swap: bool) -> None:
        """Row ``a`` moves to ``b`` (V1 runner), whose request, if any, has ended (vLLM reports a
        finished request that another fills the place of as that move only); ``swap`` exchanges them."""
        if not swap:
            self.finish(b)
        for table in (self.sums, self.tokens):
            row_a, row_b = table[a].clone(), table[b].clone()
            table[b] = row_a
            table[a] = row_b if swap else 0
        self.positions[[a, b]] = self.positions[[b, a]] if swap else (0, self.positions[a])
        tag_a, tag_b = self.tags[a], self.tags[b]
        self.tags[b], self.tags[a] = tag_a, (tag_b if swap else None)

    def collect(self, tags: list[str]) -> dict[str, dict[str, Any]]:
        """The sums of these requests (finished or still in their slot), with their signal summary
        under ``"signals"`` (when buffers are on), then forgotten."""
        wanted = set(tags)
        for slot, tag in enumerate(self.tags):
            if tag in wanted:
                self.finish(slot)
        found = {tag: self.finished.pop(tag) for tag in tags if tag in self.finished}
        out: dict[str, dict[str, Any]] = {}
        for tag, (row, summary) in found.items():
            out[tag] = dict(zip(STAT_FIELDS, row.tolist()))
            if summary is not None:
                out[tag]["signals"] = summary.tolist()
        return out


def transform_rows(
    logits: torch.Tensor,
    row_codes: np.ndarray,
    row_slots: np.ndarray,
    codes: SettingsCodes,
    chunk: int,
    stats: RequestStats,
    workspace: Workspace,
    slot_eos: np.ndarray,
) -> None:
    """Transform in place each row whose code (known on the host) is not ``NO_SETTINGS``; add
    its telemetry to the slot ``row_slots[row]``; ``slot_eos[slot]`` is the slot's EOS."""
    compact = logits.device.type == "cpu"  # a host read costs nothing there
    for code in np.unique(row_codes[row_codes != NO_SETTINGS]):
        settings = codes.settings[int(code)]
        rows = np.flatnonzero(row_codes == code)
        for start in range(0, rows.size, chunk):
            part = rows[start : start + chunk]
            contiguous = part[-1] - part[0] + 1 == part.size  # a view: no gather, no scatter
            index = None if contiguous else _to_device(part, logits.device)
            block = logits[part[0] : part[-1] + 1] if contiguous else logits.index_select(0, index)
            eos = _to_device(slot_eos[row_slots[part]], logits.device)
            out, row_stats, tokens = _row_stats(settings, block, compact, workspace, eos)
            if contiguous and out is not None:
                block.copy_(out)
            elif not contiguous:
                logits.index_copy_(0, index, block if out is None else out)
            stats.sums.index_add_(0, _to_device(row_slots[part], logits.device), row_stats)
            stats.record_tokens(row_slots[part], tokens)


def transform_masked(
    logits: torch.Tensor,
    row_slots: torch.Tensor,
    row_codes: torch.Tensor,
    present: np.ndarray,
    codes: SettingsCodes,
    chunk: int,
    stats: RequestStats,
    workspace: Workspace,
    slot_eos: torch.Tensor,
) -> None:
    """Like :func:`transform_rows` when the rows' slots and codes live only on the device.

    Each chunk is transformed with each present setting and kept where the code matches,
    which costs compute on other rows but needs no host read of ``row_codes``.
    """
    for code in present:
        settings = codes.settings[int(code)]
        for start in range(0, logits.shape[0], chunk):
            block = logits[start : start + chunk]
            keep = row_codes[start : start + chunk] == int(code)
            work = block.clone()  # other settings' rows must stay as they are
            out, row_stats, _ = _row_stats(settings, work, False, workspace, slot_eos[row_slots[start : start + chunk]])
            block.copy_(torch.where(keep[:, None], work if out is None else out, block))
            stats.sums.index_add_(0, row_slots[start : start + chunk], row_stats * keep[:, None])


class EmInfLogitsProcessor(_vllm_base(V2_INTERFACE)):
    """Model Runner V2 processor: per-slot settings, rows mapped to slots through the context."""

    def __init__(self, vllm_config: Any, req_states: Any) -> None:
        self._device = torch.device(req_states.device)
        self._chunk = chunk_rows(req_states.vocab_size)
        self._codes = SettingsCodes()
        self._slot_code = np.full(req_states.max_num_reqs, NO_SETTINGS, dtype=np.int32)
        self._slot_code_device = torch.full(
            (req_states.max_num_reqs,), NO_SETTINGS, dtype=torch.int32, device=self._device
        )
        self._slot_eos = np.zeros(req_states.max_num_reqs, dtype=np.int64)
        self._slot_eos_device = torch.zeros(req_states.max_num_reqs, dtype=torch.int64, device=self._device)
        self._staged = False
        self.stats = RequestStats(req_states.max_num_reqs, self._device)
        self._workspace = Workspace()
        _LIVE.add(self)

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        request_settings(sampling_params)

    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        """(Re)initialise the slot (slots are recycled, there is no remove hook)."""
        settings = request_settings(sampling_params)
        self._slot_code[req_idx] = self._codes.code(settings)
        self._slot_eos[req_idx] = request_eos(sampling_params)
        self._staged = True
        self.stats.start(req_idx, request_tag(sampling_params) if settings else None)
        return bool(self._slot_code[req_idx] != NO_SETTINGS)

    def apply_staged_writes(self) -> None:
        if self._staged:
            self._slot_code_device.copy_(_to_device(self._slot_code, self._device), non_blocking=True)
            self._slot_eos_device.copy_(_to_device(self._slot_eos, self._device), non_blocking=True)
            self._staged = False

    def apply(self, logits: torch.Tensor, ctx: Any) -> torch.Tensor:
        request_codes = self._slot_code[ctx.idx_mapping_np]
        if not (request_codes != NO_SETTINGS).any():
            return logits
        if logits.shape[0] == request_codes.shape[0]:  # one row per request, in batch order
            transform_rows(
                logits,
                request_codes,
                ctx.idx_mapping_np,
                self._codes,
                self._chunk,
                self.stats,
                self._workspace,
                self._slot_eos,
            )
        else:  # speculative decoding: a request owns several rows, mapped on the device only
            present = np.unique(request_codes[request_codes != NO_SETTINGS])
            row_codes = self._slot_code_device[ctx.expanded_idx_mapping]
            transform_masked(
                logits,
                ctx.expanded_idx_mapping,
                row_codes,
                present,
                self._codes,
                self._chunk,
                self.stats,
                self._workspace,
                self._slot_eos_device,
            )
        return logits


class EmInfLogitsProcessorV1(_vllm_base(V1_INTERFACE)):
    """V1 runner processor: per-row settings kept in step with ``BatchUpdate``.

    Not argmax-invariant, so vLLM runs it before temperature like the V2 processor (the V1
    runner refuses custom processors under speculative decoding, so rows are requests).
    """

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        rows = vllm_config.scheduler_config.max_num_seqs
        self._codes = SettingsCodes()
        self._row_code = np.full(rows, NO_SETTINGS, dtype=np.int32)
        self._row_eos = np.zeros(rows, dtype=np.int64)
        self._rows = np.arange(rows)
        self._chunk: int | None = None
        self.stats = RequestStats(rows, torch.device(device))
        self._workspace = Workspace()
        _LIVE.add(self)

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        request_settings(sampling_params)

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: Any) -> None:
        """Apply the batch changes in vLLM's order: removed, added, moved."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self._row_code[index] = NO_SETTINGS
            self.stats.finish(index)
        for index, params, *_ in batch_update.added:
            settings = request_settings(params)
            self._row_code[index] = self._codes.code(settings)
            self._row_eos[index] = request_eos(params)
            self.stats.start(index, request_tag(params) if settings else None)
        for a, b, direction in batch_update.moved:
            swap = direction.name == "SWAP"
            a_code, b_code = self._row_code[a], self._row_code[b]
            self._row_code[b] = a_code
            self._row_code[a] = b_code if swap else NO_SETTINGS
            self._row_eos[[a, b]] = self._row_eos[[b, a]]
            self.stats.move(a, b, swap)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        row_codes = self._row_code[: logits.shape[0]]
        if (row_codes != NO_SETTINGS).any():
            self._chunk = self._chunk or chunk_rows(logits.shape[1])
            transform_rows(
                logits,
                row_codes,
                self._rows[: logits.shape[0]],
                self._codes,
                self._chunk,
                self.stats,
                self._workspace,
                self._row_eos,
            )
        return logits


REQUEST_STATE_FIELDS = ("device", "max_num_reqs", "vocab_size")  # what the V2 processor reads of ``req_states``


def _bound(processor: type, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """``processor``'s parameters bound to the arguments, or None where they do not fit its signature."""
    try:
        return inspect.signature(processor).bind(*args, **kwargs).arguments
    except TypeError:
        return None


class EmInfProcessor(*dict.fromkeys((_vllm_base(V2_INTERFACE), _vllm_base(V1_INTERFACE)))):
    """What ``em_inf_vllm`` passes to vLLM: a subclass of both runners' base classes, so both
    loaders accept it, that builds the processor of the runner constructing it, told apart by what
    the runner passes: V2 a request state (``req_states``), V1 a ``device`` and ``is_pin_memory``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        v2 = _bound(EmInfLogitsProcessor, args, kwargs)
        if v2 is not None and all(hasattr(v2["req_states"], name) for name in REQUEST_STATE_FIELDS):
            return EmInfLogitsProcessor(**v2)
        v1 = _bound(EmInfLogitsProcessorV1, args, kwargs)
        if v1 is not None and isinstance(v1["device"], (torch.device, str)) and isinstance(v1["is_pin_memory"], bool):
            return EmInfLogitsProcessorV1(**v1)
        given = ", ".join([type(a).__name__ for a in args] + [f"{k}={type(v).__name__}" for k, v in kwargs.items()])
        raise TypeError(
            f"EmInfProcessor({given}): not a vLLM logits-processor interface em-eval knows; expected "
            f"Model Runner V2's (vllm_config, req_states with {', '.join(REQUEST_STATE_FIELDS)}) or the V1 "
            "runner's (vllm_config, device: torch.device, is_pin_memory: bool). Use a vLLM version em-eval "
            "supports (pyproject.toml's vllm extra)."
        )

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        request_settings(sampling_params)


class EmInfWorkerExtension:
    """Mixed into vLLM's worker (``worker_extension_cls``): the telemetry RPC."""

    def em_eval_telemetry(self, tags: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for processor in list(_LIVE):
            found.update(processor.stats.collect(tags))
        return found
