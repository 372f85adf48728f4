"""The unit lane: pure code only. A test here that loads a model or starts a process fails and
says where it belongs, so the lane stays fast (about half a minute on two cores)."""

from __future__ import annotations

import subprocess

import pytest

MODEL_FIXTURES = {"smollm2_dir", "tiny_llama_dir", "trained"}


@pytest.fixture(autouse=True)
def _pure_code_only(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    models = MODEL_FIXTURES & set(request.fixturenames)  # every fixture the test uses, directly or not
    if models:
        pytest.fail(
            f"{request.node.nodeid} loads a model ({', '.join(sorted(models))}): move it to tests/integration",
            pytrace=False,
        )

    def refuse(*args, **kwargs):
        raise RuntimeError(f"{request.node.nodeid} started a process: move it to tests/integration")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
