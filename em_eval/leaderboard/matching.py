"""Which paper number, if any, a run on a task may be shown beside: same model, method and settings.

A run's settings come from its results file: the model (``model_args.pretrained``, the preset, or a
trained checkpoint's base model from ``em_checkpoint``), the method (:func:`em_eval.results.describe_method`,
or the checkpoint's training method), the task's ``generation_kwargs`` (temperature, top_p; lm-eval
merges ``--gen_kwargs`` into them) and ``decode_method.decode_n``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from em_eval.decoding.methods import DEFAULT_N
from em_eval.decoding.sampling import is_sampling
from em_eval.leaderboard import paper
from em_eval.results import Run

# em-eval checkpoint (method, reward) -> the paper's row key
TRAINED = {
    ("em_ft", None): "em_ft",
    ("em_rl", "token"): "em_rl_token",
    ("em_rl", "sequence"): "em_rl_sequence",
    ("em_rl", "self_consistency"): "sc_rl",
}


@dataclass(frozen=True)
class RunSettings:
    """What decides whether a run on one task measures what a paper number measured."""

    model: str | None  # the paper's name for the model, None if the paper has no such model
    methods: tuple[str, ...]  # row keys this run may stand for, e.g. ("sampling", "base")
    temperature: float | None  # 0 = greedy; None = the results file does not say
    top_p: float
    decode_n: int | None
    trained: str | None  # "checkpoint step N" for a model trained by em-eval


@dataclass(frozen=True)
class Match:
    reported: paper.Reported | None  # the comparable paper number
    mismatch: str | None  # why the paper's number for this model, method and task is not comparable
    metric: str | None = None  # the run's metric the reported number compares with


def task_generation_kwargs(run: Run) -> dict[str, dict[str, Any]]:
    """``configs.<task>.generation_kwargs`` of the run's results file, per task."""
    configs = json.loads(Path(run.path).read_text()).get("configs") or {}
    return {task: dict(config.get("generation_kwargs") or {}) for task, config in configs.items()}


def run_settings(run: Run, gen_kwargs: dict[str, Any] | None) -> RunSettings:
    """The run's settings on one task, given that task's ``generation_kwargs`` (None: not recorded)."""
    config = run.config
    model_args = config.get("model_args") if isinstance(config.get("model_args"), dict) else {}
    temperature, top_p = _sampling(gen_kwargs)
    n = None
    if run.method in ("self_consistency", "refinement"):
        n = int(
            (config.get("decode_method") or {}).get("decode_n") or model_args.get("decode_n") or DEFAULT_N[run.method]
        )
    plain = run.method in ("sampling", "greedy")
    checkpoint = config.get("em_checkpoint")
    if checkpoint:  # a model trained here: only the paper's row of its training method, decoded plainly
        key = TRAINED.get((checkpoint.get("method"), checkpoint.get("reward")))
        return RunSettings(
            paper.paper_model([str(checkpoint.get("base_model"))]),
            (key,) if key and plain else (),
            temperature,
            top_p,
            n,
            f"checkpoint step {checkpoint.get('step')}",
        )
    names = [run.model, model_args.get("pretrained"), (config.get("em_model_source") or {}).get("preset")]
    methods = (run.method, "base") if plain else (run.method,)
    return RunSettings(
        paper.paper_model([name for name in names if isinstance(name, str)]), methods, temperature, top_p, n, None
    )


def _sampling(gen_kwargs: dict[str, Any] | None) -> tuple[float | None, float]:
    """``(temperature, top_p)``: temperature 0 for greedy, None when not recorded."""
    if gen_kwargs is None:
        return None, 1.0
    if not is_sampling(gen_kwargs):
        return 0.0, 1.0
    return float(gen_kwargs.get("temperature", 1.0)), float(gen_kwargs.get("top_p", 1.0))


def differences(reported: paper.Reported, settings: RunSettings) -> list[str]:
    """How the run's settings differ from those of the paper's number (empty: comparable)."""
    if settings.temperature is None:
        return ["the run's results file does not record this task's generation_kwargs"]
    out = []
    if reported.temperature is None:
        if settings.temperature == 0:
            out.append("greedy; the paper sampled")
    elif settings.temperature != reported.temperature:
        out.append(f"temperature {settings.temperature:g}, paper {reported.temperature:g}")
    if reported.top_p is not None and settings.temperature > 0 and settings.top_p != reported.top_p:
        out.append(f"top_p {settings.top_p:g}, paper {reported.top_p:g}")
    if reported.decode_n is not None and settings.decode_n != reported.decode_n:
        out.append(f"N={settings.decode_n}, paper N={reported.decode_n}")
    return out


def match(settings: RunSettings, task: str, metric: str, *others: str) -> Match:
    """The first paper number with the run's model, method, task and settings on ``metric`` (the primary one)
    or on one of ``others`` (the run's other verdicts: a paper number that names its metric is compared
    with that one); else why the nearest is not."""
    every = paper.candidates(settings.model, settings.methods, task, None)
    found = [rec for rec in every if rec.metric in (None, metric, *others)]
    for rec in found:
        if not differences(rec, settings):
            return Match(rec, None, rec.metric or metric)
    if not found:
        shown = ", ".join((metric, *others))
        return Match(None, f"the paper reports {every[0].metric}; this run has {shown}") if every else Match(None, None)
    first = found[0]
    return Match(
        None,
        f"not comparable with {first.table} {first.model} {first.label!r}: " + "; ".join(differences(first, settings)),
    )


def source(m: Match, settings: RunSettings) -> str | None:
    """How a matched paper number is labelled."""
    if m.reported is None:
        return None
    rec = m.reported
    notes = ["reported, not reproduced"]
    if settings.trained:
        notes.append(f"this model was trained here ({settings.trained}); the paper's training run is not compared")
    if rec.method == "self_consistency":
        notes.append("the paper's samples shared one vLLM seed (near-duplicates), em-eval's are independent")
    return f"{rec.table}: {rec.model}, {rec.label} ({'; '.join(notes)})"
