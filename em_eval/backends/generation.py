"""What the em-eval backends add to an lm-eval model class.

``EmGenerationMixin`` goes first in the bases (``class EmInfLM(EmGenerationMixin, HFLM)``): its
``generate_until`` replaces lm-eval's, its ``get_model_info`` adds to lm-eval's. It runs what the
backend's run spec says (:class:`~em_eval.backends.run_spec.RunSpec`: the ``preset``, ``em_*`` and
``decode_*`` args), routes generation through the multi-step protocol and the baselines, resolves
each request's sampling (:mod:`em_eval.backends.effective_sampling`), fits its budget and prompt to
the context and hands the fitted requests to the backend's batch generation,
``_generate_ready(requests, disable_tqdm) -> list[Generated]``: each response with its telemetry,
in the requests' order, lm-eval's cache hook called for each response as lm-eval's own
``generate_until`` calls it. The telemetry is written into the request once
(:func:`em_eval.records.write_samples`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Callable

from lm_eval.models.utils import Collator
from tqdm import tqdm

import em_eval
from em_eval.backends.effective_sampling import (
    Resolved,
    effective_sampling,
    fit_prompt,
    resolve,
)
from em_eval.backends.run_spec import RunSpec
from em_eval.decoding.methods import generate_with_method
from em_eval.decoding.multistep import generate_until_with_steps
from em_eval.decoding.sampling import is_sampling
from em_eval.decoding.task_hooks import task_metadata
from em_eval.em_inf.settings import EmSettings
from em_eval.records import Generated, write_samples
from em_eval.user_errors import ArgumentValueError

log = logging.getLogger(__name__)

GREEDY_WARNING = (
    "decoding is greedy, and EM-INF keeps the argmax of every token, so outputs equal plain greedy "
    "decoding. The paper's recipe samples after EM-INF at temperature 0.1: --gen_kwargs do_sample=true,temperature=0.1"
)

CACHE_WARNING = (
    "--use_cache stores responses but never reuses them with em-eval's backends: each response's telemetry is "
    "written into its request's gen_kwargs, which lm-eval hashes after generation, so every run generates again"
)


class EmGenerationMixin:
    """Shared by ``em_inf`` (HF), ``em_inf_vllm`` and ``em_inf_api``."""

    MODEL_NAME = ""  # the --model name, in messages

    def _start_run(self, spec: RunSpec) -> None:
        """Hold ``spec`` (see :func:`~em_eval.backends.run_spec.take_run_spec`); nothing warned or recorded yet."""
        self.run_spec = spec
        self._warned_greedy = self._warned_replaced = self._warned_nonfinite = self._warned_cache = False
        self._effective: dict[str, dict[str, Any]] = {}  # task -> effective_sampling, for the results
        self._checked_chat_template = False
        self._token_progress = True  # a backend's own per-token bar (set per generate_until call)

    def _warn_if_greedy(self, settings: EmSettings, gen_kwargs: dict[str, Any]) -> None:
        """Once per model: EM-INF without sampling changes nothing."""
        if settings.mode != "off" and not is_sampling(gen_kwargs) and not self._warned_greedy:
            self._warned_greedy = True
            log.warning("%s: %s", self.MODEL_NAME, GREEDY_WARNING)

    def _warn_if_chat_template_unused(self, requests: list[Any]) -> None:
        """Once per model: an instruct model on em-eval's tasks without its chat template answers
        empty or off-format and scores 0 without a word, so say what to add; a task that reproduces the
        paper's raw prompt (``metadata.chat_template: false``) run with the template says the opposite."""
        if self._checked_chat_template:
            return
        self._checked_chat_template = True
        ours = [
            r for r in requests if str(getattr(r, "task_name", "") or "").startswith(("em_", "scicode", "leetcode"))
        ]
        marker = _assistant_marker(getattr(self, "tokenizer", None))
        if not ours or not marker:
            return
        raw = [r for r in ours if task_metadata(r.task_name).get("chat_template") is False]
        templated = [r for r in ours if r not in raw]
        if templated and not any(marker in str(r.args[0]) for r in templated):
            log.warning(
                "%s: the model has a chat template, but the prompts of %s do not use it; instruct models "
                "then often answer empty or off-format. Add --apply_chat_template (and, for the paper's "
                "protocol, keep the task's system prompt)",
                self.MODEL_NAME,
                templated[0].task_name,
            )
        if raw and any(marker in str(r.args[0]) for r in raw):
            log.warning(
                "%s: %s reproduces the paper's raw prompt (no chat template), but its prompts use the "
                "model's chat template; run it without --apply_chat_template",
                self.MODEL_NAME,
                raw[0].task_name,
            )

    def get_model_info(self) -> dict[str, Any]:
        """What a results file needs to reproduce the run: the lm-eval backend's model info (where it
        has any), then versions, settings, sources, checkpoint."""
        backend_info = getattr(super(), "get_model_info", None)
        return {
            **(backend_info() if backend_info is not None else {}),
            "em_eval_version": em_eval.__version__,
            "em_settings": self.run_spec.settings.as_args(),
            "em_model_source": self.run_spec.source,
            "decode_method": self.run_spec.decode.as_args(),
            "em_checkpoint": self.run_spec.checkpoint,  # trained checkpoint and step, if any
            "effective_sampling": dict(self._effective),  # per task, see effective_sampling()
        }

    def _warn_if_cache_unused(self) -> None:
        """Once per model: lm-eval's ``--use_cache`` (a ``CacheHook`` with a database) never hits here."""
        if not self._warned_cache and getattr(getattr(self, "cache_hook", None), "dbdict", None) is not None:
            self._warned_cache = True
            log.warning("%s: %s", self.MODEL_NAME, CACHE_WARNING)

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self._token_progress = not disable_tqdm
        self._warn_if_cache_unused()
        eos_token = getattr(getattr(self, "tokenizer", None), "eos_token", None)

        def plain(reqs: list[Any], quiet: bool = False) -> list[Generated]:
            return generate_with_method(
                self.run_spec.decode,
                reqs,
                lambda r: self._generate_plain(r, disable_tqdm or quiet),
                eos_token=eos_token,
            )

        generated = generate_until_with_steps(
            requests, plain, lambda reqs: plain(reqs, quiet=True), progress=not disable_tqdm
        )
        return write_samples(requests, generated)

    def _generate_plain(self, requests: list[Any], disable_tqdm: bool) -> list[Generated]:
        """The backend's generation of ``requests``, each resolved (see :mod:`effective_sampling`) and fitted
        to the context, with its telemetry."""
        self._warn_if_chat_template_unused(requests)
        plans = [self._plan(req) for req in requests]
        ready = [plan.request for plan in plans if plan.request is not None]
        answers = iter(self._generate_ready(ready, disable_tqdm) if ready else [])
        out = []
        for req, plan in zip(requests, plans, strict=True):
            if plan.request is None:  # skipped: empty, its record says why
                out.append(Generated("", (dict(plan.notes),)))
                continue
            answer = next(answers)
            out.append(Generated(answer.text, tuple({**record, **plan.notes} for record in answer.telemetry)))
            self._warn_if_nonfinite(req, out[-1].telemetry)
        return out

    def _plan(self, req: Any) -> "_Plan":
        """The request the backend runs for ``req``: resolved gen_kwargs, its budget, its prompt fitted."""
        context, gen_kwargs = req.args[0], req.args[1]
        resolved = resolve(gen_kwargs, self.run_spec.settings)
        self._note_sampling(req, gen_kwargs, resolved)
        kwargs = resolved.gen_kwargs
        wanted = int(kwargs.get("max_gen_toks") or self.max_gen_toks)
        tokens = len(self.tok_encode(context))
        budget, kept = fit_prompt(tokens, wanted, resolved.max_context, self.max_length)
        notes: dict[str, Any] = {"max_gen_toks": budget}
        if kept < tokens:
            limit = min(self.max_length, resolved.max_context or self.max_length)
            where = (self.MODEL_NAME, getattr(req, "task_name", None), getattr(req, "doc_id", None), tokens, limit)
            if resolved.prompt_overflow == "empty":
                log.warning(
                    "%s: task %s doc %s: a prompt of %d tokens does not fit the context of %d tokens; "
                    "answering it with an empty response (prompt_overflow=empty)",
                    *where,
                )
                return _Plan(
                    None,
                    {
                        "em_mode": resolved.settings.mode,
                        "gen_tokens": 0,
                        "max_gen_toks": 0,
                        "prompt_skipped": {"prompt_tokens": tokens, "context": limit},
                    },
                )
            context, kept = self._left_truncate(context, kept)
            notes["prompt_truncated"] = {"prompt_tokens": tokens, "kept_tokens": kept}
            log.warning(
                "%s: task %s doc %s: a prompt of %d tokens does not fit the context of %d tokens; "
                "keeping its last %d tokens and generating at most %d",
                *where,
                kept,
                budget,
            )
        if isinstance(gen_kwargs, dict) and budget != gen_kwargs.get("max_gen_toks"):
            gen_kwargs["max_gen_toks"] = budget  # the logged sample shows the budget that ran
        clone = copy.copy(req)
        clone.arguments = (context, {**kwargs, "max_gen_toks": budget}, *req.args[2:])
        return _Plan(clone, notes)

    def _left_truncate(self, context: str, keep: int) -> tuple[str, int]:
        """The end of ``context`` in at most ``keep`` tokens (as the backend encodes it), and its length."""
        ids = self.tok_encode(context, add_special_tokens=False)
        take = keep
        while take > 0:
            text = self.tokenizer.decode(ids[-take:], skip_special_tokens=False)
            length = len(self.tok_encode(text))
            if length <= keep:
                return text, length
            take -= length - keep  # re-tokenisation merged differently (or added a BOS): drop the excess
        raise ArgumentValueError(f"cannot fit any of a prompt into {keep} tokens")

    def _warn_if_nonfinite(self, req: Any, telemetry: tuple[dict[str, Any], ...]) -> None:
        """Once per model: NaN/inf logits ended a response."""
        bad = [rec["nonfinite_logits"] for rec in telemetry if rec.get("nonfinite_logits")]
        if bad and not self._warned_nonfinite:
            self._warned_nonfinite = True
            log.warning(
                "%s: task %s doc %s: the model produced NaN/inf logits at %d token(s); the response was "
                "ended there (EOS) and its telemetry records nonfinite_logits. This is usually an fp16 "
                "overflow or a corrupt checkpoint: try dtype=bfloat16 or dtype=float32, or check the "
                "weights (warned once)",
                self.MODEL_NAME,
                getattr(req, "task_name", None),
                getattr(req, "doc_id", None),
                sum(bad),
            )

    def _note_sampling(self, req: Any, gen_kwargs: dict[str, Any], resolved: Resolved) -> None:
        """Keep each task's effective sampling for the results; say once what adaptive_temp replaces."""
        task = str(getattr(req, "task_name", None))
        if task not in self._effective:
            self._effective[task] = effective_sampling(gen_kwargs, self.run_spec.settings, self.max_gen_toks)
        if resolved.replaced_temperature is not None and not self._warned_replaced:
            self._warned_replaced = True
            log.warning(
                "%s: em_mode=adaptive_temp: the adaptive temperature replaces temperature=%g (the sampler "
                "runs at temperature 1 after it, as in the paper); recorded under effective_sampling",
                self.MODEL_NAME,
                resolved.replaced_temperature,
            )


