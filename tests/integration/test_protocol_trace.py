"""Issue 22's proof: what each backend really builds for every (task, em_mode) of the protocol cards is the recorded
trace (``tests/data/protocol_trace.json``), is what the card says, and is the same in both backends."""

from __future__ import annotations

import pytest

from protocol_cards import ADAPTIVE, all_cards, read_card
from protocol_trace import hf_trace, recorded, vllm_trace
from vllm_required import require_vllm

EM_PROCESSOR = "EntropyMinimizationProcessor"
REGENERATE = "regenerate with `python tests/protocol_trace.py {}` if the change is intended"


def _rows() -> dict[str, dict]:
    return {f"{row.key[0]}/{row.key[1]}": row.cells for card in all_cards() for row in read_card(card)}


def _hf_sampling(chain: list[dict]) -> dict:
    """temperature / top_k / top_p a transformers chain applies (1.0 / none / 1.0 where no warper does)."""
    by_name = {p["name"]: p for p in chain}
    return {
        "temperature": by_name.get("TemperatureLogitsWarper", {}).get("temperature", 1.0),
        "top_k": by_name.get("TopKLogitsWarper", {}).get("top_k"),
        "top_p": by_name.get("TopPLogitsWarper", {}).get("top_p", 1.0),
    }


def test_hf_chains_are_the_recorded_ones_and_what_the_cards_say() -> None:
    live, rows = hf_trace(), _rows()
    assert live.keys() == rows.keys()
    assert live == recorded()["hf"], REGENERATE.format("hf")
    for key, chain in live.items():
        card = rows[key]
        names = [p["name"] for p in chain]
        expected = [EM_PROCESSOR]
        if card["temperature"] not in (ADAPTIVE, 1.0):
            expected.append("TemperatureLogitsWarper")
        if card["top_k"]:
            expected.append("TopKLogitsWarper")
        if card["top_p"] not in (None, 1.0):
            expected.append("TopPLogitsWarper")
        # EM-INF first; nothing from the model's generation_config (repetition penalty, top-k 20, top-p 0.8)
        assert names == expected, (key, names)
        assert chain[0]["em_mode"] == key.split("/")[1]
        sampling = _hf_sampling(chain)
        assert sampling["temperature"] == (1.0 if card["temperature"] == ADAPTIVE else card["temperature"]), key
        assert (sampling["top_k"], sampling["top_p"]) == (card["top_k"], card["top_p"] or 1.0), key


@pytest.mark.vllm
def test_vllm_sampling_params_are_the_recorded_ones_and_what_the_cards_say() -> None:
    require_vllm()
    live, rows = vllm_trace(), _rows()
    assert live == recorded()["vllm"], REGENERATE.format("vllm")
    for key, params in live.items():
        card = rows[key]
        assert params["extra_args"]["em_mode"] == key.split("/")[1]
        assert params["temperature"] == (1.0 if card["temperature"] == ADAPTIVE else card["temperature"]), key
        assert params["top_p"] == (card["top_p"] or 1.0), key
        assert params["top_k"] == card["top_k"] if card["top_k"] else params["top_k"] in (0, -1), key
        assert params["stop"] == list(card["until"] or ()) and params["max_tokens"] == card["max_gen_toks"], key
        assert (params["repetition_penalty"], params["presence_penalty"], params["min_p"]) == (1.0, 0.0, 0.0), key


def test_both_backends_sample_alike_in_the_recorded_trace() -> None:
    trace = recorded()
    assert trace["hf"].keys() == trace["vllm"].keys() == _rows().keys()
    for key, chain in trace["hf"].items():
        params = trace["vllm"][key]
        sampling = _hf_sampling(chain)
        assert sampling["temperature"] == params["temperature"], key
        assert sampling["top_p"] == params["top_p"], key
        assert (sampling["top_k"] or 0) == max(params["top_k"], 0), key
        assert chain[0]["em_mode"] == params["extra_args"]["em_mode"], key
