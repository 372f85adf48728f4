"""``em_inf_api``: lm-eval's ``local-completions`` against a vLLM server that runs em-eval's processor.

Start the server with ``em-eval serve MODEL`` (see :mod:`em_eval.serving.server`), then
``lm_eval --model em_inf_api --model_args base_url=http://HOST:PORT,num_concurrent=32,em_mode=em_inf``.
Model args: those of ``local-completions`` (``model`` defaults to the server's model, ``max_length``
to its ``max_model_len``), the ``em_*`` fields of :class:`EmSettings`, ``decode_method``/``decode_n``,
``journal=PATH|off`` and ``telemetry=true|false``.

Unlike ``local-completions``, every request carries its own sampler seed, derived from (seed,
task, document, repeat, prompt) (:func:`em_eval.serving.protocol.request_seed`), so the repeats of
an ``_n16`` task are independent and a rerun draws the same samples; the EM settings travel as
``vllm_xargs``. Decode methods and multi-step tasks run here, in the client. Finished responses go
to a journal as they arrive (:mod:`em_eval.serving.journal`): after a server failure the run ends
with one error, and the same command resumes it. Telemetry is read from the server's
``/collective_rpc`` endpoint (``em-eval serve`` opens it); without it, records say
``"telemetry": "missing"`` rather than carry numbers that were not measured.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests as http
from lm_eval.api.registry import register_model
from lm_eval.models.api_models import TemplateAPI
from lm_eval.models.openai_completions import LocalCompletionsAPI
from lm_eval.models.utils import postprocess_generated_text
from tqdm import tqdm

from em_eval.backends.generation import EmGenerationMixin
from em_eval.backends.run_spec import take_run_spec
from em_eval.backends.vllm_processor import TAG_KEY, TELEMETRY_RPC
from em_eval.em_inf.settings import EmSettings
from em_eval.records import Generated, telemetry_record
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
from em_eval.user_errors import ArgumentNameError, ArgumentValueError, UserError, did_you_mean

log = logging.getLogger(__name__)

TELEMETRY_CHUNK = 16  # finished requests whose telemetry is read back in one RPC (what a dying server loses)
SERVE_HINT = "start one with: em-eval serve MODEL --port 8000"


class ServerError(UserError, RuntimeError):
    """The server refused a request, or stopped answering."""


class _Failed(Exception):
    """One request's failure among the concurrent ones; ``refused``: the server said no (HTTP 4xx)."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class _Job:
    """One request to send: its payload, its journal key and what its telemetry record needs."""

    payload: dict[str, Any]
    key: str
    mode: str
    until: list[str]


def completions_url(base_url: str) -> str:
    """``base_url`` as lm-eval's API models take it (``.../v1/completions``); a bare server address
    (``http://host:8000``) gets that path added."""
    url = str(base_url).rstrip("/")
    if url.endswith("/completions"):
        return url
    return url + ("/completions" if url.endswith("/v1") else "/v1/completions")


def served_model(base_url: str, model: str | None, timeout: float) -> dict[str, Any]:
    """The server's entry for ``model`` in ``/v1/models`` (its only model when ``model`` is None)."""
    url = server_root(base_url) + "/v1/models"
    try:
        response = http.get(url, timeout=timeout)
        response.raise_for_status()
        served = response.json().get("data") or []
    except (http.RequestException, ValueError) as exc:
        raise ServerError(f"em_inf_api: no server answers at {url} ({type(exc).__name__}); {SERVE_HINT}") from exc
    names = [m.get("id") for m in served]
    if model is None and len(served) == 1:
        return served[0]
    found = [m for m in served if m.get("id") == model]
    if not found:
        raise ArgumentValueError(
            f"em_inf_api: the server at {url} serves {', '.join(map(str, names))}, not "
            f"{model!r}; pass model=<one of these>"
        )
    return found[0]


def refuse_unknown_args(args: dict[str, Any]) -> None:
    """lm-eval's API models ignore model args they do not know (``num_concurent=32`` would run
    one request at a time): refuse them, naming the closest known one."""
    known = {
        p
        for cls in (TemplateAPI, LocalCompletionsAPI, ServedCompletions)
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", "kwargs")
    }
    known |= {"device", "max_batch_size"}  # what lm-eval's CLI passes to every model
    for key in args:
        if key not in known:
            raise ArgumentNameError(
                f"em_inf_api: unknown model argument {key!r}{did_you_mean(key, known)}; known: "
                f"{', '.join(sorted(known))}, em_*, decode_method, decode_n"
            )


