"""EM decoding settings shared by the HF and vLLM backends: parsing, validation, transform."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

import torch

import em_eval.em_inf.core as core
from em_eval.em_inf.core import Workspace, adaptive_temperature_with_stats, entropy, minimize_entropy_with_stats
from em_eval.user_errors import ArgumentNameError, ArgumentValueError, did_you_mean

MODES = ("em_inf", "adaptive_temp", "off")


@dataclass(frozen=True)
class EmSettings:
    """What the ``em_*`` model/gen args select. Defaults: the paper's released EM-INF script."""

    mode: str = "em_inf"
    threshold: float = core.EM_THRESHOLD
    kl_weight: float = core.EM_KL_WEIGHT
    lr: float = core.EM_LR
    steps: int = core.EM_STEPS
    target_ratio: float = core.AT_TARGET_RATIO
    adaptive_threshold: float = core.AT_THRESHOLD
    t_min: float = core.AT_T_MIN
    t_max: float = core.AT_T_MAX
    tol: float = core.AT_TOL
    max_iters: int = core.AT_MAX_ITERS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ArgumentValueError(f"em_mode={self.mode!r} is not one of {', '.join(MODES)}")
        checks = {
            "em_steps": self.steps >= 0,
            "em_lr": self.lr >= 0,
            "em_kl_weight": self.kl_weight >= 0,
            "em_threshold": self.threshold >= 0,
            "em_target_ratio": 0 < self.target_ratio <= 1,
            "em_t_min/em_t_max": 0 < self.t_min <= self.t_max,
            "em_tol": self.tol > 0,
            "em_max_iters": self.max_iters >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ArgumentValueError(f"invalid EM setting(s) {', '.join(bad)} in {self.as_args()}")

    @classmethod
    def arg_names(cls) -> tuple[str, ...]:
        """The model/gen argument names, e.g. ``em_threshold``."""
        return tuple(f"em_{f.name}" for f in fields(cls))

    @classmethod
    def pop_from(cls, args: dict[str, Any], base: "EmSettings | None" = None) -> "EmSettings":
        """Remove every ``em_*`` key from ``args`` (in place) and return the settings they select."""
        known = {f.name: f.type for f in fields(cls)}
        picked: dict[str, Any] = {}
        for key in [k for k in args if k.startswith("em_")]:
            name = key[3:]
            if name not in known:
                raise ArgumentNameError(
                    f"unknown EM argument {key!r}{did_you_mean(key, cls.arg_names())}; "
                    f"known: {', '.join(cls.arg_names())}"
                )
            value = args.pop(key)
            picked[name] = _coerce(key, value, known[name])
        return replace(base or cls(), **picked)

    def as_args(self) -> dict[str, Any]:
        """The settings as ``em_*`` arguments (what the results file records)."""
        return {f"em_{k}": v for k, v in asdict(self).items()}

    def transform(
        self, logits: torch.Tensor, *, compact: bool = False, inplace: bool = False, workspace: Workspace | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Apply the selected method to ``[batch, vocab]`` logits; return them with per-row stats.

        ``compact`` reads on the host to skip work (rows below EM-INF's threshold, bisection
        rows that have converged); leave it off inside vLLM on a GPU. ``inplace`` lets EM-INF
        write into fp32 ``logits``; ``workspace`` lends the temporaries (a decoding loop keeps one).
        """
        if self.mode == "em_inf":
            out, st = minimize_entropy_with_stats(
                logits,
                threshold=self.threshold,
                kl_weight=self.kl_weight,
                lr=self.lr,
                steps=self.steps,
                compact=compact,
                inplace=inplace,
                workspace=workspace,
            )
            return out, {
                "entropy_before": st.entropy_before,
                "entropy_after": st.entropy_after,
                "steps": st.steps,
                "adjusted": st.steps > 0,
            }
        if self.mode == "adaptive_temp":
            out, ad = adaptive_temperature_with_stats(
                logits,
                target_ratio=self.target_ratio,
                threshold=self.adaptive_threshold,
                t_min=self.t_min,
                t_max=self.t_max,
                tol=self.tol,
                max_iters=self.max_iters,
                compact=compact,
                workspace=workspace,
            )
            return out, {
                "entropy_before": ad.entropy_before,
                "entropy_after": ad.entropy_after,
                "temperature": ad.temperature,
                "adjusted": ad.temperature != 1,
            }
        h0 = entropy(logits)
        return logits, {"entropy_before": h0, "entropy_after": h0}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    kind = {"str": str, "float": float, "int": int}[annotation if isinstance(annotation, str) else annotation.__name__]
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ArgumentValueError(f"EM argument {key}={value!r} must be {kind.__name__}") from None


def settings_from(mapping: Mapping[str, Any]) -> EmSettings:
    """Build settings from a mapping of ``em_*`` keys (other keys are ignored)."""
    return EmSettings.pop_from({k: v for k, v in mapping.items() if k.startswith("em_")})
