"""PNG plots (matplotlib, Agg): accuracy vs generated tokens per method, and per-task bars."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from em_eval.em_inf.trace import TokenStep  # noqa: E402
from em_eval.leaderboard.table import Row  # noqa: E402

DPI = 110
# Names come from users (models, tasks, labels): drawn as plain text, never as mathtext (two "$" in a model name
# made matplotlib parse it, and "$\frac$" raised) or LaTeX, whatever the user's matplotlibrc says.
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "task"


def _colors(labels: Sequence[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(dict.fromkeys(labels))}


MARKERS = "osD^vP*Xph"


def _markers(labels: Sequence[str]) -> dict[str, str]:
    return {label: MARKERS[i % len(MARKERS)] for i, label in enumerate(dict.fromkeys(labels))}


def spread_ties(points: Sequence[tuple[float, float]], width: float) -> list[float]:
    """Horizontal offsets that pull apart points lying on top of each other: each group of
    points closer than ``width`` (in both x and score) is spread evenly over ``width`` around
    its place, in input order; a lone point keeps offset 0."""
    offsets = [0.0] * len(points)
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        group = next((g for g in groups if abs(points[g[0]][0] - x) < width and abs(points[g[0]][1] - y) < 1.0), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    for group in groups:
        for k, i in enumerate(group):
            offsets[i] = (k - (len(group) - 1) / 2) * width / max(len(group) - 1, 1) if len(group) > 1 else 0.0
    return offsets


@matplotlib.rc_context(PLAIN_TEXT)
def accuracy_vs_tokens(rows: Sequence[Row], path: Path) -> Path | None:
    """One panel per task: score (with 95% CI) against mean generated tokens per problem, a point
    per run; points that coincide are spread sideways (the table has the exact values)."""
    rows = [r for r in rows if r.tokens_per_problem is not None]
    if not rows:
        return None
    tasks = list(dict.fromkeys(r.task for r in rows))
    colors, markers = _colors([r.label for r in rows]), _markers([r.label for r in rows])
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks) + 1.8, 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r.task == task]
        xs = [r.tokens_per_problem for r in mine]
        width = 0.1 * ((max(xs) - min(xs)) or max(0.2 * max(xs), 1.0))  # a tenth of the panel's span
        offsets = spread_ties([(r.tokens_per_problem, 100 * r.score) for r in mine], width)
        for r, dx in zip(mine, offsets):
            ax.errorbar(
                r.tokens_per_problem + dx,
                100 * r.score,
                yerr=[[100 * (r.score - r.ci_low)], [100 * (r.ci_high - r.score)]],
                fmt=markers[r.label],
                color=colors[r.label],
                capsize=3,
                label=r.label,
                markersize=7,
            )
        ax.set_title(task + ("\n(overlapping points spread sideways)" if any(offsets) else ""), fontsize=10)
        ax.set_xlabel("generated tokens per problem (all samples)")
        ax.set_ylabel("score % (95% CI)")
        ax.grid(alpha=0.3)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.8 / (4.2 * len(tasks) + 1.8), 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


@matplotlib.rc_context(PLAIN_TEXT)
def task_bars(rows: Sequence[Row], task: str, path: Path) -> Path:
    """Bars of one task's score per run with 95% CIs and the value written on each (a 0 bar has no
    height); the task's second verdict (if any) as a cross, the paper's number (if any) as a hollow diamond,
    both named in a legend beside the axes (it hides no bar)."""
    rows = [r for r in rows if r.task == task]
    colors = _colors([r.label for r in rows])
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(rows) + 1.5), 3.6))
    xs = range(len(rows))
    bars = ax.bar(
        xs,
        [100 * r.score for r in rows],
        color=[colors[r.label] for r in rows],
        yerr=[[100 * (r.score - r.ci_low) for r in rows], [100 * (r.ci_high - r.score) for r in rows]],
        capsize=4,
    )
    ax.bar_label(bars, labels=[f"{100 * r.score:.1f}" for r in rows], fontsize=7, padding=2)  # zeros show too
    second = [(i, r.second_score) for i, r in enumerate(rows) if r.second_score is not None]
    if second:
        names = ", ".join(dict.fromkeys(r.second_metric for r in rows if r.second_metric))
        ax.scatter(
            [i for i, _ in second],
            [100 * v for _, v in second],
            marker="X",
            s=45,
            color="black",
            zorder=3,
            label=f"second verdict\n({names})",
        )
    reported = [(i, r.paper_value) for i, r in enumerate(rows) if r.paper_value is not None]
    if reported:
        ax.scatter(
            [i for i, _ in reported],
            [100 * v for _, v in reported],
            marker="D",
            facecolors="none",
            edgecolors="black",
            zorder=3,
            label="paper (reported,\nnot reproduced)",
        )
    if second or reported:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.set_figwidth(fig.get_figwidth() + 1.6)
    ax.set_xticks(list(xs), [f"{r.model}\n{r.label}" for r in rows], fontsize=7, rotation=20, ha="right")
    ax.set_ylabel(f"{rows[0].metric} % (95% CI)")
    ax.set_title(f"{task} (n={rows[0].n})")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


@matplotlib.rc_context(PLAIN_TEXT)
def entropy_trace(steps: Sequence[TokenStep], path: Path) -> Path:
    """One response's next-token entropy per token, before and after EM-INF (adjusted tokens marked)."""
    xs = range(len(steps))
    before, after = [s.entropy_before for s in steps], [s.entropy_after for s in steps]
    fig, ax = plt.subplots(figsize=(10, 2.1))
    ax.fill_between(xs, after, before, color="#0969da", alpha=0.25, step="mid", label="removed by EM-INF")
    ax.step(xs, before, where="mid", color="#57606a", lw=1, label="before")
    ax.step(xs, after, where="mid", color="#cf222e", lw=1, label="after")
    marked = [i for i, s in enumerate(steps) if s.adjusted]
    ax.scatter(marked, [after[i] for i in marked], s=6, color="#0969da", zorder=3, label="adjusted token")
    ax.set_xlim(-0.5, max(len(steps) - 0.5, 0.5))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("response token", fontsize=8)
    ax.set_ylabel("entropy (nats)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=4, loc="lower right", bbox_to_anchor=(1, 1), frameon=False, borderaxespad=0.2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_plots(rows: Sequence[Row], out_dir: Path) -> dict[str, Path]:
    """All plots into ``out_dir``: ``accuracy_vs_tokens.png`` and ``task_<task>.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    scatter = accuracy_vs_tokens(rows, out_dir / "accuracy_vs_tokens.png")
    if scatter:
        paths["accuracy_vs_tokens"] = scatter
    for task in dict.fromkeys(r.task for r in rows):
        paths[f"task:{task}"] = task_bars(rows, task, out_dir / f"task_{slug(task)}.png")
    return paths
