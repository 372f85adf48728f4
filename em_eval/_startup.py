"""Lazy lm-eval startup hook, run by ``em_eval_startup.pth`` in every interpreter.

Does nothing unless the program is lm-eval (``lm_eval``/``lm-eval`` or ``python -m lm_eval``).
Then it installs an import hook that, once lm-eval's own modules load, registers our models,
adds our tasks/ folder and makes lm-eval's hf/vllm backends refuse our multi-step tasks clearly.
It imports nothing heavy itself, is idempotent and never raises.
"""

import os
import sys

_HOOKS = {
    "lm_eval.models": "on_models_imported",
    "lm_eval.tasks.manager": "on_task_manager_imported",
    # em_eval.plugin.PLAIN_BACKENDS, spelled out here because this module must not import em_eval
    "lm_eval.models.huggingface": "on_backend_imported",
    "lm_eval.models.vllm_causallms": "on_backend_imported",
    "lm_eval.models.openai_completions": "on_backend_imported",
    "lm_eval.loggers.utils": "on_logger_utils_imported",
}


def _running_lm_eval() -> bool:
    if os.environ.get("EM_EVAL_DISABLE_HOOK"):
        return False
    orig = list(getattr(sys, "orig_argv", None) or [])
    argv = list(getattr(sys, "argv", None) or [])
    names = {os.path.basename(a) for a in orig[:2] + argv[:1]}
    if names & {"lm_eval", "lm-eval", "lm_eval.exe", "lm-eval.exe"}:
        return True
    return any(a == "-m" and b in ("lm_eval", "lm_eval.__main__") for a, b in zip(orig, orig[1:]))


class _AfterImport:
    """Meta-path finder that runs a hook right after selected modules finish executing."""

    def __init__(self) -> None:
        self._busy: set = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _HOOKS or fullname in self._busy:
            return None
        import importlib.util

        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        except Exception:
            return None
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _HookedLoader(spec.loader, _HOOKS[fullname])
        return spec


class _HookedLoader:
    def __init__(self, inner, hook_name):
        self._inner = inner
        self._hook_name = hook_name

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        with _import_context(module.__name__):
            self._inner.exec_module(module)
        try:
            from em_eval import plugin

            getattr(plugin, self._hook_name)(module)
        except Exception as exc:  # never break lm-eval itself
            print(f"em-eval: could not register with lm-eval ({type(exc).__name__}: {exc})", file=sys.stderr)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _import_context(name):
    """What em-eval wraps around the import of lm-eval's module ``name`` (see plugin.import_context)."""
    try:
        from em_eval import plugin

        return plugin.import_context(name)
    except Exception:
        import contextlib

        return contextlib.nullcontext()


def _short_user_errors(kind, value, tb):
    """``sys.excepthook`` of lm-eval runs: em-eval's user errors in one line (see em_eval.user_errors)."""
    try:
        from em_eval.user_errors import excepthook
    except Exception:
        return sys.__excepthook__(kind, value, tb)
    return excepthook(kind, value, tb)


def install(force: bool = False) -> None:
    """Install the import hook once, if the program is lm-eval (or ``force``); in lm-eval itself
    also the short report of user errors."""
    try:
        running = _running_lm_eval()
        if (force or running) and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport())
        if running and sys.excepthook is sys.__excepthook__:
            sys.excepthook = _short_user_errors
    except Exception:
        pass


install()
if getattr(sys, "_em_eval_site_import", False) and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
    # started by the .pth outside lm-eval: leave nothing behind, so an explicit `import em_eval` runs afresh
    for _name in [m for m in sys.modules if m == "em_eval" or m.startswith("em_eval.")]:
        del sys.modules[_name]
