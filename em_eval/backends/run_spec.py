"""What an em-eval backend runs with, fixed when it is built: :class:`RunSpec`.

The backends hold one (``self.run_spec``) and read their EM settings, decode method, model source
and checkpoint from it; :func:`take_run_spec` splits it off the model args before lm-eval's own
backend sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from em_eval.decoding.methods import DecodeMethod, pop_method_args
from em_eval.em_inf.settings import EmSettings
from em_eval.models.presets import resolve_model_args


@dataclass(frozen=True)
class RunSpec:
    """One backend's run: its EM settings, decode method, where the model came from (``pretrained``,
    ``preset``) and the em-eval checkpoint (and step) it loads, if any."""

    settings: EmSettings
    decode: DecodeMethod
    source: Mapping[str, Any]
    checkpoint: Mapping[str, Any] | None = None


def take_run_spec(pretrained: Any, kwargs: dict[str, Any]) -> tuple[RunSpec, dict[str, Any]]:
    """Resolve preset and checkpoint args and take the EM and decode settings out: the run spec (without
    its checkpoint, which depends on the backend's loading args) and the args left for lm-eval's backend."""
    args = resolve_model_args({"pretrained": pretrained, **kwargs} if pretrained is not None else kwargs)
    settings = EmSettings.pop_from(args)
    decode = pop_method_args(args)
    return RunSpec(settings, decode, {"pretrained": args.get("pretrained"), "preset": kwargs.get("preset")}), args
