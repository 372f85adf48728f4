"""The unit lane: pure code only. A test here that loads a model or starts a process fails and
says where it belongs, so the lane stays fast (under a minute on two cores)."""

from __future__ import annotations

import subprocess

import pytest

MODEL_FIXTURES = {"smollm2_dir", "tiny_llama_dir"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "unit" in item.keywords and MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.usefixtures("_refuse_model_fixture"))


@pytest.fixture
def _refuse_model_fixture(request: pytest.FixtureRequest) -> None:
    pytest.fail(f"{request.node.nodeid} loads a model ({', '.join(MODEL_FIXTURES & set(request.fixturenames))}): "
                "move it to tests/integration", pytrace=False)


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    def refuse(*args, **kwargs):
        raise RuntimeError(f"{request.node.nodeid} started a process: move it to tests/integration")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
