"""em_eval.serving: what em_inf_api sends and keeps, and the command em-eval serve runs (pure parts)."""

from __future__ import annotations

import json

import pytest

from em_eval.backends.vllm_processor import PROCESSOR, TAG_KEY, WORKER_EXTENSION
from em_eval.serving.journal import Journal, journal_path
from em_eval.serving.protocol import (
    completion_payload,
    completion_text,
    error_message,
    journal_key,
    repeat_indices,
    request_seed,
    sampling_args,
    server_root,
)
from em_eval.serving.server import DEV_MODE, server_command
from em_eval.user_errors import ArgumentValueError


def test_each_repeat_of_a_document_gets_its_own_reproducible_seed() -> None:
    seeds = [request_seed(1234, "em_aime_n16", 3, r, "Q") for r in range(16)]
    assert len(set(seeds)) == 16 and seeds == [request_seed(1234, "em_aime_n16", 3, r, "Q") for r in range(16)]
    others = {
        request_seed(1234, "em_aime_n16", 4, 0, "Q"),
        request_seed(1, "em_aime_n16", 3, 0, "Q"),
        request_seed(1234, "em_aime_n16", 3, 0, "Q2"),
        request_seed(1234, "em_amc_n16", 3, 0, "Q"),
    }
    assert seeds[0] not in others and len(others) == 4
    assert all(0 <= s < 2**31 for s in seeds)


def test_repeat_indices_count_equal_keys_in_order() -> None:
    assert repeat_indices(["a", "b", "a", "a", "b", "c"]) == [0, 0, 1, 2, 1, 0]


def test_sampling_args_follow_lm_evals_vllm_conversion() -> None:
    sampling, until, budget = sampling_args(
        {"until": "\n\n", "do_sample": False, "temperature": 0.7, "max_gen_toks": 32, "top_p": 0.9}, "<eos>", 256
    )
    assert until == ["\n\n", "<eos>"] and budget == 32
    assert sampling == {
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
        "temperature": 0.0,
        "top_p": 0.9,
    }  # do_sample=false: greedy, as lm-eval's vLLM backend
    sampling, until, budget = sampling_args({"do_sample": True, "temperature": 1.0}, None, 64)
    assert (sampling["temperature"], until, budget) == (1.0, [], 64)


def test_the_payload_carries_seed_and_settings_and_its_key_ignores_the_tag() -> None:
    payload = completion_payload("m", [1, 2], {"temperature": 1.0, "seed": 5}, ["x"], 8, 77, {"em_mode": "em_inf"})
    assert payload["seed"] == 77 and payload["prompt"] == [1, 2] and payload["vllm_xargs"] == {"em_mode": "em_inf"}
    tagged = {**payload, "vllm_xargs": {**payload["vllm_xargs"], TAG_KEY: "t1"}}
    assert journal_key(tagged) == journal_key(payload)
    assert journal_key({**payload, "seed": 78}) != journal_key(payload)


def test_responses_and_errors_are_read_as_the_server_wrote_them() -> None:
    assert completion_text({"choices": [{"text": "hi"}], "usage": {"completion_tokens": 3}}) == ("hi", 3)
    with pytest.raises(ValueError, match="one choice"):
        completion_text({"choices": []})
    body = json.dumps({"error": {"message": "unknown EM argument 'em_treshold'", "code": 400}})
    assert error_message(400, body) == "HTTP 400: unknown EM argument 'em_treshold'"
    assert error_message(502, "Bad gateway\n") == "HTTP 502: Bad gateway"
    assert server_root("http://h:8000/v1/completions") == server_root("http://h:8000/") == "http://h:8000"


def test_the_journal_survives_a_line_cut_short(tmp_path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.add("k1", text="a", tokens=2)
    journal.add("k1", telemetry={"tokens": 2})
    journal.add("k2", telemetry={"tokens": 1})  # telemetry without text: not a finished response
    with open(path, "a") as fh:
        fh.write('{"key": "k3", "te')
    again = Journal(path)
    assert again.get("k1") == {"text": "a", "tokens": 2, "telemetry": {"tokens": 2}}
    assert again.get("k2") is None and again.get("k3") is None
    assert journal_path("off", "m") is None and journal_path(None, "org/m").name.startswith("org_m-")


def test_serve_runs_vllm_serve_with_our_processor_and_telemetry() -> None:
    command, env = server_command(["/models/q", "--port", "9000", "-dp", "2"], env={})
    assert command[:7] == ["vllm", "serve", "/models/q", "--port", "9000", "-dp", "2"]
    assert command[command.index("--logits-processors") + 1] == PROCESSOR
    assert command[command.index("--worker-extension-cls") + 1] == WORKER_EXTENSION and env[DEV_MODE] == "1"
    command, env = server_command(["m", "--no-telemetry"], env={})
    assert "--worker-extension-cls" not in command and DEV_MODE not in env and "--no-telemetry" not in command
    with pytest.raises(ArgumentValueError, match="give the model first"):
        server_command(["--port", "1"], env={})
    with pytest.raises(ArgumentValueError, match="sets --logits-processors itself"):
        server_command(["m", "--logits-processors=x:Y"], env={})
