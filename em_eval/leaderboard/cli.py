"""``em-eval leaderboard RESULTS... -o leaderboards/<name>``: tables, one HTML page and PNG plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from em_eval.leaderboard.html import render
from em_eval.leaderboard.plots import write_plots
from em_eval.leaderboard.results import ResultsError, Run, load_runs
from em_eval.leaderboard.table import Row, build_rows, csv_text, markdown, paper_markdown


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="em-eval leaderboard",
        description="Leaderboard (Markdown, CSV, one static HTML page, PNG plots) from lm-eval output folders "
                    "written with --output_path OUT --log_samples.",
    )
    p.add_argument("results", nargs="+", metavar="[LABEL=]RESULTS",
                   help="lm-eval output folder or results_*.json (optionally LABEL=PATH to name a run)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder, e.g. leaderboards/my-run")
    p.add_argument("--title", default="em-eval leaderboard")
    p.add_argument("--metric", help="metric to rank by, NAME or NAME,FILTER (default: each task's primary metric)")
    p.add_argument("--max-response-chars", type=int, default=3000, help="truncate responses in the drill-down")
    return p


def write_leaderboard(runs: Sequence[Run], out: Path, title: str = "em-eval leaderboard",
                      max_chars: int = 3000) -> tuple[list[Row], dict[str, Path]]:
    """Write every output into ``out``; returns the rows and the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = build_rows(runs)
    plots = write_plots(rows, out / "plots")
    reported = paper_markdown(r.task for r in rows)
    md = f"# {title}\n\nScore = per-problem mean of the task's metric, 95% CI in brackets; tokens and seconds per problem count every sample. † = reported by the paper, not reproduced.\n\n" + markdown(rows)
    if reported:
        md += "\n## The paper's numbers on these benchmarks (reported, not reproduced)\n\n" + reported
    paths = {"markdown": out / "leaderboard.md", "csv": out / "leaderboard.csv", "json": out / "leaderboard.json",
             "html": out / "index.html"}
    paths["markdown"].write_text(md)
    paths["csv"].write_text(csv_text(rows))
    paths["json"].write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    paths["html"].write_text(render(rows, runs, plots, title, max_chars))
    return rows, {**paths, **{f"plot:{k}": v for k, v in plots.items()}}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = load_runs(args.results, metric=args.metric)
    except ResultsError as exc:
        print(f"em-eval leaderboard: error: {exc}", file=sys.stderr)
        return 2
    rows, paths = write_leaderboard(runs, args.output, args.title, args.max_response_chars)
    print(markdown(rows))
    print(f"wrote {len(rows)} rows from {len(runs)} run(s): {paths['html']} (open in a browser), "
          f"{paths['markdown']}, {paths['csv']}, {args.output / 'plots'}/")
    return 0
