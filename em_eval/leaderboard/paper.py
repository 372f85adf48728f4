"""The paper's reported numbers (``leaderboards/paper_reference.yaml``): lookup and flat rows.

Reported, not reproduced: every value carries that status wherever it is shown.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from em_eval.asset_paths import asset_dir
from em_eval.results import SECOND_VERDICTS

STATUS = "reported-not-reproduced"


@dataclass(frozen=True)
class Reported:
    """One number from the paper, with the settings that produced it."""

    table: str
    model: str
    method: str
    label: str
    benchmark: str
    task: str | None
    metric: str | None
    value: float
    temperature: float | None  # 0 = greedy; None = not compared (adaptive temperature replaces it)
    top_p: float | None
    decode_n: int | None  # self-consistency samples / refinement rounds (em-eval's decode_n)

    @property
    def column(self) -> str:
        """The benchmark as a column heading, naming the run's second verdict it compares with (UGPhysics'
        accuracy_paper), if any."""
        second = self.metric in {v.metric for v in SECOND_VERDICTS}
        return f"{self.benchmark} ({self.metric})" if second else self.benchmark


def reference_file() -> Path:
    return asset_dir("leaderboards") / "paper_reference.yaml"


@lru_cache(maxsize=4)
def load_reference(path: Path | None = None) -> dict[str, Any]:
    """The parsed reference file (checked for its status marker and row shapes)."""
    path = path or reference_file()
    data = yaml.safe_load(Path(path).read_text())
    if data.get("status") != STATUS:
        raise ValueError(f"{path}: status must be {STATUS!r}; these numbers are the paper's, not ours")
    for table in data["tables"]:
        for row in table["rows"]:
            if len(row["values"]) != len(table["columns"]):
                raise ValueError(
                    f"{path}: {table['id']} row {row['label']!r} has {len(row['values'])} values "
                    f"for {len(table['columns'])} columns"
                )
    return data


def reported_values(path: Path | None = None) -> list[Reported]:
    """Every non-empty value of every table, one record each, with its model and settings resolved
    (``model_by_column``; ``sampling`` of the table, then the benchmark, then the row; ``decode_n``)."""
    data = load_reference(path)
    benchmarks = data["benchmarks"]
    out = []
    for table in data["tables"]:
        for row in table["rows"]:
            for column, value in zip(table["columns"], row["values"]):
                if value is None:
                    continue
                bench = benchmarks.get(column) or {}
                sampling = {**table.get("sampling", {}), **bench.get("sampling", {}), **row.get("sampling", {})}
                n = (table.get("decode_n") or {}).get(row["method"])
                out.append(
                    Reported(
                        table["id"],
                        (table.get("model_by_column") or {}).get(column, row["model"]),
                        row["method"],
                        row["label"],
                        column,
                        bench.get("task"),
                        bench.get("metric"),
                        float(value),
                        sampling.get("temperature"),
                        sampling.get("top_p"),
                        n.get(column) if isinstance(n, dict) else n,
                    )
                )
    return out


def model_aliases(path: Path | None = None) -> dict[str, set[str]]:
    """Paper model name -> the lower-case names a run of it may carry (HF id, preset, paper name)."""
    models = load_reference(path)["models"]
    return {name: {name.lower(), *(str(v).lower() for v in spec.values() if v)} for name, spec in models.items()}


def paper_model(names: Iterable[str], path: Path | None = None) -> str | None:
    """The paper model a run used, given its model name / ``pretrained`` / preset strings."""
    wanted = {str(n).lower().rstrip("/") for n in names if n}
    wanted |= {n.rsplit("/", 1)[-1] for n in wanted if "/" in n and not n.startswith("/")}
    for name, aliases in model_aliases(path).items():
        if wanted & aliases:
            return name
    return None


def candidates(
    model: str | None, methods: Iterable[str], task: str, metric: str | None, path: Path | None = None
) -> list[Reported]:
    """The reported numbers for this paper model, any of these method keys and task/metric (None: any
    metric), in table order (Table 3 first), whatever their settings."""
    wanted = set(methods)
    return [
        rec
        for rec in reported_values(path)
        if model is not None
        and rec.model == model
        and rec.method in wanted
        and rec.task == task
        and (metric is None or rec.metric in (None, metric))
    ]


def for_tasks(tasks: Iterable[str], path: Path | None = None) -> list[Reported]:
    """All reported numbers on benchmarks that map to ``tasks``."""
    wanted = set(tasks)
    return [r for r in reported_values(path) if r.task in wanted]


def csv_text(path: Path | None = None) -> str:
    """Every reported value as one CSV row (``leaderboards/paper_reference.csv`` is this output)."""
    buf = io.StringIO()
    fields = ["status", *Reported.__dataclass_fields__]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in reported_values(path):
        writer.writerow({"status": STATUS, **{k: ("" if v is None else v) for k, v in asdict(rec).items()}})
    return buf.getvalue()
