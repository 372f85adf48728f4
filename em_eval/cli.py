"""``em-eval`` / ``python -m em_eval``: every subcommand's arguments, each handed to its feature.

Exit codes: 0 success, 1 the command's own failure (``check``: a regression; ``train``: a
checkpoint that could not be written; ``sweep``: a collapse alarm or a failed evaluation), 2 unusable input.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

COMMANDS = {
    "eval": "run lm-eval with em-eval's models and tasks registered (lm_eval's arguments)",
    "demo": "offline demo on the embedded model: EM-INF vs sampling on em_smoke",
    "train": "EM-FT / EM-RL training from a recipe YAML",
    "leaderboard": "tables, HTML and plots from lm-eval output folders",
    "check": "statistical regression gate: candidate vs baseline run",
    "sweep": "evaluate every checkpoint of a training run: series against step, entropy law, collapse alarm",
    "passk": "pass@k curves (unbiased, with standard errors) of runs overlaid",
    "calibration": "AUROC, ECE and reliability diagrams of the telemetry's confidence signals",
    "voting": "confidence-weighted and confidence-filtered voting over stored samples",
    "semantic-entropy": "semantic entropy per problem over answer clusters",
    "serve": "vLLM's OpenAI server with em-eval's EM-INF processor (MODEL, then vLLM's server options)",
}
ANALYSES = ("passk", "calibration", "voting", "semantic-entropy")
PASS_THROUGH = ("eval", "train", "sweep", "serve")  # parse their own arguments (lm_eval's; a recipe's; vLLM's)


def build_parser() -> argparse.ArgumentParser:
    """The ``em-eval`` parser; ``eval``, ``train`` and ``serve`` take the rest of the line as they are."""
    parser = argparse.ArgumentParser(
        prog="em-eval",
        description=__doc__.split("\n\n")[0],
        epilog="`em-eval COMMAND --help` shows a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in PASS_THROUGH:
        sub.add_parser(name, help=COMMANDS[name], add_help=False).add_argument("rest", nargs=argparse.REMAINDER)
    _demo_arguments(sub.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"]))
    _leaderboard_arguments(
        sub.add_parser(
            "leaderboard",
            help=COMMANDS["leaderboard"],
            description="Leaderboard (Markdown, CSV, one static HTML page, PNG plots) from lm-eval output folders "
            "written with --output_path OUT --log_samples.",
        )
    )
    _check_arguments(
        sub.add_parser(
            "check",
            help=COMMANDS["check"],
            description="Paired statistical regression gate: candidate vs baseline lm-eval run "
            "(same tasks, same problems). "
            "Exit 0: no significant regression (warnings allowed); 1: regression; 2: unusable input.",
        )
    )
    for name in ANALYSES:
        _analysis_arguments(
            sub.add_parser(
                name,
                help=COMMANDS[name],
                description=COMMANDS[name].capitalize() + " from lm-eval output folders written with --log_samples.",
            ),
            name,
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASS_THROUGH:  # argparse would eat a leading --help meant for them
        return {"eval": _eval, "train": _train, "sweep": _sweep, "serve": _serve}[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    if args.command in ANALYSES:
        return _analysis(args)
    return {"demo": _demo, "leaderboard": _leaderboard, "check": _check}[args.command](args)


# eval ------------------------------------------------------------------------------------------


def _eval(argv: list[str]) -> int:
    from em_eval.eval_command import run_eval

    return run_eval(argv)


# serve -----------------------------------------------------------------------------------------


def _serve(argv: list[str]) -> int:
    """``em-eval serve MODEL [vLLM server options]`` (see :mod:`em_eval.serving.server`)."""
    from em_eval.serving.server import USAGE, serve
    from em_eval.user_errors import UserError

    if not argv or argv[0] in ("-h", "--help"):
        from em_eval.serving import server

        print(f"usage: {USAGE}\n\n{server.__doc__}\nvLLM's options: python -m {server.SERVER_MODULE} --help")
        return 0 if argv else 2
    try:
        return serve(argv)
    except (UserError, ImportError) as exc:
        print(f"em-eval serve: error: {exc}", file=sys.stderr)
        return 2


# demo ------------------------------------------------------------------------------------------


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    from em_eval.demo import MATH_TASK

    p.add_argument(
        "-o", "--output", type=Path, default=Path("em-eval-demo"), help="output folder (default ./em-eval-demo)"
    )
    p.add_argument("--model", default="smollm2-135m", help="pretrained= value (default: the embedded SmolLM2-135M)")
    p.add_argument("--limit", type=int, default=16, help="em_smoke problems (default 16)")
    p.add_argument("--math-limit", type=int, default=4, help=f"{MATH_TASK} problems; 0 skips it (default 4)")
    p.add_argument("--math-max-gen-toks", type=int, default=160, help=f"token limit on {MATH_TASK} (default 160)")
    p.add_argument(
        "--max-gen-toks", type=int, help="token limit for every task (overrides the defaults; for quick runs)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=1234, help="numpy/torch seed (python seed 0), as lm-eval's --seed")
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's choice; 1 on a busy, shared machine)"
    )
    p.add_argument(
        "--no-sweep",
        dest="sweep",
        action="store_false",
        help="skip the lab views: a two-step EM-FT run, the sweep over its two checkpoints, their pass@k "
        "curves (about a minute)",
    )


def _demo(args: argparse.Namespace) -> int:
    from em_eval.demo import run_demo

    return run_demo(args)


# train -----------------------------------------------------------------------------------------

TRAIN_USAGE = "em-eval train RECIPE [key=value ...] [--FIELD VALUE ...] [--print-config]"


def _train(argv: list[str]) -> int:
    """``em-eval train RECIPE``: fields from the recipe, then ``key=value`` and ``--field value``
    overrides, all parsed by the config's ``HfArgumentParser``. Runs the same under
    ``accelerate launch [--num_processes N] -m em_eval train ...``."""
    import yaml

    from em_eval.models.checkpoint_format import CheckpointError
    from em_eval.training.setup.config import ConfigParser, TrainingConfigError, load_recipe, recipe_path
    from em_eval.training.setup.prompts import PromptDataError

    head = argparse.ArgumentParser(prog="em-eval train", usage=TRAIN_USAGE, add_help=False)
    head.add_argument("recipe", nargs="?")
    head.add_argument("-h", "--help", action="store_true")
    head.add_argument("--print-config", action="store_true")
    known, rest = head.parse_known_args(argv)
    overrides = [item for item in rest if re.match(r"\w+=", item)]  # key=value; the rest: --field [value]
    flags = [item for item in rest if item not in overrides]
    try:
        if known.help and not known.recipe:
            print(_train_help())
            return 0
        if not known.recipe:
            print(
                f"usage: {TRAIN_USAGE}\nem-eval train: error: give a recipe (see em-eval train --help)", file=sys.stderr
            )
            return 2
        config = load_recipe(known.recipe, overrides)
        parser = ConfigParser(type(config), prog=f"em-eval train {known.recipe}", usage=TRAIN_USAGE)
        values = config.to_dict()
        values.pop("method")
        parser.set_defaults(**values)
        if known.help:
            print(parser.format_help())
            return 0
        config = parser.parse(flags)
        if known.print_config:
            print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
            return 0
        from em_eval.training.run.loop import train
        from em_eval.training.run.save_restore import CheckpointWriteError

        try:
            train(config, recipe=str(recipe_path(known.recipe).resolve()))
        except CheckpointWriteError as exc:
            print(f"em-eval train: error: {exc}", file=sys.stderr)
            return 1
    except (TrainingConfigError, PromptDataError, CheckpointError) as exc:
        print(f"em-eval train: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _train_help() -> str:
    """Every field of both methods with its type, default and help (EM-RL: what it adds or changes)."""
    from em_eval.training.setup.config import ConfigParser, EmFtConfig, EmRlConfig, recipe_names

    ft = ConfigParser(
        EmFtConfig,
        prog="em-eval train",
        usage=TRAIN_USAGE,
        description=(
            "EM-FT / EM-RL training. RECIPE: a recipe YAML, or a shipped recipe: "
            + ", ".join(recipe_names())
            + ". Every field below can be overridden as key=value or --field value; `em-eval train RECIPE --help` "
            "shows the recipe's values as defaults. Multi-GPU / multi-node: accelerate launch --num_processes N "
            "-m em_eval train RECIPE ...\n\nFields of em_ft recipes (and those EM-RL shares):"
        ),
    )
    rl = ConfigParser(EmRlConfig)
    ft_defaults = {a.dest: a.default for a in ft._actions}
    added = [a for a in rl._actions if a.dest != "help" and ft_defaults.get(a.dest, rl) != a.default]
    formatter = rl._get_formatter()
    formatter.start_section("em_rl recipes add or change")
    formatter.add_arguments(added)
    formatter.end_section()
    return ft.format_help() + "\n" + formatter.format_help()


# leaderboard -----------------------------------------------------------------------------------


def _leaderboard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "results",
        nargs="+",
        metavar="[LABEL=]RESULTS",
        help="lm-eval output folder or results_*.json (optionally LABEL=PATH to name a run)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder, e.g. leaderboards/my-run")
    p.add_argument("--title", default="em-eval leaderboard")
    p.add_argument("--metric", help="metric to rank by, NAME or NAME,FILTER (default: each task's primary metric)")
    p.add_argument("--max-response-chars", type=int, default=3000, help="truncate responses in the drill-down")


def _leaderboard(args: argparse.Namespace) -> int:
    from em_eval.leaderboard.table import markdown
    from em_eval.leaderboard.write import write_leaderboard
    from em_eval.results import ResultsError, load_runs

    try:
        runs = load_runs(args.results, metric=args.metric)
    except ResultsError as exc:
        print(f"em-eval leaderboard: error: {exc}", file=sys.stderr)
        return 2
    rows, paths = write_leaderboard(runs, args.output, args.title, args.max_response_chars)
    print(markdown(rows))
    print(
        f"wrote {len(rows)} rows from {len(runs)} run(s): {paths['html']} (open in a browser), "
        f"{paths['markdown']}, {paths['csv']}, {args.output / 'plots'}/"
    )
    return 0


# analyses --------------------------------------------------------------------------------------


def _analysis_arguments(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument(
        "results",
        nargs="+",
        metavar="[LABEL=]RESULTS",
        help="lm-eval output folder or results_*.json (LABEL=PATH names a run, e.g. base=out/base)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder for the tables and plots")
    if name in ("calibration", "voting"):
        from em_eval.analysis.confidence import DEFAULT_SIGNALS, SIGNALS

        p.add_argument(
            "--signals",
            nargs="+",
            metavar="SIGNAL",
            help=f"default: {' '.join(DEFAULT_SIGNALS)}; known: {' '.join(SIGNALS)}",
        )
    if name == "calibration":
        p.add_argument("--bins", type=int, default=10, help="reliability bins (default 10)")
    if name == "voting":
        p.add_argument(
            "--shares",
            type=float,
            nargs="+",
            default=[0.1, 0.5, 0.9],
            help="shares of the most confident samples kept (DeepConf's top-eta; default 0.1 0.5 0.9)",
        )


def _analysis(args: argparse.Namespace) -> int:
    from em_eval.analysis import report
    from em_eval.analysis.confidence import signal_names
    from em_eval.analysis.samples import load_sample_runs
    from em_eval.results import ResultsError

    try:
        runs = load_sample_runs(args.results)
        if args.command == "passk":
            done = report.passk_report(runs, args.output)
        elif args.command == "calibration":
            done = report.calibration_report(runs, args.output, signal_names(args.signals), args.bins)
        elif args.command == "voting":
            done = report.voting_report(runs, args.output, signal_names(args.signals), args.shares)
        else:
            done = report.semantic_entropy_report(runs, args.output)
    except (ResultsError, ValueError) as exc:
        print(f"em-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {len(done['rows'])} rows from {len(runs)} run(s): {done['csv']}, {done['json']}"
        + (f", {args.output / 'plots'}/" if done.get("plots") else "")
    )
    return 0


# check -----------------------------------------------------------------------------------------


def _check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--baseline", required=True, help="baseline lm-eval --output_path folder (one run) or results_*.json"
    )
    p.add_argument(
        "--candidate", required=True, help="candidate lm-eval --output_path folder (one run) or results_*.json"
    )
    p.add_argument("--tasks", nargs="+", help="tasks to gate (default: all; both runs must have the same tasks)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate over tasks (default 0.05)")
    p.add_argument(
        "--margin", type=float, default=0.0, help="tolerated drop as a fraction, e.g. 0.02 = 2 points (default 0)"
    )
    p.add_argument("--power", type=float, default=0.8, help="power for the smallest detectable drop (default 0.8)")
    p.add_argument(
        "--suspicious-gain",
        type=float,
        default=0.10,
        help="warn when a significant gain exceeds this fraction (default 0.10)",
    )
    p.add_argument("--metric", help="metric to compare, NAME or NAME,FILTER (default: the task's primary metric)")
    p.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples for n samples per problem")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("em-eval-gate"),
        help="where gate.json, gate.junit.xml and annotations.txt go (default ./em-eval-gate)",
    )
    p.add_argument(
        "--annotations",
        choices=("auto", "always", "never"),
        default="auto",
        help="print GitHub workflow annotations (auto: when GITHUB_ACTIONS=true)",
    )


def _check(args: argparse.Namespace) -> int:
    from em_eval.gate.compare import GateSettings, MismatchError, gate
    from em_eval.gate.report import annotations, markdown_summary, report_dict, text_report, write_outputs
    from em_eval.results import ResultsError, load_single_run

    annotate = args.annotations == "always" or (
        args.annotations == "auto" and os.environ.get("GITHUB_ACTIONS") == "true"
    )
    try:
        settings = GateSettings(
            args.alpha, args.margin, args.power, args.suspicious_gain, resamples=args.resamples, seed=args.seed
        )
        tasks = [t for item in args.tasks or [] for t in item.split(",") if t]
        baseline = load_single_run(args.baseline, "baseline", args.metric)
        candidate = load_single_run(args.candidate, "candidate", args.metric)
        verdicts = gate(baseline, candidate, settings, tasks or None)
    except (ResultsError, MismatchError, ValueError) as exc:
        print(f"em-eval check: error: {exc}", file=sys.stderr)
        if annotate:
            print(f"::error title=em-eval check::{str(exc).replace(chr(10), '%0A')}")
        return 2
    report = report_dict(baseline, candidate, verdicts, settings)
    paths = write_outputs(args.output_dir, report, verdicts)
    print(text_report(baseline, candidate, verdicts))
    print(f"reports: {paths['json']}  {paths['junit']}  {paths['annotations']}")
    if annotate:
        print("\n".join(annotations(verdicts)))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as fh:
            fh.write(markdown_summary(report))
    return 1 if report["status"] == "fail" else 0


# sweep -----------------------------------------------------------------------------------------


def _sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="em-eval sweep",
        usage="em-eval sweep RUN_DIR --tasks TASK [...] [options] [-- LM_EVAL_ARGS ...]",
        description="Evaluate every checkpoint of an `em-eval train` run through lm-eval (resumable: a checkpoint "
        "with complete results is not evaluated again), then accuracy, entropy, response length and "
        "transitional-word rate against step, the entropy-performance law R = -a*exp(H) + b with its "
        "ceiling, and paired tests between consecutive checkpoints. Exit 0: no alarm; 1: a collapse "
        "alarm (accuracy dropped significantly while entropy fell; with --fail-on-drop any significant "
        "drop) or a failed evaluation; 2: unusable input. Arguments after -- go to lm_eval "
        "(e.g. -- --limit 50 --device cuda --batch_size auto --apply_chat_template).",
    )
    p.add_argument("run_dir", type=Path, help="the run's output_dir (holding checkpoint-NNNNNN folders)")
    p.add_argument("--tasks", nargs="+", required=True, help="lm-eval tasks (space- or comma-separated)")
    p.add_argument("-o", "--output", type=Path, help="sweep folder (default RUN_DIR/sweep)")
    p.add_argument("--backend", choices=("hf", "vllm"), default="hf", help="em_inf (hf) or em_inf_vllm (vllm)")
    p.add_argument("--model-args", default="", help="further model args, e.g. dtype=bfloat16 (em_mode defaults to off)")
    p.add_argument("--base", action="store_true", help="also evaluate the run's base model, as step 0")
    p.add_argument(
        "--same-process",
        action="store_true",
        help="run lm-eval in this process (faster start; default: a fresh process per checkpoint)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate over pairs and tasks")
    p.add_argument("--margin", type=float, default=0.0, help="tolerated drop between checkpoints, a fraction")
    p.add_argument("--min-entropy-fall", type=float, default=0.0, help="entropy fall (nats) that counts as falling")
    p.add_argument("--fail-on-drop", action="store_true", help="exit 1 on any significant drop, not only a collapse")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (n samples per problem)")
    return p


def _sweep(argv: list[str]) -> int:
    from em_eval.gate.compare import GateSettings, MismatchError
    from em_eval.models.checkpoint_format import CheckpointError
    from em_eval.results import ResultsError
    from em_eval.sweep.evaluate import EvaluationFailed, SweepError, in_process, in_subprocess
    from em_eval.sweep.run import run_sweep

    ours, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = _sweep_parser().parse_args(ours)
    try:
        result = run_sweep(
            args.run_dir,
            [t for item in args.tasks for t in item.split(",") if t],
            args.output,
            backend=args.backend,
            model_args=args.model_args,
            lm_eval_args=extra,
            include_base=args.base,
            gate=GateSettings(args.alpha, args.margin, seed=args.seed),
            min_entropy_fall=args.min_entropy_fall,
            fail_on_drop=args.fail_on_drop,
            evaluator=in_process if args.same_process else in_subprocess,
        )
    except EvaluationFailed as exc:
        print(f"em-eval sweep: error: {exc}", file=sys.stderr)
        return 1
    except (SweepError, CheckpointError, ResultsError, MismatchError, ValueError) as exc:
        print(f"em-eval sweep: error: {exc}", file=sys.stderr)
        return 2
    print(result.paths["markdown"].read_text())
    print(f"status: {result.status}; reports: {', '.join(str(p) for p in result.paths.values())}")
    return 0 if result.status == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