def run_batches(
    batches: Collator,
    size: int,
    batch_fn: Callable[[int, Any], int] | None,
    generate_batch: Callable[[list[Any]], list[Generated]],
    progress: bool,
) -> list[Generated]:
    """lm-eval's batch loop: ``generate_batch`` on each batch of ``batches`` (``size`` requests, or as
    many as ``batch_fn`` says), the results put back in the requests' order."""
    bar = tqdm(total=len(batches), disable=not progress, desc="Running generate_until requests")
    out: list[Generated] = []
    for batch in batches.get_batched(n=size, batch_fn=batch_fn):
        out.extend(generate_batch(batch))
        bar.update(len(batch))
    bar.close()
    return batches.get_original(out)


@dataclass(frozen=True)
class _Plan:
    request: Any  # the copy the backend runs; None: not run (prompt_overflow=empty), the response is empty
    notes: dict[str, Any]  # added to its telemetry record (the whole record when not run)


def _assistant_marker(tokenizer: Any) -> str | None:
    """The text a chat template puts before the assistant's answer (``<|im_start|>assistant``), if any."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None
    probe = "em-eval-probe-7c1"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": probe}], tokenize=False, add_generation_prompt=True
        )
    except Exception:  # a template that needs more than one user turn: no check
        return None
    tail = str(text).split(probe, 1)[-1].strip()
    return tail or None
