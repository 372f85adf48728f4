"""What both em-eval backends add to an lm-eval model class.

``EmGenerationMixin`` goes first in the bases (``class EmInfLM(EmGenerationMixin, HFLM)``), so
its ``super()`` calls reach lm-eval's own generation. It takes the ``preset``, ``em_*`` and
``decode_*`` args out, routes generation through the multi-step protocol and the baselines,
fits the generation budget to the context and attaches per-sample telemetry.
"""

from __future__ import annotations

import logging
from typing import Any

import em_eval
from em_eval.decoding.sampling import is_sampling
from em_eval.records import RecordingCacheHook, TelemetryRouter
from em_eval.decoding.methods import generate_with_method, pop_method_args
from em_eval.em_inf.settings import EmSettings
from em_eval.decoding.multistep import generate_until_with_steps
from em_eval.models.presets import resolve_model_args
from em_eval.user_errors import ArgumentValueError

log = logging.getLogger(__name__)

GREEDY_WARNING = (
    "decoding is greedy, and EM-INF keeps the argmax of every token, so outputs equal plain greedy "
    "decoding. The paper's recipe samples after EM-INF at temperature 0.1: --gen_kwargs do_sample=true,temperature=0.1"
)


class EmGenerationMixin:
    """Shared by ``em_inf`` (HF) and ``em_inf_vllm``."""

    RUNS_MULTISTEP = True  # see em_eval.plugin.guard_multistep
    MODEL_NAME = ""  # the --model name, in messages

    def _take_em_args(self, pretrained: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Resolve preset and checkpoint args, keep the EM and decode settings, return the rest."""
        args = resolve_model_args({"pretrained": pretrained, **kwargs} if pretrained is not None else kwargs)
        self.em_settings = EmSettings.pop_from(args)
        self.decode_method = pop_method_args(args)
        self._em_source = {"pretrained": args.get("pretrained"), "preset": kwargs.get("preset")}
        self._warned_greedy = False
        self._checked_chat_template = False
        self._token_progress = True  # a backend's own per-token bar (set per generate_until call)
        self._router: TelemetryRouter | None = None
        return args

    def _warn_if_greedy(self, settings: EmSettings, gen_kwargs: dict[str, Any]) -> None:
        """Once per model: EM-INF without sampling changes nothing."""
        if settings.mode != "off" and not is_sampling(gen_kwargs) and not self._warned_greedy:
            self._warned_greedy = True
            log.warning("%s: %s", self.MODEL_NAME, GREEDY_WARNING)

    def _warn_if_chat_template_unused(self, requests: list[Any]) -> None:
        """Once per model: an instruct model on em-eval's tasks without its chat template answers
        empty or off-format and scores 0 without a word, so say what to add."""
        if self._checked_chat_template:
            return
        self._checked_chat_template = True
        ours = [r for r in requests if str(getattr(r, "task_name", "") or "").startswith(("em_", "scicode", "leetcode"))]
        marker = _assistant_marker(getattr(self, "tokenizer", None))
        if ours and marker and not any(marker in str(r.args[0]) for r in ours):
            log.warning("%s: the model has a chat template, but the prompts of %s do not use it; instruct models "
                        "then often answer empty or off-format. Add --apply_chat_template (and, for the paper's "
                        "protocol, keep the task's system prompt)", self.MODEL_NAME, ours[0].task_name)

    def get_model_info(self) -> dict[str, Any]:
        """What a results file needs to reproduce the run: versions, settings, sources, checkpoint."""
        return {
            "em_eval_version": em_eval.__version__,
            "em_settings": self.em_settings.as_args(),
            "em_model_source": self._em_source,
            "decode_method": self.decode_method.as_args(),
            "em_checkpoint": self._em_checkpoint,  # trained checkpoint and step, if any
        }

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self._token_progress = not disable_tqdm
        def plain(reqs: list[Any], quiet: bool = False) -> list[str]:
            return generate_with_method(self.decode_method, reqs, lambda r: self._generate_plain(r, disable_tqdm or quiet))

        return generate_until_with_steps(requests, plain, lambda reqs: plain(reqs, quiet=True), progress=not disable_tqdm)

    def _generate_plain(self, requests: list[Any], disable_tqdm: bool) -> list[str]:
        """lm-eval's generation of ``requests``, with telemetry attached to each request."""
        self._warn_if_chat_template_unused(requests)
        self._fit_generation_budget(requests)
        self._router = TelemetryRouter()
        inner_hook = self.cache_hook
        self.cache_hook = RecordingCacheHook(inner_hook, self._router)
        try:
            responses = super().generate_until(requests, disable_tqdm=disable_tqdm)
        finally:
            self.cache_hook = inner_hook
        self._router.attach(requests, responses)
        self._router = None
        return responses

    def _fit_generation_budget(self, requests: list[Any]) -> None:
        """Lower ``max_gen_toks`` so the longest prompt plus its generation fits the context.

        lm-eval would otherwise assert (``max_gen_toks >= max_length``) or silently cut the
        prompt's beginning. Requests with the same budget keep one budget, so batches stay whole.
        """
        longest: dict[int, int] = {}
        for req in requests:
            budget = int(req.args[1].get("max_gen_toks") or self.max_gen_toks)
            longest[budget] = max(longest.get(budget, 0), len(self.tok_encode(req.args[0])))
        fitted = {}
        for budget, prompt in longest.items():
            room = self.max_length - prompt
            if room < 1:
                raise ArgumentValueError(
                    f"a prompt of {prompt} tokens fills the model's context of {self.max_length} tokens; "
                    "raise max_length in --model_args or shorten the prompt"
                )
            fitted[budget] = min(budget, room)
            if fitted[budget] < budget:
                log.warning(
                    "max_gen_toks=%d does not fit the context (%d tokens, longest prompt %d): "
                    "generating at most %d tokens", budget, self.max_length, prompt, fitted[budget],
                )
        for req in requests:
            budget = int(req.args[1].get("max_gen_toks") or self.max_gen_toks)
            if fitted[budget] < budget:
                req.args[1]["max_gen_toks"] = fitted[budget]


def _assistant_marker(tokenizer: Any) -> str | None:
    """The text a chat template puts before the assistant's answer (``<|im_start|>assistant``), if any."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None
    probe = "em-eval-probe-7c1"
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": probe}], tokenize=False,
                                             add_generation_prompt=True)
    except Exception:  # a template that needs more than one user turn: no check
        return None
    tail = str(text).split(probe, 1)[-1].strip()
    return tail or None
