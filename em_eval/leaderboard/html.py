"""One self-contained static HTML page: sortable table, per-task charts (inlined PNGs), per-sample
drill-down with the "no answer extracted" / "hit the token limit" / "graders disagree" flags (a task's
primary metric and its second verdict differ) and the second verdict's score."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import jinja2

import em_eval
from em_eval.leaderboard import paper
from em_eval.leaderboard.table import Row, num, pct
from em_eval.results import FLAG_LABELS, FLAG_SHORT, FLAGS, Problem, Run

TEMPLATE = "page.html.j2"


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def decode_note(decode: dict[str, Any] | None) -> str:
    """A one-line summary of a self-consistency / refinement record."""
    if not decode:
        return ""
    method = decode.get("decode_method")
    if method == "self_consistency":
        return (
            f"self-consistency: answers {decode.get('answers')}, votes {decode.get('votes')}, "
            f"returned sample {decode.get('chosen')}"
        )
    if method == "refinement":
        return f"iterative refinement: {len(decode.get('rounds') or [])} rounds, the last one returned"
    return str(method)


def _trim(problem: Problem, max_chars: int) -> Problem:
    text = problem.response
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n… [{len(problem.response) - max_chars} more characters]"
    return replace(problem, response=text, decode=decode_note(problem.decode) or None)


def _count(flags: Iterable[bool | None]) -> int | None:
    """How many flags are set (None where the task logs none)."""
    logged = [f for f in flags if f is not None]
    return sum(logged) if logged else None


def shade(nats: float, full: float) -> float:
    """Background opacity for a token's entropy (or entropy removed), in nats: 0 at 0, 0.85 from
    ``full`` nats up."""
    return round(0.85 * min(max(nats, 0.0) / full, 1.0), 3)


def render(
    rows: Sequence[Row],
    runs: Sequence[Run],
    plots: dict[str, Path],
    title: str,
    max_chars: int = 3000,
    story: Any = None,
) -> str:
    """The page as one HTML string (no external resources); ``story``: the demo's
    :class:`em_eval.leaderboard.story.Story` (its EM-INF section), if any."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True, undefined=jinja2.StrictUndefined
    )
    tasks = list(dict.fromkeys(r.task for r in rows))
    reported = paper.for_tasks(tasks)
    columns = list(dict.fromkeys(r.column for r in reported))
    grid: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in reported:
        grid.setdefault((r.table, r.model, r.label), {})[r.column] = r.value
    images = {
        "accuracy_vs_tokens": data_uri(plots["accuracy_vs_tokens"]) if "accuracy_vs_tokens" in plots else None,
        "tasks": [(t, data_uri(plots[f"task:{t}"])) for t in tasks if f"task:{t}" in plots],
        "views": [
            data_uri(plots[f"view:{i}"]) if f"view:{i}" in plots else None for i in range(1, len(story.views) + 1)
        ]
        if story
        else [],
        "analyses": [(k.removeprefix("analysis:"), data_uri(v)) for k, v in plots.items() if k.startswith("analysis:")],
    }
    drill = [
        {
            "model": run.model,
            "label": run.label,
            "task": name,
            "metric": task.metric,
            "second": task.second,
            "disagree": _count(p.flags["graders_disagree"] for p in task.problems),
            "problems": [_trim(p, max_chars) for p in task.problems],
        }
        for run in runs
        for name, task in run.tasks.items()
    ]
    return env.get_template(TEMPLATE).render(
        title=title,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        version=em_eval.__version__,
        runs=runs,
        rows=rows,
        flags=FLAGS,
        flag_labels=FLAG_LABELS,
        flag_short=FLAG_SHORT,
        images=images,
        paper_tasks={r.task for r in rows if r.paper_value is not None},
        paper_columns=columns,
        second_tasks={r.task for r in rows if r.second_metric is not None},
        effect_rows=[r for r in rows if r.entropy_before is not None and r.entropy_after is not None],
        story=story,
        shade=shade,
        paper_rows=[{"table": k[0], "model": k[1], "label": k[2], "values": v} for k, v in grid.items()],
        paper_source=paper.load_reference()["source"],
        drill=drill,
        pct=pct,
        num=num,
    )
