"""Registration with lm-eval 0.4.13: our model names and our tasks/ folder.

lm-eval 0.4.13 has no plugin discovery, so :mod:`em_eval._startup` calls these hooks when
the running program is lm-eval; ``em-eval eval`` calls :func:`activate` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from em_eval.assets import asset_dir

MODELS = {
    "em_inf": "em_eval.backends.hf:EmInfLM",
    "em_inf_vllm": "em_eval.backends.vllm:EmInfVLLM",
}
_PATCHED = "_em_eval_task_path"


def tasks_dir() -> Path:
    """The folder of em-eval's task YAMLs."""
    return asset_dir("tasks")


def register_models(registry: Any = None) -> None:
    """Register our backends as lazy placeholders (after lm-eval's own, so none is hidden)."""
    if registry is None:
        import lm_eval.models  # noqa: F401  registers the built-ins first (see get_model's empty check)
        from lm_eval.api.registry import model_registry as registry
    for name, target in MODELS.items():
        if name not in registry:
            registry.register(name, target=target)


def add_task_path(task_manager_cls: Any = None) -> None:
    """Make every ``TaskManager`` also index our tasks/ folder (idempotent)."""
    if task_manager_cls is None:
        from lm_eval.tasks import TaskManager as task_manager_cls
    if getattr(task_manager_cls.__init__, _PATCHED, False):
        return
    original = task_manager_cls.__init__

    def __init__(self: Any, *args: Any, include_path: Any = None, **kwargs: Any) -> None:
        paths = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
        ours = str(tasks_dir())
        if ours not in {str(p) for p in paths}:
            paths.insert(0, ours)  # user paths come later, so they can override ours
        original(self, *args, include_path=paths, **kwargs)

    setattr(__init__, _PATCHED, True)
    __init__.__doc__ = original.__doc__
    task_manager_cls.__init__ = __init__


def on_models_imported(_module: Any) -> None:
    """Startup-hook callback: ``lm_eval.models`` has just registered the built-ins."""
    register_models()


def on_task_manager_imported(module: Any) -> None:
    """Startup-hook callback: ``lm_eval.tasks.manager`` has just been executed."""
    add_task_path(module.TaskManager)


def activate() -> None:
    """Register models and the task path now (for ``em-eval eval`` and Python callers)."""
    register_models()
    add_task_path()
