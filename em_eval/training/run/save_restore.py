"""Writing checkpoints atomically and restoring the exact training state from one.

Why not ``accelerator.save_state``: it stores the weights a second time in its own layout;
the HF folder already holds them, so only the optimizer and the per-process RNG states are
added (``trainer_state/``). The optimizer state goes through ``torch.distributed.checkpoint``'s
state-dict API: one full, name-keyed copy, gathered from the shards under FSDP and resharded on
load, the same file for one process, DDP and FSDP. Everything goes to ``.tmp-checkpoint-NNNNNN``
first, the metadata file last, then one ``rename`` publishes it: a crash or a full disk never
leaves a half-written checkpoint, and the previous one stays the latest.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from em_eval.models.checkpoint_format import (
    CheckpointError,
    CheckpointMetadata,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    read_metadata,
    write_metadata,
)

TRAINER_STATE = "trainer_state"
OPTIMIZER_FILE = "optimizer.pt"
TMP_PREFIX = ".tmp-"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; nothing was published."""


def capture_rng() -> dict[str, Any]:
    """This process's python, numpy, torch (and CUDA) RNG states, as tuples, numbers and tensors only,
    so the file reads back with ``torch.load(weights_only=True)`` (no unpickling of arbitrary objects)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rng_file(folder: Path, rank: int) -> Path:
    return folder / TRAINER_STATE / f"rng_rank{rank}.pt"


def full_optimizer_state(model: Any, optimizer: Any) -> dict[str, Any]:
    """The whole optimizer state keyed by parameter name (collective: gathers FSDP shards)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, getattr(optimizer, "optimizer", optimizer), options=options)


def load_full_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Undo :func:`full_optimizer_state` (collective: each process keeps its own shards)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(
        model,
        getattr(optimizer, "optimizer", optimizer),
        optim_state_dict=state,
        options=StateDictOptions(full_state_dict=True),
    )


def write_model_files(
    folder: Path,
    model: Any,
    state_dict: dict[str, Any],
    tokenizer: Any,
    optimizer_state: dict[str, Any],
    metadata: CheckpointMetadata,
) -> None:
    """The HF folder, the optimizer state, then the metadata (last: it marks the folder finished)."""
    model.save_pretrained(folder, state_dict=state_dict, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    torch.save(optimizer_state, folder / TRAINER_STATE / OPTIMIZER_FILE)
    write_metadata(folder, metadata)


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True) + [folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(
    accelerator: Any,
    model: Any,
    tokenizer: Any,
    optimizer: Any,
    metadata: CheckpointMetadata,
    run_dir: Path,
    keep_last: int = 0,
) -> Path:
    """Write ``run_dir/checkpoint-NNNNNN`` from every process; returns its path.

    Collective: all processes must call it. Raises :class:`CheckpointWriteError` (on every
    process) if any write failed; the temporary folder is then removed.
    """
    final = run_dir / checkpoint_name(metadata.step)
    tmp = run_dir / f"{TMP_PREFIX}{final.name}"
    state_dict = accelerator.get_state_dict(model)  # gathers shards under FSDP / DeepSpeed
    optimizer_state = full_optimizer_state(model, optimizer)
    error: OSError | None = None
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / TRAINER_STATE).mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        torch.save(capture_rng(), rng_file(tmp, accelerator.process_index))
        if accelerator.is_main_process:
            write_model_files(tmp, accelerator.unwrap_model(model), state_dict, tokenizer, optimizer_state, metadata)
            _fsync_tree(tmp)
    except OSError as exc:
        error = exc
    failed = accelerator.reduce(torch.tensor([float(error is not None)], device=accelerator.device), "sum")
    if failed.item():
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(run_dir)
        reason = f"{error.strerror or error}" if error else "another process failed to write its part"
        raise CheckpointWriteError(
            f"could not write the step-{metadata.step} checkpoint to {final}: {reason}. Nothing was published; "
            f"the latest checkpoint is still {previous or 'none'}. Fix the cause (free disk space) and rerun "
            "with resume=true."
        ) from error
    if accelerator.is_main_process:
        _publish(tmp, final)
        if keep_last:
            for old in list_checkpoints(run_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _publish(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, replacing an older folder of the same step (a rerun step)."""
    if final.exists():
        stale = final.with_name(f"{TMP_PREFIX}stale-{final.name}")
        shutil.rmtree(stale, ignore_errors=True)
        os.replace(final, stale)
        os.replace(tmp, final)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        os.replace(tmp, final)


def remove_temporaries(run_dir: Path) -> None:
    """Delete unfinished checkpoint folders a crash left behind."""
    if run_dir.is_dir():
        for path in run_dir.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)


def load_trainer_state(folder: Path, model: Any, optimizer: Any, process_index: int, num_processes: int) -> None:
    """Restore the optimizer and this process's RNG states from a checkpoint (collective)."""
    meta = read_metadata(folder)
    if meta.world_size != num_processes:
        raise CheckpointError(
            f"{folder} was written by {meta.world_size} process(es) but this run has {num_processes}; "
            f"an exact resume needs the same number (accelerate launch --num_processes {meta.world_size})"
        )
    state = folder / TRAINER_STATE
    if not (state / OPTIMIZER_FILE).is_file() or not rng_file(folder, process_index).is_file():
        raise CheckpointError(f"{folder} has no {TRAINER_STATE}/ files, so it cannot be resumed (it still evaluates)")
    load_full_optimizer_state(model, optimizer, _load_plain(state / OPTIMIZER_FILE))
    restore_rng(_load_plain(rng_file(folder, process_index)))


def _load_plain(path: Path) -> Any:
    """A trainer-state file holding tensors, numbers and containers only: nothing else is unpickled, so a
    tampered or downloaded checkpoint cannot run code on resume."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything beyond plain data, or a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} holds more than plain tensors and numbers, or is damaged ({reason}); em-eval does not "
            "unpickle it. Resume from a checkpoint this em-eval wrote, or start without resume"
        ) from None
