"""``em-eval`` / ``python -m em_eval``: one entry point, subcommands in their own modules."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "eval": ("em_eval.commands.eval_cmd", "run lm-eval with em-eval's models and tasks registered"),
    "demo": ("em_eval.commands.demo", "offline demo on the embedded model: EM-INF vs sampling on em_smoke"),
    "train": ("em_eval.training.cli", "EM-FT / EM-RL training from a recipe YAML"),
    "leaderboard": ("em_eval.leaderboard.cli", "tables, HTML and plots from lm-eval output folders"),
    "check": ("em_eval.gate.cli", "statistical regression gate: candidate vs baseline run"),
}


def _usage() -> str:
    lines = ["usage: em-eval COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`em-eval COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand's ``main(argv)``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"em-eval: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
