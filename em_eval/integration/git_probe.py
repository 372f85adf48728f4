"""Target ``lm_eval.loggers.utils.get_git_commit_hash`` (and ``lm_eval.evaluator``'s copy of it):
outside a checkout git no longer prints "fatal: not a git repository" on every run.

lm-eval runs ``git describe`` with stderr left open; ours captures it and otherwise answers the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

HOLDERS = ("lm_eval.loggers.utils", "lm_eval.evaluator")  # evaluator binds the name at import


def git_commit_hash() -> str | None:
    """lm-eval's ``get_git_commit_hash``, with git's complaint outside a checkout kept off stderr."""
    from lm_eval.loggers.utils import get_commit_from_path

    try:
        done = subprocess.run(["git", "describe", "--always"], capture_output=True, check=True, text=True)
        return done.stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return get_commit_from_path(os.getcwd())


def quiet_git_probe(module: Any) -> None:
    """Give ``module`` (``lm_eval.loggers.utils`` or a module that imported its probe) ours."""
    if getattr(module, "get_git_commit_hash", None) is not None:
        module.get_git_commit_hash = git_commit_hash


def install() -> None:
    """Replace the probe in the :data:`HOLDERS` loaded so far (the start-up hook catches later ones)."""
    for name in HOLDERS:
        if name in sys.modules:
            quiet_git_probe(sys.modules[name])
