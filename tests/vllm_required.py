"""Whether vLLM is importable here; the vllm CI lane sets EM_EVAL_REQUIRE_VLLM=1 to turn a skip into a failure."""

from __future__ import annotations

import importlib.util
import os

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def require_vllm() -> None:
    """Skip without vLLM, or fail when CI said vLLM must be there."""
    if HAVE_VLLM:
        return
    if os.environ.get("EM_EVAL_REQUIRE_VLLM") == "1":
        pytest.fail("EM_EVAL_REQUIRE_VLLM=1 but vllm is not importable: pip install --no-deps 'vllm==0.33.*' ...")
    pytest.skip("vllm is not installed (CI installs it; set EM_EVAL_REQUIRE_VLLM=1 to require it)")
