"""em-eval training checkpoints: the metadata file, finding the latest one, and loading them.

A checkpoint is an HF folder (``config.json`` + ``model.safetensors`` for full fine-tuning,
``adapter_config.json`` + ``adapter_model.safetensors`` for LoRA, tokenizer files) plus
``em_eval_checkpoint.json``, written last, under a temporary name that is renamed when
complete. So a folder with that file is finished, and the newest such folder is "latest".

:func:`resolve_checkpoint_args` lets ``--model_args pretrained=<checkpoint>`` load a LoRA
checkpoint together with its base model (``peft=``), found from the metadata.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from em_eval.user_errors import UserError

METADATA_FILE = "em_eval_checkpoint.json"
FORMAT_VERSION = 1
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(UserError, ValueError):
    """A folder that is not a usable em-eval checkpoint."""


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint came from: enough to reload, resume and report it."""

    method: str  # em_ft | em_rl
    step: int  # optimizer steps completed
    base_model: str  # the model training started from: HF id, local folder, or embedded name
    adapter: str | None  # "lora" when the folder holds only a peft adapter
    data_sha256: str  # the prompt file
    seed: int
    recipe: str | None  # recipe file the run was started from
    config: dict[str, Any]  # every config field
    em_eval_version: str
    versions: dict[str, str] = field(default_factory=dict)  # torch, transformers, peft, accelerate
    world_size: int = 1
    format: int = FORMAT_VERSION


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after ``step`` optimizer steps."""
    return f"checkpoint-{step:06d}"


def write_metadata(folder: Path, metadata: CheckpointMetadata) -> Path:
    """Write the metadata file into ``folder``."""
    path = Path(folder) / METADATA_FILE
    path.write_text(json.dumps(asdict(metadata), indent=2, sort_keys=True) + "\n")
    return path


def has_metadata(folder: str | Path) -> bool:
    """Whether ``folder`` is a finished em-eval checkpoint."""
    return (Path(folder) / METADATA_FILE).is_file()


def read_metadata(folder: str | Path) -> CheckpointMetadata:
    """The metadata of a checkpoint folder; one clear error if it is missing or unreadable."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{folder} has no {METADATA_FILE}, so it is not a finished em-eval checkpoint; "
            "give a checkpoint-NNNNNN folder written by `em-eval train` (a plain HF model folder "
            "loads with pretrained=<folder> but cannot be resumed)"
        )
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"it holds a JSON {type(data).__name__}, not an object")
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
        return CheckpointMetadata(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is unreadable ({exc}); it was not written by this em-eval version") from None


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Finished checkpoints in a run folder, oldest first (folders without metadata are skipped)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in run_dir.iterdir()
        if (m := CHECKPOINT_PATTERN.match(p.name)) and p.is_dir() and has_metadata(p)
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest finished checkpoint of a run folder, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint_args(args: dict[str, Any]) -> dict[str, Any]:
    """Map ``pretrained=<em-eval checkpoint or run folder>`` to loadable model args.

    A run folder means its latest checkpoint. A LoRA checkpoint becomes ``pretrained=<base>``
    plus ``peft=<checkpoint>`` (an explicit ``peft=`` is kept). Anything else is unchanged.
    """
    pretrained = args.get("pretrained")
    if not isinstance(pretrained, str) or not Path(pretrained).is_dir():
        return args
    folder = Path(pretrained)
    if not has_metadata(folder):
        latest = latest_checkpoint(folder)
        if latest is None or (folder / "config.json").is_file():
            return args
        folder = latest
    args = dict(args, pretrained=str(folder))
    metadata = read_metadata(folder)
    if metadata.adapter and not args.get("peft"):
        args.update(pretrained=metadata.base_model, peft=str(folder))
    return args


def checkpoint_info(folder: Any) -> dict[str, Any] | None:
    """Provenance of an em-eval checkpoint for results files; None for anything else."""
    if not isinstance(folder, (str, Path)) or not has_metadata(folder):
        return None
    meta = read_metadata(folder)
    return {
        "checkpoint": str(Path(folder).resolve()),
        "step": meta.step,
        "method": meta.method,
        "reward": meta.config.get("reward"),
        "base_model": meta.base_model,
        "adapter": meta.adapter,
        "recipe": meta.recipe,
        "data_sha256": meta.data_sha256,
        "seed": meta.seed,
    }
