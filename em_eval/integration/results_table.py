"""Target ``lm_eval.utils.make_table``: the printed results table leaves out the bookkeeping fields
of ``em_`` tasks (``grading``, the per-response records, and ``n``, responses per problem).

They stay in results.json and the ``--log_samples`` rows, where the leaderboard and the gate read
them. lm-eval's CLI imports ``make_table`` at call time (``_cli/run.py``), so rebinding the module
attribute reaches it. Removed once ``n``/``grading`` leave the metrics (issue 25).
"""

from __future__ import annotations

import functools
from typing import Any

BOOKKEEPING_METRICS = ("grading", "n")
OUR_PREFIX = "em_"
_WRAPPED = "_em_eval_table"


def without_bookkeeping(result_dict: dict[str, Any], column: str = "results") -> dict[str, Any]:
    """A copy of lm-eval's ``result_dict`` whose ``column`` lacks our tasks' bookkeeping metrics."""
    section = result_dict.get(column)
    if not isinstance(section, dict):
        return result_dict
    trimmed = {}
    for task, metrics in section.items():
        if str(task).startswith(OUR_PREFIX) and isinstance(metrics, dict):
            metrics = {
                k: v
                for k, v in metrics.items()
                if k.partition(",")[0].removesuffix("_stderr") not in BOOKKEEPING_METRICS
            }
        trimmed[task] = metrics
    return {**result_dict, column: trimmed}


def install(utils_module: Any = None) -> None:
    """Wrap ``lm_eval.utils.make_table`` (idempotent)."""
    if utils_module is None:
        import lm_eval.utils as utils_module
    original = utils_module.make_table
    if getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def make_table(result_dict: dict[str, Any], column: str = "results", *args: Any, **kwargs: Any) -> str:
        return original(without_bookkeeping(result_dict, column), column, *args, **kwargs)

    setattr(make_table, _WRAPPED, True)
    utils_module.make_table = make_table
