"""Keep lm-eval's console output to what a user can act on, for em-eval's tasks.

- The printed results table leaves out the bookkeeping fields of ``em_`` tasks (``grading``, the
  per-response records, and ``n``, responses per problem): they stay in results.json and the
  ``--log_samples`` rows, where the leaderboard and the gate read them.
- lm-eval's "Custom kwargs can be passed to --metadata" warning is dropped for ``em_`` tasks
  (every task with a Python loader gets it, whether or not it takes any).
- Its "Ensure 'do_sample=True' for non-greedy decoding" warning is dropped when ``--gen_kwargs``
  already sets ``do_sample``.
- Its git-hash probe no longer lets git print "fatal: not a git repository" outside a checkout.

lm-eval has no switch for these, so :func:`install` wraps ``lm_eval.utils.make_table`` (the CLI
imports it at call time), adds a logging filter and, through :func:`quiet_git_probe`, replaces
``get_git_commit_hash``; all idempotent.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from typing import Any

BOOKKEEPING_METRICS = ("grading", "n")
OUR_PREFIX = "em_"
_WRAPPED = "_em_eval_table"
_FILTERED_LOGGERS = ("lm_eval.api.task", "lm_eval.evaluator")


def without_bookkeeping(result_dict: dict[str, Any], column: str = "results") -> dict[str, Any]:
    """A copy of lm-eval's ``result_dict`` whose ``column`` lacks our tasks' bookkeeping metrics."""
    section = result_dict.get(column)
    if not isinstance(section, dict):
        return result_dict
    trimmed = {}
    for task, metrics in section.items():
        if str(task).startswith(OUR_PREFIX) and isinstance(metrics, dict):
            metrics = {k: v for k, v in metrics.items()
                       if k.partition(",")[0].removesuffix("_stderr") not in BOOKKEEPING_METRICS}
        trimmed[task] = metrics
    return {**result_dict, column: trimmed}


def is_noise(record: logging.LogRecord) -> bool:
    """Whether ``record`` is one of the two lm-eval warnings a user cannot act on here."""
    message = record.getMessage()
    if "Custom kwargs can be passed to `--metadata`" in message:
        return message.startswith(OUR_PREFIX)
    if "Ensure 'do_sample=True'" in message:
        gen_kwargs = record.args  # logging unpacks a lone mapping argument
        return isinstance(gen_kwargs, dict) and "do_sample" in gen_kwargs
    return False


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_noise(record)


def git_commit_hash() -> str | None:
    """lm-eval's ``get_git_commit_hash``, with git's complaint outside a checkout kept off stderr."""
    from lm_eval.loggers.utils import get_commit_from_path

    try:
        return subprocess.run(["git", "describe", "--always"], capture_output=True, check=True, text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return get_commit_from_path(os.getcwd())


def quiet_git_probe(module: Any) -> None:
    """Give ``module`` (``lm_eval.loggers.utils`` or a module that imported its probe) ours."""
    if getattr(module, "get_git_commit_hash", None) is not None:
        module.get_git_commit_hash = git_commit_hash


def install() -> None:
    """Wrap lm-eval's table printer and filter its two noisy warnings (idempotent)."""
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    for name in ("lm_eval.loggers.utils", "lm_eval.evaluator"):  # loaded already; else the startup hook does it
        if name in sys.modules:
            quiet_git_probe(sys.modules[name])
    import lm_eval.utils

    original = lm_eval.utils.make_table
    if getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def make_table(result_dict: dict[str, Any], column: str = "results", *args: Any, **kwargs: Any) -> str:
        return original(without_bookkeeping(result_dict, column), column, *args, **kwargs)

    setattr(make_table, _WRAPPED, True)
    lm_eval.utils.make_table = make_table
