"""Model arguments that name a local path which is not there fail at once, naming it (no hub lookup)."""

from __future__ import annotations

import pytest

from em_eval.models.presets import resolve_model_args


def test_a_missing_local_path_is_named_at_once(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "em_ft").mkdir()
    for value in ("runs/em_nope", "./nope", str(tmp_path / "nope"), "~/surely-not-here-em-eval"):
        with pytest.raises(FileNotFoundError, match=r"pretrained=.*: no such file or folder"):
            resolve_model_args({"pretrained": value})
    with pytest.raises(FileNotFoundError, match=r"runs holds: em_ft"):
        resolve_model_args({"pretrained": "runs/em_nope"})
    with pytest.raises(FileNotFoundError, match=r"peft=adapters/x"):
        (tmp_path / "adapters").mkdir()
        resolve_model_args({"pretrained": "Qwen/Qwen2.5-7B-Instruct", "peft": "adapters/x"})
    assert resolve_model_args({"pretrained": "Qwen/Qwen2.5-7B-Instruct"}) == {"pretrained": "Qwen/Qwen2.5-7B-Instruct"}
    assert resolve_model_args({"pretrained": "runs/em_ft"})["pretrained"] == "runs/em_ft"  # exists: left alone