class ServedCompletions(LocalCompletionsAPI):
    """lm-eval's ``local-completions`` whose batch generation (``_generate_ready``, what em-eval's
    ``generate_until`` calls) sends one request per prompt, ``num_concurrent`` at a time, each with its
    own seed and EM settings, journaled as it ends."""

    def __init__(self, *, journal: Any = None, telemetry: Any = True, **kwargs: Any) -> None:
        kwargs["base_url"] = completions_url(kwargs["base_url"])
        info = served_model(kwargs["base_url"], kwargs.get("model") or kwargs.get("pretrained"), 30)
        kwargs.setdefault("model", info["id"])
        if kwargs.get("max_length") is None and info.get("max_model_len"):
            kwargs["max_length"] = int(info["max_model_len"])
        kwargs.setdefault("tokenizer_backend", "huggingface")
        super().__init__(**kwargs)
        self.journal = Journal(journal_path(journal, self.model))
        self._telemetry = str(telemetry).lower() not in ("false", "0", "off", "no")
        self._tag_count = 0
        self._pending: list[tuple[str, str]] = []  # (tag, journal key) finished, telemetry not yet read

    @property
    def max_gen_toks(self) -> int:
        return self._max_gen_toks

    def _generate_ready(self, requests: list[Any], disable_tqdm: bool) -> list[Generated]:
        """Each response with its telemetry row, in the requests' order."""
        eos = self.tokenizer.decode(self.eot_token_id) or self.tokenizer.eos_token
        repeats = repeat_indices((r.task_name, r.doc_id, r.idx, r.args[0]) for r in requests)
        jobs = [self._job(req, repeat, eos) for req, repeat in zip(requests, repeats, strict=True)]
        reused = sum(self.journal.get(job.key) is not None for job in jobs)
        if reused:
            log.warning(
                "em_inf_api: %d of %d responses come from the journal %s (journal=off regenerates them)",
                reused,
                len(jobs),
                self.journal.path,
            )
        asyncio.run(self._send_all([job for job in jobs if self.journal.get(job.key) is None], disable_tqdm))
        out = []
        for req, job in zip(requests, jobs, strict=True):
            entry = self.journal.get(job.key)
            text = postprocess_generated_text(entry["text"], job.until, None)
            self.cache_hook.add_partial("generate_until", (req.args[0], req.args[1]), text)
            out.append(Generated(text, (self._telemetry_row(job, entry),)))
        return out

    def _job(self, req: Any, repeat: int, eos: str | None) -> _Job:
        context, gen_kwargs = req.args[0], dict(req.args[1])
        settings = EmSettings.pop_from(gen_kwargs, base=self.run_spec.settings)
        base_seed = gen_kwargs.pop("seed", self._seed)
        sampling, until, max_tokens = sampling_args(gen_kwargs, eos, self._max_gen_toks)
        prompt = self.tok_encode(context, add_special_tokens=self.add_bos_token)
        seed = request_seed(base_seed, req.task_name, req.doc_id, repeat, context)
        payload = completion_payload(self.model, prompt, sampling, until, max_tokens, seed, settings.as_args())
        return _Job(payload, journal_key(payload), settings.mode, until)

    def _telemetry_row(self, job: _Job, entry: dict[str, Any]) -> dict[str, Any]:
        """The response's telemetry record; its "batch" is the request itself (wall time: its latency)."""
        sums = entry.get("telemetry")
        record = telemetry_record(job.mode, int(entry.get("tokens", -1)), sums, float(entry.get("wall_s", 0.0)), 1)
        if sums is None:
            record["telemetry"] = "missing"
        return record

    # ---- the wire ------------------------------------------------------------------------
    async def _send_all(self, jobs: list[_Job], disable_tqdm: bool) -> None:
        if not jobs:
            return
        semaphore = asyncio.Semaphore(max(1, self._concurrent))
        bar = tqdm(total=len(jobs), desc="Requesting the server", disable=disable_tqdm)
        connector = aiohttp.TCPConnector(limit=max(1, self._concurrent))
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
        ) as session:
            tasks = [asyncio.ensure_future(self._send(session, semaphore, job, bar)) for job in jobs]
            try:
                await asyncio.gather(*tasks)
            except _Failed as failed:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                done = sum(self.journal.get(job.key) is not None for job in jobs)
                raise self._stopped(failed, done, len(jobs)) from None
            finally:
                bar.close()
            await self._read_telemetry(session)

    async def _send(self, session: aiohttp.ClientSession, semaphore: asyncio.Semaphore, job: _Job, bar: tqdm) -> None:
        self._tag_count += 1
        tag = f"{id(self):x}-{self._tag_count}"
        payload = {**job.payload, "vllm_xargs": {**job.payload["vllm_xargs"], TAG_KEY: tag}}
        last = ""
        for attempt in range(max(1, self.max_retries)):
            if attempt:
                await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
            try:
                async with semaphore:
                    start = time.perf_counter()
                    async with session.post(self.base_url, json=payload) as response:
                        body = await response.text()
                        status = response.status
                    wall_s = time.perf_counter() - start
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if status == 200:
                text, tokens = completion_text(json.loads(body))
                self.journal.add(job.key, text=text, tokens=tokens, wall_s=round(wall_s, 4))
                bar.update(1)
                self._pending.append((tag, job.key))
                if len(self._pending) >= TELEMETRY_CHUNK:
                    await self._read_telemetry(session)
                return
            if 400 <= status < 500:
                raise _Failed(
                    f"em_inf_api: the server at {self.base_url} refused a request: {error_message(status, body)}",
                    refused=True,
                )
            last = error_message(status, body)
        raise _Failed(last, refused=False)

    def _stopped(self, error: _Failed, done: int, total: int) -> ServerError:
        """The run's one error: what happened, what was kept, how to go on."""
        if error.refused:
            return ServerError(str(error))
        kept = f"kept in the journal {self.journal.path}" if self.journal.path else "not kept (journal=off)"
        return ServerError(
            f"em_inf_api: the server at {self.base_url} stopped answering ({error}) after {self.max_retries} "
            f"tries; {done} of the {total} responses this step asked for were finished and are {kept}. Restart the "
            "server and run the same command again: finished responses are read back, not regenerated"
        )

    async def _read_telemetry(self, session: aiohttp.ClientSession) -> None:
        """Read the processors' sums of the finished requests (one ``/collective_rpc`` call) into
        the journal; after a failure, say once that records carry ``telemetry: missing``."""
        pending, self._pending = self._pending, []
        if not pending or not self._telemetry:
            return
        url = server_root(self.base_url) + "/collective_rpc"
        body = {"method": TELEMETRY_RPC, "args": [[tag for tag, _ in pending]]}
        try:
            async with session.post(url, json=body) as response:
                text = await response.text()
                ok = response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            ok, text = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            self._telemetry = False
            log.warning(
                "em_inf_api: the server gives no entropy telemetry (%s: %s); records say telemetry: missing. "
                "Serve with em-eval serve (it sets VLLM_SERVER_DEV_MODE=1 and em-eval's worker extension)",
                url,
                text.strip()[:200],
            )
            return
        found: dict[str, dict[str, float]] = {}
        for worker in json.loads(text).get("results") or []:
            for tag, sums in (worker or {}).items():
                found.setdefault(tag, sums)  # tensor-parallel ranks see the same rows
        for tag, key in pending:
            if tag in found:
                self.journal.add(key, telemetry=found[tag])


@register_model("em_inf_api")
class EmInfAPI(EmGenerationMixin, ServedCompletions):
    """``local-completions`` with em-eval's settings, seeds, decode methods and multi-step tasks."""

    MODEL_NAME = "em_inf_api"

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        if not base_url:
            raise ArgumentValueError(f"em_inf_api needs base_url=http://HOST:PORT of a vLLM server; {SERVE_HINT}")
        spec, args = take_run_spec(None, kwargs)
        refuse_unknown_args(args)
        self._start_run(spec)
        super().__init__(base_url=base_url, **args)

    def get_model_info(self) -> dict[str, Any]:
        return {
            **super().get_model_info(),
            "served": {"base_url": self.base_url, "model": self.model, "journal": str(self.journal.path)},
        }
