"""How the UGPhysics judges reach their sympy side: the time-limited grading worker, or in process (tests).

Both ``paper_judge`` and ``judge`` send their symbolic comparisons to one worker module,
:mod:`em_eval.tasks.ugphysics.symbolic`, as ``(op, args, timeout_s)``.
"""

from __future__ import annotations

from typing import Any, Callable

from em_eval.tasks.math.sympy_worker import WorkerCallError, WorkerTimeout, worker_for

WORKER = "em_eval.tasks.ugphysics.symbolic"
Call = Callable[[str, list, float], Any]


def in_worker(op: str, args: list, timeout_s: float) -> Any:
    """``op(*args)`` in the grading worker; False when it times out or raises."""
    try:
        return worker_for(WORKER).call(op, args, timeout_s)
    except (WorkerTimeout, WorkerCallError):
        return False


def in_process(op: str, args: list, timeout_s: float) -> Any:
    """``op(*args)`` here, with no time limit (for tests on known inputs); False when it raises."""
    from em_eval.tasks.ugphysics.symbolic import OPS

    try:
        return OPS[op](*args)
    except Exception:  # as the worker reports any exception: a failed comparison
        return False
