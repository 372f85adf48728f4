"""``em_inf``: lm-eval's HF backend with EM-INF (or adaptive temperature) decoding.

A small ``HFLM`` subclass in the manner of lm-eval's ``hf_steered.py``: it takes the
``em_*``, ``decode_*`` and ``preset`` model args out before the model loads (see
:mod:`em_eval.backends.generation`), then adds one ``LogitsProcessor`` to every ``generate``
call. Sampling comes from the request's gen_kwargs alone: the model's ``generation_config`` is
set aside during ``generate`` (see :mod:`em_eval.backends.hf_config`). Everything else is ``--model hf``.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import replace
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import Collator, handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm.auto import tqdm
from transformers import LogitsProcessorList

from em_eval.backends.generation import EmGenerationMixin, run_batches
from em_eval.backends.hf_config import neutral_generation_config, sampling_from_kwargs_only
from em_eval.backends.hf_processor import EntropyMinimizationProcessor
from em_eval.backends.run_spec import take_run_spec
from em_eval.decoding.sampling import is_sampling
from em_eval.em_inf.settings import EmSettings
from em_eval.models.checkpoint_format import checkpoint_info
from em_eval.models.presets import hub_load_error
from em_eval.models.stop_tokens import stop_token_ids
from em_eval.records import Generated
from em_eval.user_errors import ArgumentNameError, ArgumentValueError, did_you_mean

log = logging.getLogger(__name__)


@register_model("em_inf")
class EmInfLM(EmGenerationMixin, HFLM):
    """HFLM plus per-token entropy minimisation. Model args: ``em_mode``, ``em_threshold``,
    ``em_kl_weight``, ``em_lr``, ``em_steps``, ``em_target_ratio`` (and the other ``em_*``
    fields of :class:`EmSettings`), ``em_compile`` (auto: torch.compile the transform on CUDA),
    ``preset=NAME``, ``decode_method``/``decode_n``; the rest as for ``--model hf``."""

    MODEL_NAME = "em_inf"

    def __init__(self, pretrained: Any = None, em_compile: Any = "auto", **kwargs: Any) -> None:
        self.em_compile = _compile_flag(em_compile)
        spec, args = take_run_spec(pretrained, kwargs)
        _refuse_near_misses(args)
        self._start_run(replace(spec, checkpoint=checkpoint_info(args.get("peft") or args.get("pretrained"))))
        try:
            super().__init__(**args)
        except OSError as exc:
            short = hub_load_error(args.get("pretrained"), "pretrained", exc)
            if short is None:
                raise
            raise short from exc
        self._neutral_generation_config, self._generation_config_dropped = neutral_generation_config(self.model)
        if self._generation_config_dropped:
            log.warning(
                "em_inf: sampling comes from the task's gen_kwargs alone; ignoring what the model's "
                "generation_config would add: %s (recorded as generation_config_dropped)",
                self._generation_config_dropped,
            )

    def _generate_ready(self, requests: list[Any], disable_tqdm: bool) -> list[Generated]:
        """``HFLM.generate_until``'s batches (requests of the same gen_kwargs, longest prompt first)
        through :meth:`_generate_batch`."""
        batches = Collator(
            [req.args for req in requests],
            sort_fn=lambda args: (-len(self.tok_encode(args[0])), args[0]),
            group_by="gen_kwargs",
            group_fn=lambda args: args[1],
        )
        size, batch_fn = self.batch_size, None
        if size == "auto":
            print("Passed argument batch_size = auto. Detecting largest batch size")
            size = self._detect_batch_size()
            print(f"Determined Largest batch size: {size}")
            batch_fn = None if size else self._batch_scheduler
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        progress = not disable_tqdm and self.rank == 0
        return run_batches(batches, size, batch_fn, lambda batch: self._generate_batch(batch, eos), progress)

    def _generate_batch(self, batch: list[tuple[str, dict[str, Any]]], eos: str) -> list[Generated]:
        """One batch of (context, gen_kwargs) sharing its gen_kwargs, as ``HFLM.generate_until`` runs it
        (stop sequences and EOS, budget, left truncation, decoding, cut at the first stop), each response
        with its telemetry row and given to lm-eval's cache hook."""
        contexts, all_gen_kwargs = zip(*batch, strict=True)
        gen_kwargs = all_gen_kwargs[0]
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = kwargs.pop("max_gen_toks")
        causal = self.backend == "causal"
        max_ctx_len = self.max_length - max_gen_toks if causal else self.max_length
        assert max_ctx_len > 0, (
            f"Invalid configuration: requested max tokens to generate ({max_gen_toks}) must be less than "
            f"model's maximum sequence length ({self.max_length})."
        )
        context_enc, attn_masks = self.tok_batch_encode(
            contexts, left_truncate_len=max_ctx_len, truncation=self.truncation
        )
        if "max_length" in kwargs:
            log.warning("`max_length` in generation kwargs. Please use `max_gen_toks` instead.")
        max_length = kwargs.pop("max_length", context_enc.shape[1] + max_gen_toks)
        cont, processor, wall_s = self._generate_measured(
            context_enc.to(self.device), max_length, until, attention_mask=attn_masks.to(self.device), **kwargs
        )
        telemetry = [(row,) for row in processor.row_telemetry(wall_s)] or [()] * len(contexts)  # none: no step ran
        out = []
        for toks, context, records in zip(cont.tolist(), contexts, telemetry, strict=True):
            text = self._response_text(toks[context_enc.shape[1] :] if causal else toks, until)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            out.append(Generated(text, records))
        return out

    def _response_text(self, toks: list[int], until: list[str]) -> str:
        """``HFLM.generate_until``'s text of generated tokens: after the last thinking-end token (an id),
        cut at the first stop sequence (or after a thinking-end string)."""
        think = self.think_end_token
        if isinstance(think, int):
            ends = [i for i, token in enumerate(toks) if token == think]
            toks = toks[ends[-1] + 1 :] if ends else toks
        text = self.tok_decode(toks)
        if isinstance(think, int):
            text = text.lstrip()
        return postprocess_generated_text(
            generation=text, stop=until, think_end_token=think if isinstance(think, str) else None
        )

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any):
        """lm-eval's generation with the EM processor (the demo, traces and benchmarks call it alone)."""
        return self._generate_measured(context, max_length, stop, **generation_kwargs)[0]

    def _generate_measured(
        self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any
    ) -> tuple[torch.Tensor, EntropyMinimizationProcessor, float]:
        """The generated tokens, the EM processor that ran (its ``row_telemetry``) and the wall time."""
        settings = EmSettings.pop_from(generation_kwargs, base=self.run_spec.settings)
        self._warn_if_greedy(settings, generation_kwargs)
        if not is_sampling(generation_kwargs):  # the task's sampling knobs would make transformers warn
            for knob in ("top_k", "top_p", "min_p"):
                generation_kwargs.pop(knob, None)
            generation_kwargs.update(do_sample=False, temperature=0.0)
        else:
            generation_kwargs.setdefault("top_k", 0)  # no top-k unless the task sets one (vLLM's default too)
        # lm-eval's bar moves once a whole batch is done; this one shows the batch's tokens meanwhile
        tokens = tqdm(
            total=max_length - context.shape[1],
            desc="tokens of this batch",
            unit="tok",
            leave=False,
            disable=not self._token_progress,
        )
        processor = EntropyMinimizationProcessor(
            settings,
            stop_token_ids(self.tokenizer, self.model, with_pad=True),
            eos_token_id=self.eot_token_id,
            compile=self.em_compile,
            on_step=tokens.update,
        )
        extra = list(generation_kwargs.pop("logits_processor", None) or [])
        generation_kwargs["logits_processor"] = LogitsProcessorList([processor, *extra])
        start = time.perf_counter()
        try:
            with sampling_from_kwargs_only(self.model, self._neutral_generation_config):
                out = super()._model_generate(context, max_length, stop, **generation_kwargs)
        finally:
            tokens.close()
        return out, processor, time.perf_counter() - start

    def get_model_info(self) -> dict[str, Any]:
        info = super().get_model_info()
        info["em_settings"]["em_compile"] = self.em_compile
        info["generation_config_dropped"] = self._generation_config_dropped
        return info


def _refuse_near_misses(args: dict[str, Any]) -> None:
    """HFLM passes unknown args on to ``from_pretrained``; one that is a near miss of HFLM's own
    (``dtpye=``, ``batchsize=``) is a typo, refused here with the name it missed."""
    named = [p for p in inspect.signature(HFLM.__init__).parameters if p not in ("self", "kwargs")]
    for key in args:
        hint = did_you_mean(key, named) if key not in named else ""
        if hint:
            raise ArgumentNameError(f"unknown model argument {key!r}{hint}")


def _compile_flag(value: Any) -> bool | None:
    """``em_compile``: ``auto`` (torch.compile on CUDA only), ``true`` or ``false``."""
    if value in ("auto", None):
        return None
    if isinstance(value, bool):
        return value
    raise ArgumentValueError(f"em_compile={value!r} must be auto, true or false")
