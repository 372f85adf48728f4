"""``em-eval eval ...``: the stock ``lm_eval`` CLI with our models and tasks registered."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Run ``lm_eval`` with ``argv`` after explicit registration (no startup hook needed)."""
    from em_eval import plugin

    plugin.activate()
    from lm_eval.__main__ import cli_evaluate

    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        sys.argv = saved
    return 0
