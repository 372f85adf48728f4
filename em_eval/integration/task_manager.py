"""Target ``lm_eval.tasks.TaskManager.__init__``: every ``TaskManager`` also indexes em-eval's tasks.

Only the bare stock ``lm_eval --tasks em_...`` needs this (lm-eval 0.4.13 has no task plugins; task
entry points are lm-eval PR #4015). ``em-eval eval`` passes lm-eval's public ``--include_path``, and
Python users pass ``TaskManager(include_path=em_eval.plugin.tasks_dir())``.
"""

from __future__ import annotations

from typing import Any, Callable

_PATCHED = "_em_eval_task_path"


def with_our_path(include_path: Any, ours: str) -> list[Any]:
    """``include_path`` as a list with ``ours`` first (user paths come later, so they can override ours)."""
    paths = (
        []
        if include_path is None
        else list(include_path)
        if isinstance(include_path, (list, tuple))
        else [include_path]
    )
    if ours not in {str(p) for p in paths}:
        paths.insert(0, ours)
    return paths


def add_task_path(task_manager_cls: Any, tasks_dir: Callable[[], Any]) -> None:
    """Make every ``task_manager_cls`` also index ``tasks_dir()`` (idempotent)."""
    if getattr(task_manager_cls.__init__, _PATCHED, False):
        return
    original = task_manager_cls.__init__

    def __init__(self: Any, *args: Any, include_path: Any = None, **kwargs: Any) -> None:
        original(self, *args, include_path=with_our_path(include_path, str(tasks_dir())), **kwargs)

    setattr(__init__, _PATCHED, True)
    __init__.__doc__ = original.__doc__
    task_manager_cls.__init__ = __init__
