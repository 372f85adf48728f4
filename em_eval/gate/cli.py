"""``em-eval check``: exit 1 only on a statistically significant drop larger than the margin.

Exit codes: 0 no significant regression (warnings allowed), 1 regression, 2 unusable input
(missing files, runs that are not comparable).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from em_eval.gate.compare import GateSettings, MismatchError, gate
from em_eval.gate.report import annotations, markdown_summary, report_dict, text_report, write_outputs
from em_eval.leaderboard.results import ResultsError, Run, load_run, result_files


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="em-eval check",
        description="Paired statistical regression gate: candidate vs baseline lm-eval run (same tasks, same problems).",
    )
    p.add_argument("--baseline", required=True, help="baseline lm-eval --output_path folder (one run) or results_*.json")
    p.add_argument("--candidate", required=True, help="candidate lm-eval --output_path folder (one run) or results_*.json")
    p.add_argument("--tasks", nargs="+", help="tasks to gate (default: all; both runs must have the same tasks)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate over tasks (default 0.05)")
    p.add_argument("--margin", type=float, default=0.0, help="tolerated drop as a fraction, e.g. 0.02 = 2 points (default 0)")
    p.add_argument("--power", type=float, default=0.8, help="power for the smallest detectable drop (default 0.8)")
    p.add_argument("--suspicious-gain", type=float, default=0.10,
                   help="warn when a significant gain exceeds this fraction (default 0.10)")
    p.add_argument("--metric", help="metric to compare, NAME or NAME,FILTER (default: the task's primary metric)")
    p.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples for n samples per problem")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("em-eval-gate"),
                   help="where gate.json, gate.junit.xml and annotations.txt go (default ./em-eval-gate)")
    p.add_argument("--annotations", choices=("auto", "always", "never"), default="auto",
                   help="print GitHub workflow annotations (auto: when GITHUB_ACTIONS=true)")
    return p


def single_run(spec: str, what: str, metric: str | None) -> Run:
    files = result_files(Path(spec))
    if len(files) != 1:
        listing = "\n  ".join(str(f) for f in files)
        raise ResultsError(f"--{what} {spec} holds {len(files)} runs; pass one results_*.json file:\n  {listing}")
    return load_run(files[0], metric=metric)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = GateSettings(args.alpha, args.margin, args.power, args.suspicious_gain,
                                resamples=args.resamples, seed=args.seed)
        tasks = [t for item in args.tasks or [] for t in item.split(",") if t]
        baseline = single_run(args.baseline, "baseline", args.metric)
        candidate = single_run(args.candidate, "candidate", args.metric)
        verdicts = gate(baseline, candidate, settings, tasks or None)
    except (ResultsError, MismatchError, ValueError) as exc:
        print(f"em-eval check: error: {exc}", file=sys.stderr)
        if args.annotations == "always" or (args.annotations == "auto" and os.environ.get("GITHUB_ACTIONS") == "true"):
            print(f"::error title=em-eval check::{str(exc).replace(chr(10), '%0A')}")
        return 2
    report = report_dict(baseline, candidate, verdicts, settings)
    paths = write_outputs(args.output_dir, report, verdicts)
    print(text_report(baseline, candidate, verdicts))
    print(f"reports: {paths['json']}  {paths['junit']}  {paths['annotations']}")
    if args.annotations == "always" or (args.annotations == "auto" and os.environ.get("GITHUB_ACTIONS") == "true"):
        print("\n".join(annotations(verdicts)))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as fh:
            fh.write(markdown_summary(report))
    return 1 if report["status"] == "fail" else 0
