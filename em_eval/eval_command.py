"""``em-eval eval``: the stock ``lm_eval`` CLI in this process after explicit registration (no start-up hook
needed), with em-eval's tasks through lm-eval's public ``--include_path`` and user errors in one line."""

from __future__ import annotations

import os
import sys


def with_include_path(argv: list[str], tasks_dir: str) -> list[str] | None:
    """lm-eval's arguments with ``--include_path tasks_dir`` added; None where the user gave their own
    (lm-eval 0.4.13 takes one folder) or asked only for help."""
    if any(a == "--include_path" or a.startswith("--include_path=") for a in argv):
        return None
    if not argv or argv[0] in ("-h", "--help"):
        return list(argv)
    return [*argv, "--include_path", tasks_dir]


def run_eval(argv: list[str]) -> int:
    """The stock ``lm_eval`` CLI after explicit registration (no startup hook needed)."""
    from em_eval import plugin

    passed = with_include_path(argv, str(plugin.tasks_dir()))
    plugin.activate(task_path=passed is None)  # the user's --include_path: ours joins through TaskManager
    argv = argv if passed is None else passed
    from lm_eval.__main__ import cli_evaluate

    from em_eval.user_errors import TRACEBACK_VAR, find_user_error

    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:
        found = find_user_error(exc)
        if found is None or os.environ.get(TRACEBACK_VAR):
            raise
        print(f"em-eval eval: error: {found}\n(the full traceback: {TRACEBACK_VAR}=1)", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved
    return 0
