"""What each backend really builds for one request: traces for conformance tests and cards.

Both go through the backends' own code (:func:`effective_sampling.resolve`, then
``EmInfLM._model_generate`` or ``EmInfVLLM.modify_gen_kwargs``), on a backend object that skips
model loading, so they need only a (tiny) model or an importable vLLM, not an engine.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Mapping

from em_eval.backends.effective_sampling import resolve
from em_eval.backends.run_spec import RunSpec
from em_eval.decoding.methods import DecodeMethod
from em_eval.em_inf.settings import EmSettings

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's, for a request that sets no max_gen_toks
VLLM_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "stop",
    "seed",
    "n",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "extra_args",
)


def hf_processor_chain(model: Any, gen_kwargs: Mapping[str, Any], settings: EmSettings) -> list[dict[str, Any]]:
    """The logits processors transformers builds for one ``em_inf`` request with these task
    gen_kwargs and model-arg settings, in the order it applies them: ``{"name": class name, **params}``
    (the EM processor's params are its ``em_*`` settings)."""
    return [_describe(p) for p in hf_processors(model, gen_kwargs, settings)]


def hf_processors(model: Any, gen_kwargs: Mapping[str, Any], settings: EmSettings) -> list[Any]:
    """The processor objects behind :func:`hf_processor_chain` (to apply them to logits)."""
    import torch
    from lm_eval.models.utils import normalize_gen_kwargs

    from em_eval.backends.hf import EmInfLM
    from em_eval.backends.hf_config import neutral_generation_config

    lm = _bare(EmInfLM, settings)
    config = model.generation_config
    eos = config.eos_token_id[0] if isinstance(config.eos_token_id, list) else config.eos_token_id
    lm.__dict__.update(
        _model=model,
        _device=model.device,
        mixed_precision_dtype=None,
        em_compile=False,
        tokenizer=SimpleNamespace(eos_token_id=eos, pad_token_id=config.pad_token_id),
    )
    lm._neutral_generation_config, lm._generation_config_dropped = neutral_generation_config(model)
    kwargs = dict(normalize_gen_kwargs(resolve(gen_kwargs, settings).gen_kwargs, DEFAULT_MAX_GEN_TOKS))
    for key in ("until", "max_gen_toks"):  # HFLM.generate_until takes these out before _model_generate
        kwargs.pop(key)
    built: list[Any] = []

    def capture(model: Any, input_ids: torch.Tensor, logits_processor: Any, **_: Any) -> torch.Tensor:
        built.extend(logits_processor)
        return input_ids

    context = torch.tensor([[eos if eos is not None else 0]], device=model.device)
    lm._model_generate(context, max_length=2, stop=[], custom_generate=capture, **kwargs)
    return built


def vllm_sampling_params(gen_kwargs: Mapping[str, Any], settings: EmSettings) -> dict[str, Any]:
    """The ``SamplingParams`` fields ``em_inf_vllm`` sends for one request with these task gen_kwargs
    and model-arg settings (before its per-request budget fitting and telemetry tag); needs vLLM."""
    from vllm import SamplingParams

    from em_eval.backends.vllm import EmInfVLLM

    lm = _bare(EmInfVLLM, settings)
    kwargs, until, max_tokens = lm.modify_gen_kwargs(
        resolve(gen_kwargs, settings).gen_kwargs, eos=None, default_max_gen_toks=DEFAULT_MAX_GEN_TOKS
    )
    params = SamplingParams(max_tokens=max_tokens, stop=until, **kwargs)
    return {field: getattr(params, field) for field in VLLM_FIELDS}


def _bare(cls: type, settings: EmSettings) -> Any:
    """An instance of a backend class with its EM state but no model (``__init__`` is not run)."""
    lm = object.__new__(cls)
    lm._start_run(RunSpec(settings, DecodeMethod(), {}))
    lm._warned_greedy = True  # a trace warns about nothing
    lm._token_progress = False
    return lm


def _describe(processor: Any) -> dict[str, Any]:
    settings = getattr(processor, "settings", None)
    params = (
        settings.as_args()
        if isinstance(settings, EmSettings)
        else {
            k: v
            for k, v in vars(processor).items()
            if not k.startswith("_")
            and isinstance(v, (bool, int, float, str))
            and not (isinstance(v, float) and math.isinf(v))
        }
    )
    return {"name": type(processor).__name__, **params}
