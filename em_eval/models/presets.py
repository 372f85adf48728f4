"""Model presets: small YAML files in ``models/`` naming a checkpoint and its recommended args."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from em_eval.asset_paths import asset_dir
from em_eval.models.checkpoint_format import resolve_checkpoint_args
from em_eval.models.embedded import embedded_model_dir, is_embedded


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in asset_dir("models").glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """Read one preset; a clear error names the known presets or the YAML problem."""
    path = asset_dir("models") / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"preset file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "pretrained" not in data:
        raise ValueError(f"preset file {path} must be a mapping with at least a 'pretrained' key")
    return data


def resolve_model_args(args: dict[str, Any]) -> dict[str, Any]:
    """Apply ``preset=NAME`` (explicit args win), resolve em-eval checkpoints and the embedded model's short name."""
    args = dict(args)
    name = args.pop("preset", None)
    if name:
        preset = load_preset(str(name))
        merged: dict[str, Any] = {"pretrained": preset["pretrained"]}
        merged.update(preset.get("model_args") or {})
        merged.update(preset.get("em") or {})
        merged.update(args)
        args = merged
    args = resolve_checkpoint_args(args)  # em-eval checkpoint: LoRA -> base + peft=, run folder -> latest
    if is_embedded(args.get("pretrained")):
        args["pretrained"] = str(embedded_model_dir())
        args.pop("gguf_file", None)
    return args


def preset_path(name: str) -> Path:
    """Path of a shipped preset file."""
    return asset_dir("models") / f"{name}.yaml"
