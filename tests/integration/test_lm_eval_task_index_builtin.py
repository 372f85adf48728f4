"""The task-index cache on lm-eval's real built-in folder (about 14 000 YAMLs): what comes back
from the cache is the index lm-eval builds, entry for entry and in order."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_lm_evals_built_in_index_comes_back_from_the_cache_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from em_eval import plugin

    plugin.activate(task_path=True)  # as the start-up hook does for the bare lm_eval command
    import lm_eval.tasks
    from lm_eval.tasks import _index
    from lm_eval.tasks._index import TaskIndex

    monkeypatch.setenv("EM_EVAL_CACHE", str(tmp_path))
    builtin = Path(lm_eval.tasks.__file__).parent
    built = TaskIndex.build([builtin])  # nothing stored yet: lm-eval's own build, then stored

    def parse(*args, **kwargs):
        raise AssertionError("a YAML was parsed although the index is cached")

    with monkeypatch.context() as no_parsing:
        no_parsing.setattr(_index, "load_yaml", parse)
        cached = TaskIndex.build([builtin])
    assert len(built) > 10_000 and list(cached) == list(built)
    assert all(cached[name] == entry for name, entry in built.items())
    manager = lm_eval.tasks.TaskManager()  # the CLI's way in: our tasks on top of the cached built-ins
    assert {"em_smoke", "gsm8k"} <= set(manager.all_tasks)
