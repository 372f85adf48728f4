"""EM-INF and adaptive temperature as batch-level vLLM logits processors.

Two classes, one per vLLM 0.33 model runner, both built on :meth:`EmSettings.transform`
(the same core as the HF backend's ``EntropyMinimizationProcessor``):

* :class:`EmInfLogitsProcessor` for Model Runner V2, the default;
* :class:`EmInfLogitsProcessorV1` for the legacy runner (``VLLM_USE_V2_MODEL_RUNNER=0``).

A request asks for processing with flat ``em_*`` keys in ``SamplingParams.extra_args``
(``em_mode``, ``em_threshold``, ...; see :class:`EmSettings`). Requests without them, with
``em_mode=off``, or decoding greedily are left alone: both methods keep every row's argmax,
so a greedy token could not change. Rows are grouped by their settings on the host and
transformed in chunks of bounded size, so ``apply`` never reads device data on the host and
its temporaries stay small (vLLM's warm-up profiling does not see them).

This module imports without CUDA (vLLM also loads it in its frontend process). Without vLLM
installed the classes have no vLLM base, which keeps their logic importable and testable.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import numpy as np
import torch

from em_eval.em_settings import EmSettings, settings_from

V2_PROCESSOR = f"{__name__}:EmInfLogitsProcessor"  # what ``LLM(logits_processors=[...])`` takes
V1_PROCESSOR = f"{__name__}:EmInfLogitsProcessorV1"
CHUNK_ENV = "EM_EVAL_VLLM_CHUNK_MB"
DEFAULT_CHUNK_MB = 512
# [rows, vocab] fp32 tensors alive at once: EmSettings.transform peaks at 13.3 for EM-INF (measured;
# adaptive temperature 7.3), plus the gathered input rows and the transformed copy.
ROW_TEMPORARIES = 16
GREEDY_TEMPERATURE = 1e-5  # vLLM's _SAMPLING_EPS: a lower temperature means greedy decoding
NO_SETTINGS = -1


def _vllm_base(module: str) -> type:
    """vLLM's ``LogitsProcessor`` from ``module``, or ``object`` when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        return object
    return importlib.import_module(module).LogitsProcessor


def request_settings(sampling_params: Any) -> EmSettings | None:
    """The EM settings a request asked for through ``extra_args``; None when nothing applies.

    Raises ``ValueError`` for unknown ``em_*`` keys or invalid values.
    """
    extra = getattr(sampling_params, "extra_args", None) or {}
    picked = {k: v for k, v in extra.items() if k.startswith("em_")}
    if not picked:
        return None
    settings = settings_from(picked)
    if settings.mode == "off" or sampling_params.temperature < GREEDY_TEMPERATURE:
        return None
    return settings


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


def transform_rows(logits: torch.Tensor, row_codes: np.ndarray, codes: SettingsCodes, chunk: int) -> None:
    """Transform in place each row whose code (known on the host) is not ``NO_SETTINGS``."""
    for code in np.unique(row_codes[row_codes != NO_SETTINGS]):
        settings = codes.settings[int(code)]
        rows = np.flatnonzero(row_codes == code)
        if rows.size == logits.shape[0]:
            for start in range(0, rows.size, chunk):
                block = logits[start : start + chunk]
                block.copy_(settings.transform(block)[0])
            continue
        for start in range(0, rows.size, chunk):
            index = _to_device(rows[start : start + chunk], logits.device)
            logits.index_copy_(0, index, settings.transform(logits.index_select(0, index))[0])


def transform_masked(
    logits: torch.Tensor, row_codes: torch.Tensor, present: np.ndarray, codes: SettingsCodes, chunk: int
) -> None:
    """Like :func:`transform_rows` when the row codes live only on the device.

    Each chunk is transformed with each present setting and kept where the code matches,
    which costs compute on other rows but needs no host read of ``row_codes``.
    """
    for code in present:
        settings = codes.settings[int(code)]
        for start in range(0, logits.shape[0], chunk):
            block = logits[start : start + chunk]
            keep = (row_codes[start : start + chunk] == int(code))[:, None]
            block.copy_(torch.where(keep, settings.transform(block)[0], block))


class EmInfLogitsProcessor(_vllm_base("vllm.v1.worker.gpu.sample.logits_processor")):
    """Model Runner V2 processor: per-slot settings, rows mapped to slots through the context."""

    def __init__(self, vllm_config: Any, req_states: Any) -> None:
        self._device = torch.device(req_states.device)
        self._chunk = chunk_rows(req_states.vocab_size)
        self._codes = SettingsCodes()
        self._slot_code = np.full(req_states.max_num_reqs, NO_SETTINGS, dtype=np.int32)
        self._slot_code_device = torch.full((req_states.max_num_reqs,), NO_SETTINGS, dtype=torch.int32, device=self._device)
        self._staged = False

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        request_settings(sampling_params)

    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        """(Re)initialise the slot (slots are recycled, there is no remove hook)."""
        self._slot_code[req_idx] = self._codes.code(request_settings(sampling_params))
        self._staged = True
        return bool(self._slot_code[req_idx] != NO_SETTINGS)

    def apply_staged_writes(self) -> None:
        if self._staged:
            self._slot_code_device.copy_(_to_device(self._slot_code, self._device), non_blocking=True)
            self._staged = False

    def apply(self, logits: torch.Tensor, ctx: Any) -> torch.Tensor:
        request_codes = self._slot_code[ctx.idx_mapping_np]
        if not (request_codes != NO_SETTINGS).any():
            return logits
        if logits.shape[0] == request_codes.shape[0]:  # one row per request, in batch order
            transform_rows(logits, request_codes, self._codes, self._chunk)
        else:  # speculative decoding: a request owns several rows, mapped on the device only
            present = np.unique(request_codes[request_codes != NO_SETTINGS])
            row_codes = self._slot_code_device[ctx.expanded_idx_mapping]
            transform_masked(logits, row_codes, present, self._codes, self._chunk)
        return logits


class EmInfLogitsProcessorV1(_vllm_base("vllm.v1.sample.logits_processor")):
    """Legacy V1 runner processor: per-row settings kept in step with ``BatchUpdate``.

    Not argmax-invariant, so vLLM runs it before temperature like the V2 processor (the
    legacy runner refuses custom processors under speculative decoding, so rows are requests).
    """

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self._codes = SettingsCodes()
        self._row_code = np.full(vllm_config.scheduler_config.max_num_seqs, NO_SETTINGS, dtype=np.int32)
        self._chunk: int | None = None

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
        for index, params, *_ in batch_update.added:
            self._row_code[index] = self._codes.code(request_settings(params))
        for a, b, direction in batch_update.moved:
            a_code, b_code = self._row_code[a], self._row_code[b]
            self._row_code[b] = a_code
            self._row_code[a] = b_code if direction.name == "SWAP" else NO_SETTINGS

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        row_codes = self._row_code[: logits.shape[0]]
        if (row_codes != NO_SETTINGS).any():
            self._chunk = self._chunk or chunk_rows(logits.shape[1])
            transform_rows(logits, row_codes, self._codes, self._chunk)
        return logits
