"""The start-up hook of the bare stock ``lm_eval`` command, run by ``em_eval_startup.pth``.

lm-eval 0.4.13 finds no plugins, so after ``pip install`` the ``.pth`` line calls
:func:`em_eval.plugin.start` when (and only when) the running program is lm-eval's CLI
(``lm_eval``/``lm-eval``/``python -m lm_eval``); anywhere else it removes every ``em_eval`` module
it imported. ``EM_EVAL_DISABLE_HOOK=1`` turns it off. This module is the machinery only: a
meta-path finder that runs a callback right after a named lm-eval module has executed, and the
one-line report of user errors; it imports nothing of em-eval at import time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable

DISABLE_VAR = "EM_EVAL_DISABLE_HOOK"
CLI_NAMES = {"lm_eval", "lm-eval", "lm_eval.exe", "lm-eval.exe"}


def running_lm_eval() -> bool:
    """Whether this interpreter runs lm-eval's CLI (and the hook is not turned off)."""
    if os.environ.get(DISABLE_VAR):
        return False
    orig = list(getattr(sys, "orig_argv", None) or [])
    argv = list(getattr(sys, "argv", None) or [])
    if {os.path.basename(a) for a in orig[:2] + argv[:1]} & CLI_NAMES:
        return True
    return any(a == "-m" and b in ("lm_eval", "lm_eval.__main__") for a, b in zip(orig, orig[1:]))


def forget_em_eval() -> None:
    """Remove the ``em_eval`` modules the ``.pth`` imported, so an explicit import runs afresh."""
    for name in [m for m in sys.modules if m == "em_eval" or m.startswith("em_eval.")]:
        del sys.modules[name]


class _AfterImport:
    """Meta-path finder that runs ``callbacks[name](module)`` right after module ``name`` executes,
    inside ``context(name)``."""

    def __init__(
        self, callbacks: dict[str, Callable[[Any], None]], context: Callable[[str], contextlib.AbstractContextManager]
    ) -> None:
        self.callbacks = callbacks
        self.context = context
        self._busy: set = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.callbacks or fullname in self._busy:
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
        spec.loader = _HookedLoader(spec.loader, self)
        return spec


class _HookedLoader:
    def __init__(self, inner, finder: _AfterImport):
        self._inner = inner
        self._finder = finder

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        with self._finder.context(module.__name__):
            self._inner.exec_module(module)
        try:
            self._finder.callbacks[module.__name__](module)
        except Exception as exc:  # never break lm-eval itself
            print(f"em-eval: could not register with lm-eval ({type(exc).__name__}: {exc})", file=sys.stderr)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def install(
    callbacks: dict[str, Callable[[Any], None]], context: Callable[[str], contextlib.AbstractContextManager]
) -> None:
    """Install the finder once; a second call adds its ``callbacks`` to the installed one."""
    for finder in sys.meta_path:
        if isinstance(finder, _AfterImport):
            finder.callbacks.update(callbacks)
            return
    sys.meta_path.insert(0, _AfterImport(dict(callbacks), context))


def _short_user_errors(kind, value, tb):
    """``sys.excepthook`` of lm-eval runs: em-eval's user errors in one line (see em_eval.user_errors)."""
    try:
        from em_eval.user_errors import excepthook
    except Exception:
        return sys.__excepthook__(kind, value, tb)
    return excepthook(kind, value, tb)


def install_excepthook() -> None:
    """Report em-eval's user errors in one line, unless a program set its own ``sys.excepthook``."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _short_user_errors
