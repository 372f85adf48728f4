"""``em_inf``: lm-eval's HF backend with EM-INF (or adaptive temperature) decoding.

A small ``HFLM`` subclass in the manner of lm-eval's ``hf_steered.py``: it takes the
``em_*``, ``decode_*`` and ``preset`` model args out before the model loads (see
:mod:`em_eval.backends.generation`), then adds one ``LogitsProcessor`` to every ``generate``
call. Everything else is ``--model hf``.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm.auto import tqdm
from transformers import LogitsProcessorList

from em_eval.backends.generation import EmGenerationMixin
from em_eval.backends.hf_processor import EntropyMinimizationProcessor
from em_eval.models.checkpoint_format import checkpoint_info
from em_eval.models.presets import hub_load_error
from em_eval.models.stop_tokens import stop_token_ids
from em_eval.decoding.sampling import is_sampling
from em_eval.em_inf.settings import EmSettings
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
        args = self._take_em_args(pretrained, kwargs)
        _refuse_near_misses(args)
        self._em_checkpoint = checkpoint_info(args.get("peft") or args.get("pretrained"))
        try:
            super().__init__(**args)
        except OSError as exc:
            short = hub_load_error(args.get("pretrained"), "pretrained", exc)
            if short is None:
                raise
            raise short from exc

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any):
        settings = EmSettings.pop_from(generation_kwargs, base=self.em_settings)
        self._warn_if_greedy(settings, generation_kwargs)
        if not is_sampling(generation_kwargs):  # the task's sampling knobs would make transformers warn
            for knob in ("top_k", "top_p", "min_p"):
                generation_kwargs.pop(knob, None)
            generation_kwargs.update(do_sample=False, temperature=0.0)
        processor = EntropyMinimizationProcessor(settings, stop_token_ids(self.tokenizer, self.model, with_pad=True),
                                                 compile=self.em_compile)
        extra = list(generation_kwargs.pop("logits_processor", None) or [])
        # lm-eval's bar moves once a whole batch is done; this one shows the batch's tokens meanwhile
        tokens = tqdm(total=max_length - context.shape[1], desc="tokens of this batch", unit="tok", leave=False,
                      disable=not self._token_progress)
        generation_kwargs["logits_processor"] = LogitsProcessorList([processor, *extra, _TokenTicker(tokens)])
        start = time.perf_counter()
        try:
            out = super()._model_generate(context, max_length, stop, **generation_kwargs)
        finally:
            tokens.close()
        if self._router is not None:
            self._router.add_batch(processor.row_telemetry(time.perf_counter() - start))
        return out

    def get_model_info(self) -> dict[str, Any]:
        info = {**HFLM.get_model_info(self), **super().get_model_info()}
        info["em_settings"]["em_compile"] = self.em_compile
        return info


class _TokenTicker:
    """A logits processor that leaves the scores alone and ticks a progress bar per generated token."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.bar.update()
        return scores


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
