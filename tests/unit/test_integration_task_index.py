"""The task-index cache: lm-eval's own index builder on a small "built-in" folder, read back from
the cache exactly, rebuilt when a file changes or the cache is damaged, never failing a run."""

from __future__ import annotations

import json
import logging
import os
import sys
import types
from pathlib import Path

import pytest
from lm_eval.tasks._index import Entry, Kind, TaskIndex

from em_eval.integration import task_index

TASK = "task: {name}\ntag: [{tag}]\ninclude: _common_yaml\ndoc_to_text: !function utils.doc_to_text\n"


def _folder(root: Path, names: list[str], tag: str = "em_tag") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_common_yaml").write_text("output_type: generate_until\ndataset_path: json\n")
    for name in names:
        (root / f"{name}.yaml").write_text(TASK.format(name=name, tag=tag))
    return root


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A TaskIndex look-alike whose module lives in ``tmp_path/builtin`` (as lm-eval's beside its
    tasks), building with lm-eval's real code; ``built`` lists the folders each real build read."""
    builtin = _folder(tmp_path / "builtin", ["alpha", "beta"])
    module = types.ModuleType("fake_lm_eval_index")
    module.__file__ = str(builtin / "_index.py")
    module.Entry, module.Kind = Entry, Kind
    built: list[list[Path]] = []

    def real_build(paths, *, resolve_includes=True):
        built.append([Path(p) for p in paths])
        return TaskIndex.build(paths, resolve_includes=resolve_includes)

    cls = type("FakeIndex", (), {"build": staticmethod(real_build), "__module__": module.__name__})
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setenv("EM_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EM_EVAL_TASK_INDEX_CACHE", raising=False)
    task_index.install(cls)
    return types.SimpleNamespace(cls=cls, builtin=builtin, built=built, cache=tmp_path / "cache" / "lm_eval_task_index")


def test_the_second_build_reads_lm_evals_own_index_from_the_cache(index) -> None:
    first = index.cls.build([index.builtin])
    second = index.cls.build([index.builtin])
    assert index.built == [[index.builtin]]  # lm-eval's parser ran once
    expected = TaskIndex.build([index.builtin])
    assert first == expected and second == expected and list(second) == list(expected)
    assert second["alpha"].kind is Kind.TASK and second["alpha"].yaml_path == index.builtin / "alpha.yaml"
    assert second["alpha"].cfg["doc_to_text"] == str(index.builtin / "utils.doc_to_text")  # functions stay unresolved
    assert second["em_tag"].kind is Kind.TAG and second["alpha"].tags == {"em_tag"}
    assert len(list(index.cache.glob("*.json"))) == 1


def test_a_changed_or_added_file_rebuilds(index) -> None:
    index.cls.build([index.builtin])
    (index.builtin / "gamma.yaml").write_text(TASK.format(name="gamma", tag="em_tag"))
    assert "gamma" in index.cls.build([index.builtin])
    common = index.builtin / "_common_yaml"  # an included file that is not *.yaml counts too
    common.write_text("output_type: loglikelihood\ndataset_path: json\n")
    os.utime(common, ns=(1, 1))
    assert index.cls.build([index.builtin])["alpha"].cfg["output_type"] == "loglikelihood"
    assert len(index.built) == 3
    assert len(list(index.cache.glob("*.json"))) == 1  # the folder's older states are gone


def test_a_damaged_cache_is_rebuilt_and_an_unwritable_one_skipped(
    index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.cls.build([index.builtin])
    (stored,) = index.cache.glob("*.json")
    stored.write_text('[["alpha", 1')  # cut short, as by a full disk
    assert set(index.cls.build([index.builtin])) == {"alpha", "beta", "em_tag"}
    assert json.loads(stored.read_text())  # written whole again
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setenv("EM_EVAL_CACHE", str(blocked))  # its folder cannot be made
    assert set(index.cls.build([index.builtin])) == {"alpha", "beta", "em_tag"}
    assert len(index.built) == 3


def test_other_folders_are_indexed_every_time_and_override_with_lm_evals_warning(
    index, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = _folder(tmp_path / "ours", ["beta", "delta"], tag="ours_tag")
    expected = TaskIndex.build([index.builtin, ours])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        merged = index.cls.build([index.builtin, ours])
        again = index.cls.build([index.builtin, ours])
    assert merged == again == expected
    assert merged["beta"].yaml_path == ours / "beta.yaml" and "alpha" in merged
    assert index.built == [[index.builtin], [ours], [ours]]
    overrides = [r for r in caplog.records if "overrides existing task" in r.getMessage()]
    assert len(overrides) == 2 and "'beta'" in overrides[0].getMessage()


def test_the_switch_turns_it_off_and_install_is_idempotent(index, monkeypatch: pytest.MonkeyPatch) -> None:
    wrapped = index.cls.build
    task_index.install(index.cls)
    assert index.cls.build is wrapped
    monkeypatch.setenv("EM_EVAL_TASK_INDEX_CACHE", "0")
    index.cls.build([index.builtin])
    index.cls.build([index.builtin])
    assert len(index.built) == 2 and not index.cache.exists()


def test_entries_of_another_shape_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    @dataclasses.dataclass
    class NewEntry:  # a later lm-eval that adds a field the cache would drop
        name: str
        kind: Kind
        yaml_path: Path | None
        cfg: dict | None = None
        tags: set = dataclasses.field(default_factory=set)
        aliases: set = dataclasses.field(default_factory=set)

    module = types.ModuleType("newer_lm_eval_index")
    module.__file__ = str(tmp_path / "_index.py")
    module.Entry, module.Kind = NewEntry, Kind
    monkeypatch.setitem(sys.modules, module.__name__, module)
    cls = type("NewerIndex", (), {"build": staticmethod(TaskIndex.build), "__module__": module.__name__})
    task_index.install(cls)
    assert cls.__dict__["build"].__func__ is TaskIndex.build
