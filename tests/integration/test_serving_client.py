"""``em_inf_api`` against a small stand-in for vLLM's OpenAI server (a thread here, no vLLM): what
each request carries, telemetry missing when the server has none, a server that dies mid-run, and
the same run resumed from the journal without regenerating what was finished."""

from __future__ import annotations

import importlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lm_eval.api.instance import Instance

from em_eval.backends.vllm_processor import TAG_KEY
from em_eval.records import TELEMETRY_KEY


class FakeServer:
    """Answers ``/v1/models`` and ``/v1/completions`` (text ``s<seed>``) for ``limit`` completions,
    then stops listening; ``/collective_rpc`` is absent (no dev mode): 404."""

    def __init__(self, limit: int = 10**6) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.limit = limit
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(200, {"data": [{"id": "served-m", "max_model_len": 512}]})

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/completions":
                    return self._reply(404, {"detail": "Not Found"})
                if "em_treshold" in payload["vllm_xargs"]:
                    return self._reply(400, {"error": {"message": "unknown EM argument 'em_treshold'"}})
                if len(fake.payloads) >= fake.limit:
                    threading.Thread(target=fake.stop).start()
                    return self._reply(500, {"error": {"message": "EngineCore encountered an issue"}})
                fake.payloads.append(payload)
                self._reply(
                    200, {"choices": [{"index": 0, "text": f"s{payload['seed']}"}], "usage": {"completion_tokens": 2}}
                )

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def requests_n(repeats: int, gen_kwargs: dict[str, Any] | None = None) -> list[Instance]:
    """Two documents, each repeated as lm-eval repeats an ``_n16`` request (the same instance)."""
    kwargs = {"until": [], "do_sample": True, "temperature": 1.0, "max_gen_toks": 4, **(gen_kwargs or {})}
    docs = [
        Instance(
            "generate_until", {"i": i}, (f"Question {i}?", dict(kwargs)), idx=0, metadata=("em_aime_n16", i, repeats)
        )
        for i in range(2)
    ]
    return [doc for doc in docs for _ in range(repeats)]


def model(url: str, journal: Path | str, smollm2_dir: Path, **kwargs: Any) -> Any:
    from em_eval.serving.client import EmInfAPI

    return EmInfAPI(base_url=url, tokenizer=str(smollm2_dir), journal=str(journal), max_retries=1, **kwargs)


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.stop()


def test_each_repeat_has_its_own_seed_and_the_settings_travel_as_vllm_xargs(server, smollm2_dir, tmp_path) -> None:
    lm = model(server.url, "off", smollm2_dir, num_concurrent=4, em_mode="em_inf", em_threshold=0.4)
    reqs = requests_n(4)
    texts = lm.generate_until(reqs)
    assert len(set(texts)) == 8  # 2 documents x 4 repeats, all drawn apart
    assert {p["model"] for p in server.payloads} == {"served-m"}
    xargs = server.payloads[0]["vllm_xargs"]
    assert xargs["em_mode"] == "em_inf" and xargs["em_threshold"] == 0.4 and TAG_KEY in xargs
    records = reqs[0].args[1][TELEMETRY_KEY]  # the server has no telemetry endpoint: said so, no numbers
    assert len(records) == 4 and all(r["telemetry"] == "missing" and "entropy_after" not in r for r in records)
    again = model(server.url, "off", smollm2_dir, num_concurrent=1, em_mode="em_inf", em_threshold=0.4)
    assert again.generate_until(requests_n(4)) == texts  # the same draws, whatever the concurrency


def test_a_refused_request_is_one_error_with_the_servers_words(server, smollm2_dir) -> None:
    from em_eval.serving.client import ServerError

    lm = model(server.url, "off", smollm2_dir)
    reqs = requests_n(1)
    lm._job = _with_xargs(lm._job, {"em_treshold": 0.3})
    with pytest.raises(ServerError, match="refused a request: HTTP 400: unknown EM argument 'em_treshold'"):
        lm.generate_until(reqs)


def test_a_misspelt_model_arg_is_refused_not_ignored(server, smollm2_dir) -> None:
    from em_eval.user_errors import ArgumentNameError

    with pytest.raises(ArgumentNameError, match="argument 'num_concurent' .did you mean 'num_concurrent'"):
        model(server.url, "off", smollm2_dir, num_concurent=8)


def _with_xargs(job_fn: Any, extra: dict[str, Any]) -> Any:
    def job(*args: Any) -> Any:
        made = job_fn(*args)
        made.payload["vllm_xargs"].update(extra)
        return made

    return job


def test_a_server_that_dies_mid_run_ends_it_and_the_rerun_resumes(smollm2_dir, tmp_path) -> None:
    from em_eval.serving.client import ServerError

    journal = tmp_path / "journal.jsonl"
    dying = FakeServer(limit=5)
    lm = model(dying.url, journal, smollm2_dir, num_concurrent=1)
    with pytest.raises(ServerError) as failed:
        lm.generate_until(requests_n(4))
    message = str(failed.value)
    assert "stopped answering" in message and "5 of the 8 responses" in message and str(journal) in message
    assert "run the same command again" in message

    revived = FakeServer()
    try:
        lm = model(revived.url, journal, smollm2_dir, num_concurrent=3)
        texts = lm.generate_until(requests_n(4))
    finally:
        revived.stop()
    assert len(revived.payloads) == 3  # only what was not finished
    first = {p["seed"] for p in dying.payloads}
    assert {int(t[1:]) for t in texts} == first | {p["seed"] for p in revived.payloads} and len(set(texts)) == 8


def test_lm_evals_own_api_models_refuse_em_eval_protocol_keys() -> None:
    """``local-completions`` would send ``by_em_mode`` on to the server and one seed for all repeats."""
    from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI

    from em_eval import plugin
    from em_eval.user_errors import ArgumentValueError

    plugin.on_backend_imported(importlib.import_module(LocalCompletionsAPI.__module__))
    reqs = requests_n(2, {"by_em_mode": {"em_inf": {"until": []}}})
    for cls in (LocalCompletionsAPI, LocalChatCompletion):
        with pytest.raises(ArgumentValueError, match="em_aime_n16 sets by_em_mode.*--model em_inf_api"):
            cls.generate_until(cls.__new__(cls), reqs)
