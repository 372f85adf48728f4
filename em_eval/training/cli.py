"""``em-eval train RECIPE [key=value ...]``: EM-FT / EM-RL from a recipe YAML.

Runs the same under ``accelerate launch [--num_processes N] -m em_eval train ...``.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from em_eval.checkpoints import CheckpointError
from em_eval.training.config import TrainingConfigError, load_recipe, recipe_names, recipe_path
from em_eval.training.prompts import PromptDataError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="em-eval train",
        description="EM-FT / EM-RL training. Every config field can be overridden as key=value.",
        epilog="shipped recipes: " + ", ".join(recipe_names()) + ". Multi-GPU / multi-node: "
        "accelerate launch --num_processes N -m em_eval train RECIPE ...",
    )
    parser.add_argument("recipe", help="recipe YAML path, or the name of a shipped recipe (em_ft, em_rl_token, ...)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=1e-5 finetune=lora")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2: bad input, 1: a checkpoint could not be written)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_recipe(args.recipe, args.overrides)
        if args.print_config:
            print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
            return 0
        from em_eval.training.checkpointing import CheckpointWriteError
        from em_eval.training.loop import train

        try:
            train(config, recipe=str(recipe_path(args.recipe).resolve()))
        except CheckpointWriteError as exc:
            print(f"em-eval train: error: {exc}", file=sys.stderr)
            return 1
    except (TrainingConfigError, PromptDataError, CheckpointError) as exc:
        print(f"em-eval train: error: {exc}", file=sys.stderr)
        return 2
    return 0
