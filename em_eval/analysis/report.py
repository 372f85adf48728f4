"""Tables (JSON, CSV) and plots (PNG) of the analyses over :class:`SampleRun` s, into a folder."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from em_eval.analysis.calibration import auroc, expected_calibration_error, reliability  # noqa: E402
from em_eval.analysis.confidence import Signal  # noqa: E402
from em_eval.analysis.passk import pass_at_k_curve  # noqa: E402
from em_eval.analysis.samples import ProblemSamples, SampleRun  # noqa: E402
from em_eval.analysis.semantic import semantic_entropy  # noqa: E402
from em_eval.analysis.voting import budget_majority, filtered_correct, weighted_correct  # noqa: E402
from em_eval.leaderboard.plots import DPI, slug  # noqa: E402
from em_eval.metrics import majority_correct, mean_stderr  # noqa: E402

Z95 = 1.959964


def unique_labels(runs: Sequence[SampleRun]) -> list[str]:
    """Run labels, numbered where two runs share one (name runs with LABEL=PATH)."""
    seen: dict[str, int] = {}
    out = []
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
        out.append(run.label if seen[run.label] == 1 else f"{run.label} ({seen[run.label]})")
    return out


def _tasks(runs: Sequence[SampleRun]) -> list[str]:
    return list(dict.fromkeys(t for run in runs for t in run.tasks))


def _write(out: Path, name: str, rows: list[dict[str, Any]]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "csv": out / f"{name}.csv"}
    paths["json"].write_text(json.dumps(rows, indent=1))
    with open(paths["csv"], "w", newline="") as fh:
        nested = {k for r in rows for k, v in r.items() if isinstance(v, (list, dict))}  # in the JSON only
        fields = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in nested]
        writer = csv.DictWriter(fh, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return paths


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


def _figure(panels: int) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.6), squeeze=False)
    return fig, list(axes[0])


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ---- pass@k ---------------------------------------------------------------------------------
def passk_report(runs: Sequence[SampleRun], out: Path) -> dict[str, Any]:
    """``passk.json``/``.csv`` (task, run, k, mean, stderr) and one overlay plot per task."""
    labels = unique_labels(runs)
    rows: list[dict[str, Any]] = []
    plots = {}
    for task in _tasks(runs):
        fig, (ax,) = _figure(1)
        for label, run in zip(labels, runs):
            problems = run.tasks.get(task)
            if not problems:
                continue
            curve = pass_at_k_curve([p.correct for p in problems])
            rows += [
                {
                    "task": task,
                    "run": label,
                    "k": pt.k,
                    "pass_at_k": _clean(pt.estimate.mean),
                    "stderr": _clean(pt.estimate.stderr),
                    "problems": pt.estimate.n,
                }
                for pt in curve
            ]
            ks = [pt.k for pt in curve]
            means = [pt.estimate.mean for pt in curve]
            half = [Z95 * pt.estimate.stderr for pt in curve]
            ax.plot(ks, means, marker="o", markersize=3, label=label)
            ax.fill_between(
                ks,
                [max(m - h, 0.0) for m, h in zip(means, half)],
                [min(m + h, 1.0) for m, h in zip(means, half)],
                alpha=0.2,
            )
        ax.set_xscale("log", base=2)
        ax.set(xlabel="k (samples)", ylabel="pass@k", title=f"{task}: unbiased pass@k, 95% CI")
        ax.legend(fontsize=7)
        plots[task] = _save(fig, out / "plots" / f"passk_{slug(task)}.png")
    return {"rows": rows, "plots": plots, **_write(out, "passk", rows)}


# ---- calibration ----------------------------------------------------------------------------
def _signal_values(problems: Sequence[ProblemSamples], signal: Signal) -> tuple[list[float], list[bool]]:
    values, correct = [], []
    for p in problems:
        for i in range(p.n):
            v = signal.value(p, i)
            if v is not None:
                values.append(v)
                correct.append(p.correct[i])
    return values, correct


def calibration_report(
    runs: Sequence[SampleRun], out: Path, signals: Sequence[Signal], bins: int = 10
) -> dict[str, Any]:
    """Per task, run and signal: responses with the signal, accuracy, AUROC, ECE and reliability
    bins (probability signals); one reliability plot per task (a panel per probability signal)."""
    labels = unique_labels(runs)
    rows: list[dict[str, Any]] = []
    plots = {}
    for task in _tasks(runs):
        drawn = [s for s in signals if s.probability]
        fig, axes = _figure(max(len(drawn), 1))
        for label, run in zip(labels, runs):
            for signal in signals:
                values, correct = _signal_values(run.tasks.get(task, ()), signal)
                if not values:
                    continue
                row = {
                    "task": task,
                    "run": label,
                    "signal": signal.name,
                    "responses": len(values),
                    "accuracy": _clean(sum(correct) / len(correct)),
                    "auroc": _clean(auroc(values, correct)),
                    "ece": None,
                    "bins": None,
                }
                if signal.probability:
                    probs = [signal.probability(v) for v in values]
                    row["ece"] = _clean(expected_calibration_error(probs, correct, bins))
                    table = reliability(probs, correct, bins)
                    row["bins"] = [
                        {
                            "lo": b.lo,
                            "hi": b.hi,
                            "count": b.count,
                            "confidence": _clean(b.confidence),
                            "accuracy": _clean(b.accuracy),
                        }
                        for b in table
                    ]
                    ax = axes[drawn.index(signal)]
                    filled = [b for b in table if b.count]
                    ax.plot([b.confidence for b in filled], [b.accuracy for b in filled], marker="o", label=label)
                rows.append(row)
        for ax, signal in zip(axes, drawn):
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
            ax.set(
                xlim=(0, 1),
                ylim=(0, 1),
                xlabel=f"predicted ({signal.name})",
                ylabel="accuracy",
                title=f"{task}: {signal.name}",
            )
            ax.legend(fontsize=7)
        plots[task] = _save(fig, out / "plots" / f"reliability_{slug(task)}.png")
    return {"rows": rows, "plots": plots, **_write(out, "calibration", rows)}


# ---- voting ---------------------------------------------------------------------------------
def _estimate(row: dict[str, Any], name: str, scores: list[float]) -> None:
    est = mean_stderr(scores)
    row[name], row[f"{name}_stderr"] = _clean(est.mean), _clean(est.stderr)


def voting_report(
    runs: Sequence[SampleRun], out: Path, signals: Sequence[Signal], shares: Sequence[float] = (0.1, 0.5, 0.9)
) -> dict[str, Any]:
    """Per task, run and signal, over the problems whose every sample has the signal and a token
    count: majority and confidence-weighted vote over all n, and per kept share the filtered vote,
    the tokens it kept and a plain majority at that token budget (means over problems, stderr)."""
    labels = unique_labels(runs)
    rows: list[dict[str, Any]] = []
    for task in _tasks(runs):
        for label, run in zip(labels, runs):
            for signal in signals:
                usable = []
                for p in run.tasks.get(task, ()):
                    values = [signal.value(p, i) for i in range(p.n)]
                    if p.n > 1 and None not in values and None not in p.tokens:
                        usable.append((p, values))
                if not usable:
                    continue
                row: dict[str, Any] = {"task": task, "run": label, "signal": signal.name, "problems": len(usable)}
                _estimate(row, "majority", [majority_correct(p.clusters, p.correct) for p, _ in usable])
                _estimate(
                    row,
                    "weighted",
                    [weighted_correct(p.clusters, p.correct, [signal.weight(v) for v in vs]) for p, vs in usable],
                )
                for share in shares:
                    filtered, kept_tokens, matched = [], [], []
                    for p, vs in usable:
                        score, kept = filtered_correct(p.clusters, p.correct, vs, [signal.weight(v) for v in vs], share)
                        budget = sum(p.tokens[i] for i in kept)
                        filtered.append(score)
                        kept_tokens.append(budget / max(sum(p.tokens), 1))
                        matched.append(budget_majority(p.clusters, p.correct, p.tokens, budget))
                    key = f"top{round(share * 100)}"
                    _estimate(row, f"{key}_filtered", filtered)
                    _estimate(row, f"{key}_budget_majority", matched)
                    row[f"{key}_token_share"] = _clean(sum(kept_tokens) / len(kept_tokens))
                rows.append(row)
    return {"rows": rows, **_write(out, "voting", rows)}


# ---- semantic entropy -----------------------------------------------------------------------
def semantic_entropy_report(runs: Sequence[SampleRun], out: Path) -> dict[str, Any]:
    """Per task and run: mean semantic entropy over problems (stderr), majority accuracy, and the
    AUROC of low semantic entropy for a correct majority; ``semantic_entropy_problems.csv`` has
    every problem's value."""
    labels = unique_labels(runs)
    rows: list[dict[str, Any]] = []
    per_problem: list[dict[str, Any]] = []
    for task in _tasks(runs):
        for label, run in zip(labels, runs):
            problems = run.tasks.get(task, ())
            if not problems:
                continue
            entropies = [semantic_entropy(p.clusters) for p in problems]
            majority = [majority_correct(p.clusters, p.correct) for p in problems]
            row = {"task": task, "run": label, "problems": len(problems)}
            _estimate(row, "semantic_entropy", entropies)
            _estimate(row, "majority", majority)
            row["auroc"] = _clean(auroc([-h for h in entropies], [m >= 0.5 for m in majority]))
            rows.append(row)
            per_problem += [
                {
                    "task": task,
                    "run": label,
                    "doc_id": p.doc_id,
                    "n": p.n,
                    "semantic_entropy": _clean(h),
                    "clusters": len({c for c in p.clusters if c is not None}),
                    "majority_correct": m,
                }
                for p, h, m in zip(problems, entropies, majority)
            ]
    _write(out, "semantic_entropy_problems", per_problem)
    return {"rows": rows, **_write(out, "semantic_entropy", rows)}
