"""A cache of lm-eval's index of its own built-in tasks, so ``lm_eval`` starts in seconds.

Every ``TaskManager()`` (every ``lm_eval`` run) parses lm-eval's ~14 000 task YAMLs to index
them: 15 s on a 2-core machine before any model loads, each time. That folder only changes when
lm-eval does, so :func:`install` wraps ``TaskIndex.build`` to keep its entries in em-eval's cache
(``$EM_EVAL_CACHE/lm_eval_task_index/``, JSON). The key holds lm-eval's version and the folder's
path, and a fingerprint of every file in it (path, size, mtime), so any change rebuilds the index
exactly as lm-eval would. Other folders (em-eval's tasks, ``--include_path``) are indexed as before.
A cache that cannot be read or written is rebuilt or skipped; it never fails a run.
``EM_EVAL_TASK_INDEX_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from em_eval.local_files import cache_root

FORMAT = 1  # bump when the stored layout changes
ENTRY_FIELDS = ("name", "kind", "yaml_path", "cfg", "tags")  # lm-eval 0.4.13's Entry, as stored here
SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints"}  # lm-eval's own _IGNORE_DIRS
_WRAPPED = "_em_eval_cached_index"
log = logging.getLogger(__name__)


def enabled() -> bool:
    return os.environ.get("EM_EVAL_TASK_INDEX_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"}


def fingerprint(root: Path) -> str:
    """sha256 over every file under ``root`` (relative path, size, mtime), in a fixed order."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = os.path.join(folder, name)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def cache_file(root: Path, version: str, resolve_includes: bool) -> Path:
    """``<folder>-<contents>.json``: one lm-eval install keeps one file, whatever its state."""
    contents = _short_hash([FORMAT, version, resolve_includes, fingerprint(root)])
    return cache_root() / "lm_eval_task_index" / f"{_short_hash(str(root))}-{contents}.json"


def to_rows(index: dict[str, Any]) -> list[list[Any]]:
    return [
        [e.name, e.kind.value, None if e.yaml_path is None else str(e.yaml_path), e.cfg, sorted(e.tags)]
        for e in index.values()
    ]


def from_rows(rows: list[list[Any]], entry_cls: Any, kind_cls: Any) -> dict[str, Any]:
    return {
        name: entry_cls(
            name=name, kind=kind_cls(kind), yaml_path=None if path is None else Path(path), cfg=cfg, tags=set(tags)
        )
        for name, kind, path, cfg, tags in rows
    }


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)  # concurrent runs each write a whole file; the last one wins
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def lm_eval_version() -> str:
    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def cached_index(
    root: Path, build: Callable[..., dict[str, Any]], resolve_includes: bool, entry_cls: Any, kind_cls: Any
) -> dict[str, Any]:
    """``build([root])``, read from the cache when ``root`` is unchanged since it was stored."""
    try:
        path = cache_file(root, lm_eval_version(), resolve_includes)
    except OSError as err:
        log.debug("task index cache off: cannot fingerprint %s (%s)", root, err)
        return build([root], resolve_includes=resolve_includes)
    try:
        return from_rows(json.loads(path.read_text(encoding="utf-8")), entry_cls, kind_cls)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, KeyError) as err:  # unreadable or damaged: rebuilt below
        log.debug("task index cache %s unusable (%s); rebuilding", path, err)
    index = build([root], resolve_includes=resolve_includes)
    try:
        _write_atomically(path, json.dumps(to_rows(index)))
        for stale in path.parent.glob(f"{path.name.split('-')[0]}-*.json"):  # this folder's older states
            if stale != path:
                stale.unlink(missing_ok=True)
    except (OSError, TypeError, ValueError) as err:  # read-only cache, full disk, a non-JSON config
        log.debug("task index cache not written to %s (%s)", path, err)
    return index


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == b
    except OSError:
        return False


def install(index_cls: Any = None) -> None:
    """Make ``index_cls.build`` (lm-eval's ``TaskIndex``) read lm-eval's own folder from the cache (idempotent)."""
    if index_cls is None:
        from lm_eval.tasks._index import TaskIndex as index_cls
    original = index_cls.build
    if getattr(original, _WRAPPED, False):
        return
    module = sys.modules[index_cls.__module__]  # lm_eval/tasks/_index.py, beside the built-in task folders
    if tuple(f.name for f in dataclasses.fields(module.Entry)) != ENTRY_FIELDS:
        log.debug("task index cache off: lm-eval's index entries changed shape")
        return
    builtin = Path(module.__file__).parent.resolve()
    lm_eval_log = logging.getLogger(module.__name__)

    def build(paths: Iterable[Path], *, resolve_includes: bool = True) -> dict[str, Any]:
        paths = list(paths)
        ours = [_same_folder(p, builtin) for p in paths]
        if not enabled() or not any(ours):
            return original(paths, resolve_includes=resolve_includes)
        index: dict[str, Any] = {}
        # lm-eval's merge: later folders override earlier ones, with its warning
        for root, is_builtin in zip(paths, ours):
            if is_builtin:
                part = cached_index(Path(root), original, resolve_includes, module.Entry, module.Kind)
            else:
                part = original([root], resolve_includes=resolve_includes)
            for name, entry in part.items():
                if name in index:
                    lm_eval_log.warning(
                        "Task '%s' from %s overrides existing task from %s",
                        name,
                        entry.yaml_path,
                        index[name].yaml_path,
                    )
                index[name] = entry
        return index

    setattr(build, _WRAPPED, True)
    build.__doc__ = original.__doc__
    index_cls.build = staticmethod(build)
