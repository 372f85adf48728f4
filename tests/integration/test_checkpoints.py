"""em-eval checkpoints: metadata, resolution to loadable model args, and evaluation of trained
checkpoints (full and LoRA) through the stock ``lm_eval`` command."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from em_eval.models.checkpoint_format import (
    CheckpointError,
    checkpoint_info,
    latest_checkpoint,
    list_checkpoints,
    read_metadata,
    resolve_checkpoint_args,
    write_metadata,
)
from em_eval.models.embedded import embedded_model_dir
from em_eval.models.presets import resolve_model_args


def test_metadata_errors_name_the_problem(tmp_path, trained) -> None:
    with pytest.raises(CheckpointError, match="has no em_eval_checkpoint.json, so it is not a finished em-eval"):
        read_metadata(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(trained["full"] / "checkpoint-000001", broken)
    (broken / "em_eval_checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_metadata(broken)
    meta = read_metadata(trained["full"] / "checkpoint-000001")
    write_metadata(broken, replace(meta, format=99))
    with pytest.raises(CheckpointError, match="format 99"):
        read_metadata(broken)
    (broken / "em_eval_checkpoint.json").write_text("[1, 2]")  # valid JSON, wrong shape: not an AttributeError
    with pytest.raises(CheckpointError, match="holds a JSON list, not an object"):
        read_metadata(broken)


def test_latest_skips_unfinished_folders(tmp_path, trained) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained["full"], run)
    (run / "checkpoint-000007").mkdir()  # no metadata: never finished
    (run / ".tmp-checkpoint-000008").mkdir()
    assert list_checkpoints(run) == [run / "checkpoint-000001"]
    assert latest_checkpoint(run) == run / "checkpoint-000001"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_resolution_of_full_lora_run_and_plain_folders(trained, tiny_llama_dir) -> None:
    full, lora = trained["full"] / "checkpoint-000001", trained["lora"] / "checkpoint-000001"
    assert resolve_checkpoint_args({"pretrained": str(full), "dtype": "float32"}) == {
        "pretrained": str(full),
        "dtype": "float32",
    }
    assert resolve_checkpoint_args({"pretrained": str(lora)}) == {
        "pretrained": str(tiny_llama_dir.resolve()),
        "peft": str(lora),
    }
    assert resolve_checkpoint_args({"pretrained": str(trained["lora"])})["peft"] == str(lora)  # run folder: latest
    assert resolve_checkpoint_args({"pretrained": str(lora), "peft": "/elsewhere"})["peft"] == "/elsewhere"
    plain = {"pretrained": str(tiny_llama_dir)}
    assert resolve_checkpoint_args(plain) == plain and resolve_checkpoint_args({"pretrained": "org/model"}) == {
        "pretrained": "org/model"
    }
    assert checkpoint_info(tiny_llama_dir) is None
    info = checkpoint_info(lora)
    assert (info["step"], info["method"], info["adapter"], info["checkpoint"]) == (
        1,
        "em_ft",
        "lora",
        str(lora.resolve()),
    )


def test_lora_checkpoint_on_the_embedded_model_resolves_through_presets(tmp_path, trained) -> None:
    lora = tmp_path / "checkpoint-000001"
    shutil.copytree(trained["lora"] / "checkpoint-000001", lora)
    write_metadata(lora, replace(read_metadata(lora), base_model="smollm2-135m"))
    args = resolve_model_args({"pretrained": str(lora)})
    assert args == {"pretrained": str(embedded_model_dir()), "peft": str(lora)}
