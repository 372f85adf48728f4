"""Model presets: small YAML files in ``models/`` naming a checkpoint and its recommended args."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from em_eval.asset_paths import asset_dir, asset_names, read_mapping
from em_eval.models.checkpoint_format import resolve_checkpoint_args
from em_eval.models.embedded import embedded_model_dir, is_embedded
from em_eval.user_errors import ArgumentNameError, MissingPathError, did_you_mean


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return asset_names("models")


def load_preset(name: str) -> dict[str, Any]:
    """Read one preset; a clear error names the known presets or the YAML problem."""
    path = asset_dir("models") / f"{name}.yaml"
    if not path.is_file():
        raise ArgumentNameError(
            f"unknown preset {name!r}{did_you_mean(name, preset_names())}; known presets: {', '.join(preset_names())}"
        )
    return read_mapping(path, "preset file", "pretrained", " (the model to load)", ValueError)


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
    for key in ("pretrained", "peft"):
        missing_local_path(args.get(key), key)
    args = resolve_checkpoint_args(args)  # em-eval checkpoint: LoRA -> base + peft=, run folder -> latest
    if is_embedded(args.get("pretrained")):
        args["pretrained"] = str(embedded_model_dir())
        args.pop("gguf_file", None)
    return args


def missing_local_path(value: Any, key: str) -> None:
    """Raise at once when ``value`` is a local path in form (``./x``, ``/x``, ``~/x``, or a folder
    that exists here followed by more) that does not exist, instead of asking the hub for it."""
    if not isinstance(value, str) or not value or is_embedded(value):
        return
    path = Path(value).expanduser()
    local_form = value.startswith((".", "/", "~")) or (len(path.parts) > 1 and Path(path.parts[0]).is_dir())
    if local_form and not path.exists():
        near = path.parent if path.parent.is_dir() else None
        listing = ""
        if near is not None:
            names = sorted(p.name for p in near.iterdir())[:8]
            listing = f"; {near} holds: {', '.join(names) or 'nothing'}"
        raise MissingPathError(
            f"{key}={value}: no such file or folder{listing}. Give an existing checkpoint or "
            "model folder, or a Hugging Face id such as Qwen/Qwen2.5-7B-Instruct"
        )


def hub_load_error(value: Any, key: str, exc: OSError) -> MissingPathError | None:
    """The one-line error for a ``value`` that is neither a local path here nor loadable from the
    hub (``exc`` is what transformers raised), or None when ``value`` is a local path."""
    if not isinstance(value, str) or Path(value).expanduser().exists():
        return None
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MissingPathError(
        f"{key}={value}: there is no such file or folder here, and the Hugging Face hub did not "
        f"give it ({reason}). Give an existing checkpoint or model folder, or the id of a hub "
        "model you can download (on an offline node: one already in the HF cache)"
    )
