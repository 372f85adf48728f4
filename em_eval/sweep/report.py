"""Sweep outputs: ``sweep.json`` (everything), ``sweep.md`` (one table per task, the fit, the alarms)
and ``plots/sweep_<task>.png`` (accuracy, entropy, length and transitional-word rate against step, and
accuracy against entropy with the fitted law and its ceiling)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from em_eval.leaderboard.plots import DPI, plt, slug
from em_eval.sweep.series import TaskSeries


def report_dict(series: Sequence[TaskSeries], status: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "settings": settings, "tasks": [s.as_dict() for s in series]}


def _num(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if value is None else f"{scale * value:.{digits}f}"


def markdown(series: Sequence[TaskSeries], status: str) -> str:
    """Per task: a row per checkpoint (with the paired test from the one before), the fit, the alarms."""
    out = [f"# Checkpoint sweep: {status}", ""]
    for s in series:
        out += [
            f"## {s.task} ({s.metric})",
            "",
            "| step | checkpoint | accuracy % | entropy (nats) | length (tokens) | transitional / 1k words | "
            "vs previous (CI) |",
            "|---|---|---|---|---|---|---|",
        ]
        verdicts = [None, *s.steps]
        for p, v in zip(s.points, verdicts):
            paired = (
                ""
                if v is None
                else (
                    f"{100 * v.comparison.diff:+.1f} ({100 * v.comparison.ci_low:+.1f}, "
                    f"{100 * v.comparison.ci_high:+.1f}){' **drop**' if v.regression else ''}"
                )
            )
            out.append(
                f"| {p.step} | {p.checkpoint} | {_num(p.accuracy, 100, 1)} | {_num(p.entropy, 1, 4)} | "
                f"{_num(p.length, 1, 1)} | {_num(p.transitional_rate, 1, 2)} | {paired} |"
            )
        f = s.fit
        out += [
            "",
            "Entropy-performance law R = -a·exp(H) + b: "
            + (
                "needs two checkpoints with different entropies"
                if f is None
                else f"a = {f.a:.4g}, b = {f.b:.4g}, predicted ceiling (H = 0) {100 * f.ceiling:.1f}%, "
                f"R² {_num(f.r2, 1, 3)} over {f.n} checkpoints"
                + ("" if f.a > 0 else "; a <= 0: performance did not rise as entropy fell, so this is no ceiling")
            ),
        ]
        out += [f"- ALARM: {a.message()}" for a in s.alarms] or ["- no collapse alarm"]
        out.append("")
    return "\n".join(out)


def plot_task(s: TaskSeries, path: Path) -> Path:
    """Five panels for one task; steps with a collapse alarm in red."""
    steps = [p.step for p in s.points]
    alarm_steps = {a.step for a in s.alarms}
    panels = [
        ("accuracy %", [100 * p.accuracy for p in s.points]),
        ("mean entropy (nats)", [p.entropy for p in s.points]),
        ("response length (tokens)", [p.length for p in s.points]),
        ("transitional words / 1k", [p.transitional_rate for p in s.points]),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(19, 3.4))
    for ax, (label, values) in zip(axes, panels):
        known = [(x, y) for x, y in zip(steps, values) if y is not None]
        if known:
            ax.plot(*zip(*known), marker="o", color="#0969da")
            hot = [(x, y) for x, y in known if x in alarm_steps]
            if hot:
                ax.scatter(*zip(*hot), s=80, color="#cf222e", zorder=3, label="collapse alarm")
                ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    ax = axes[4]
    known = [(p.entropy, 100 * p.accuracy) for p in s.points if p.entropy is not None]
    if known:
        ax.scatter(*zip(*known), color="#0969da", zorder=3)
    if s.fit is not None and known:
        lo, hi = 0.0, max(h for h, _ in known) * 1.05
        xs = [lo + (hi - lo) * i / 60 for i in range(61)]
        ax.plot(
            xs,
            [100 * s.fit.predict(x) for x in xs],
            color="#57606a",
            lw=1,
            label=f"-a·e^H + b, ceiling {100 * s.fit.ceiling:.1f}%",
        )
        ax.legend(fontsize=7)
    ax.set_xlabel("mean entropy (nats)")
    ax.set_title("accuracy % vs entropy", fontsize=10)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{s.task}: checkpoint sweep", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_report(out_dir: Path, series: Sequence[TaskSeries], status: str, settings: dict[str, Any]) -> dict[str, Path]:
    """``sweep.json``, ``sweep.md`` and one PNG per task (``plots/sweep_<task>.png``, where a leaderboard written
    into the same folder shows it) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "sweep.json", "markdown": out_dir / "sweep.md"}
    data = report_dict(series, status, settings)
    paths["json"].write_text(json.dumps(data, indent=2) + "\n")
    paths["markdown"].write_text(markdown(series, status) + "\n")
    for s in series:
        paths[f"plot:{s.task}"] = plot_task(s, out_dir / "plots" / f"sweep_{slug(s.task)}.png")
    return paths
