"""What a request samples: the single place that turns (task gen_kwargs, EM settings) into it.

Both backends resolve every request here before lm-eval sees it (:func:`resolve`): the request's
``em_*`` keys and ``em_mode`` (over the model args), the ``by_em_mode`` overrides for that mode,
``max_context``, ``prompt_overflow``, and the adaptive-temperature rule (T_adapt replaces the sampling temperature, so
the sampler runs at temperature 1, as the paper's ``SamplingParams(temperature=1.0, ...)``).
:func:`effective_sampling` reports the outcome; :func:`fit_prompt` sizes a request's budget.
Pure: no lm-eval, transformers or vLLM imports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

from em_eval.decoding.sampling import is_sampling
from em_eval.em_inf.settings import MODES, EmSettings
from em_eval.records import TELEMETRY_KEY
from em_eval.user_errors import ArgumentValueError

PROTOCOL_KEYS = ("max_context", "by_em_mode", "prompt_overflow")  # consumed here, never passed to the model
# What a prompt that does not fit the context gets: its end (em-eval's default), or, as the paper's vLLM 0.7.3
# (V0 scheduler: "Input prompt ... is too long", the request is ignored), no generation and an empty response.
OVERFLOW = ("truncate", "empty")
MIN_GEN_TOKS = 256  # the budget a left-truncated prompt leaves room for (less when the request asks for less)


@dataclass(frozen=True)
class Resolved:
    """One request after :func:`resolve`."""

    gen_kwargs: dict[str, Any]  # for lm-eval: no protocol keys, the settings as em_* keys, temperature rule applied
    settings: EmSettings
    max_context: int | None
    replaced_temperature: float | None  # the temperature adaptive_temp replaced, if it differed from 1
    prompt_overflow: str = OVERFLOW[0]


def resolve(gen_kwargs: Mapping[str, Any], base: EmSettings) -> Resolved:
    """Apply ``em_*`` keys, ``by_em_mode``, ``max_context`` and the adaptive-temperature rule."""
    kwargs = {k: copy.deepcopy(v) for k, v in gen_kwargs.items() if k != TELEMETRY_KEY}
    overrides = kwargs.pop("by_em_mode", None)
    settings = EmSettings.pop_from(kwargs, base=base)
    for key, value in _mode_overrides(overrides, settings.mode).items():
        if value is None:
            kwargs.pop(key, None)
        else:
            kwargs[key] = copy.deepcopy(value)
    settings = EmSettings.pop_from(kwargs, base=settings)  # an override may set em_* keys too
    max_context = _positive_int("max_context", kwargs.pop("max_context", None))
    overflow = str(kwargs.pop("prompt_overflow", OVERFLOW[0]))
    if overflow not in OVERFLOW:
        raise ArgumentValueError(f"prompt_overflow={overflow!r} must be one of {', '.join(OVERFLOW)}")
    replaced = None
    if settings.mode == "adaptive_temp" and is_sampling(kwargs):
        temperature = kwargs.get("temperature")
        if temperature is not None and float(temperature) != 1.0:
            replaced = float(temperature)
        kwargs["temperature"] = 1.0
    kwargs.update(settings.as_args())
    return Resolved(kwargs, settings, max_context, replaced, overflow)


def effective_sampling(
    gen_kwargs: Mapping[str, Any], settings: EmSettings, default_max_gen_toks: int | None = None
) -> dict[str, Any]:
    """What a request with these task gen_kwargs samples under these model-arg settings, after
    ``by_em_mode`` and the adaptive-temperature rule: em_mode, do_sample, temperature, top_p,
    top_k, min_p (None = unset, or greedy), max_gen_toks, max_context, until, and
    ``prompt_overflow`` and ``replaced_temperature`` (the task temperature T_adapt replaced, or None)."""
    r = resolve(gen_kwargs, settings)
    k = r.gen_kwargs
    sampling = is_sampling(k)
    until = k.get("until")
    until = [] if until is None else [until] if isinstance(until, str) else list(until)
    budget = k.get("max_gen_toks", default_max_gen_toks)
    return {
        "em_mode": r.settings.mode,
        "do_sample": sampling,
        "temperature": float(k.get("temperature") or 0.0) if sampling else 0.0,
        "top_p": _knob(k, "top_p", float, sampling),
        "top_k": _knob(k, "top_k", int, sampling),
        "min_p": _knob(k, "min_p", float, sampling),
        "max_gen_toks": None if budget is None else int(budget),
        "max_context": r.max_context,
        "until": until,
        "prompt_overflow": r.prompt_overflow,
        "replaced_temperature": r.replaced_temperature,
    }


def fit_prompt(prompt_tokens: int, max_gen_toks: int, max_context: int | None, model_max: int) -> tuple[int, int]:
    """``(budget, kept prompt tokens)`` for one request.

    The budget is ``min(max_gen_toks, limit - prompt_tokens)`` with ``limit = min(max_context,
    model_max)``. A prompt that does not fit (``prompt_tokens >= limit``) keeps only its last
    ``limit - reserve`` tokens, where ``reserve = min(max_gen_toks, MIN_GEN_TOKS, limit // 2)``,
    and gets that reserve as its budget.
    """
    limit = min(model_max, max_context) if max_context else model_max
    if prompt_tokens < limit:
        return min(max_gen_toks, limit - prompt_tokens), prompt_tokens
    reserve = max(1, min(max_gen_toks, MIN_GEN_TOKS, limit // 2))
    return reserve, limit - reserve


def refuse_protocol_keys(requests: list[Any], backend: str) -> None:
    """One clear error when a backend that cannot apply :data:`PROTOCOL_KEYS` is handed them."""
    found = sorted(
        {
            (str(getattr(r, "task_name", "?")), key)
            for r in requests
            if len(r.args) > 1 and isinstance(r.args[1], Mapping)
            for key in PROTOCOL_KEYS
            if key in r.args[1]
        }
    )
    if found:
        named = ", ".join(f"{task} sets {key}" for task, key in found)
        raise ArgumentValueError(
            f"{named}: em-eval's budget keys, which lm-eval's {backend} backend cannot apply (it would pass them to "
            "the model or drop them, and sample a different protocol). Use --model em_inf (same model_args as hf; "
            "em_mode=off for plain decoding), --model em_inf_vllm (same model_args as vllm) or, against a server, "
            "--model em_inf_api (same model_args as local-completions)."
        )


def _mode_overrides(overrides: Any, mode: str) -> Mapping[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping) or not all(isinstance(v, Mapping) or v is None for v in overrides.values()):
        raise ArgumentValueError(
            f"by_em_mode={overrides!r} must map an em_mode to gen keys, "
            "e.g. by_em_mode: {em_inf: {max_gen_toks: 8192}}"
        )
    unknown = sorted(set(overrides) - set(MODES))
    if unknown:
        raise ArgumentValueError(
            f"by_em_mode names unknown em_mode(s) {', '.join(map(str, unknown))}; known: {', '.join(MODES)}"
        )
    if any(key == "by_em_mode" for v in overrides.values() if v for key in v):
        raise ArgumentValueError("by_em_mode overrides cannot contain by_em_mode")
    return overrides.get(mode) or {}


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
        ok = number > 0 and float(value) == number
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArgumentValueError(f"{name}={value!r} must be a positive number of tokens, e.g. {name}=4096")
    return number


def _knob(kwargs: Mapping[str, Any], key: str, kind: type, sampling: bool) -> Any:
    """A truncation knob's value as the task sets it; None when unset or under greedy decoding."""
    value = kwargs.get(key)
    return None if not sampling or value is None else kind(value)
