"""Write a leaderboard folder: Markdown, CSV, JSON, one static HTML page and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from em_eval.leaderboard.html import render
from em_eval.leaderboard.plots import entropy_trace, write_plots
from em_eval.leaderboard.story import Story
from em_eval.leaderboard.table import (
    Row,
    build_rows,
    csv_text,
    markdown,
    paper_markdown,
)
from em_eval.results import Run

ANALYSIS_PLOTS = ("passk", "reliability", "sweep")


def write_leaderboard(
    runs: Sequence[Run],
    out: Path,
    title: str = "em-eval leaderboard",
    max_chars: int = 3000,
    story: Story | None = None,
) -> tuple[list[Row], dict[str, Path]]:
    """Write every output into ``out``; returns the rows and the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = build_rows(runs)
    plots = write_plots(rows, out / "plots")
    for i, view in enumerate(story.views if story else (), 1):
        plots[f"view:{i}"] = entropy_trace(view.steps, out / "plots" / f"em_inf_trace_{i}.png")
    for kind in ANALYSIS_PLOTS:  # written into this folder by em-eval passk / calibration / sweep
        for path in sorted((out / "plots").glob(f"{kind}_*.png")):
            plots[f"analysis:{path.stem}"] = path
    reported = paper_markdown(r.task for r in rows)
    md = (
        f"# {title}\n\nScore = per-problem mean of the task's metric, 95% CI in brackets; tokens and seconds per "
        "problem count every sample. † = reported by the paper, not reproduced, shown only where the model, "
        'method, temperature, top_p and N match the run\'s; "– (not comparable ...)" names the settings that '
        "differ. Second verdict = the same responses judged by the task's other grader, where it logs one "
        "(math: math-verify; UGPhysics: accuracy_paper, the paper's judge reproduced, bugs included); "
        '"† vs METRIC" = the paper\'s number compares with that verdict, not with the score.\n\n' + markdown(rows)
    )
    if reported:
        md += "\n## The paper's numbers on these benchmarks (reported, not reproduced)\n\n" + reported
    paths = {
        "markdown": out / "leaderboard.md",
        "csv": out / "leaderboard.csv",
        "json": out / "leaderboard.json",
        "html": out / "index.html",
    }
    paths["markdown"].write_text(md)
    paths["csv"].write_text(csv_text(rows))
    paths["json"].write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    paths["html"].write_text(render(rows, runs, plots, title, max_chars, story))
    return rows, {**paths, **{f"plot:{k}": v for k, v in plots.items()}}
