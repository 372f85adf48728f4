"""The code benchmarks' protocol cards (``tasks/<benchmark>/README.md``) agree with their task YAMLs.

Pure file reading: each card's ``## Sampling settings`` table must hold one row per (task, em_mode)
for every ``task:`` in the folder, and each row's sampling cells must be what the YAML (``include:``
chain resolved, ``by_em_mode`` applied for that em_mode) sets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = ("leetcode", "livecodebench", "scicode")
EM_MODES = ("off", "em_inf", "adaptive_temp")
COLUMNS = ("task", "em_mode", "temperature", "top_p", "top_k", "max_gen_toks", "max_context", "until",
           "chat template", "system prompt", "paper code")
UNSET = "–"
HEADING = "## Sampling settings"


def sampling_table(card: str) -> list[dict[str, str]]:
    """Rows (column -> cell text) of the table right under the card's ``## Sampling settings`` heading.

    Cells are split on unescaped pipes; ``\\|`` (GitHub's escape inside a table) is read as ``|``.
    """
    lines = card.split("\n")
    if HEADING not in lines:
        raise ValueError(f"no '{HEADING}' heading")
    table = []
    for line in lines[lines.index(HEADING) + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table or line.startswith("#"):
            break
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row.strip()[1:-1])] for row in table]
    if not cells or tuple(cells[0]) != COLUMNS:
        raise ValueError(f"table header must be {' | '.join(COLUMNS)}, got {cells[0] if cells else 'no table'}")
    return [dict(zip(COLUMNS, row, strict=True)) for row in cells[2:]]


class _Loader(yaml.SafeLoader):
    """YAML loader that keeps lm-eval's ``!function`` tags as plain strings."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def task_config(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include:`` chain merged (the including file wins, key by key at the top)."""
    config = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    parent = config.pop("include", None)
    return {**task_config(path.parent / parent), **config} if parent else config


def effective_gen_kwargs(gen: dict[str, Any], em_mode: str) -> dict[str, Any]:
    """``generation_kwargs`` as a request under ``em_mode`` sees them (spec A: ``null`` removes a key)."""
    out = {k: v for k, v in gen.items() if k != "by_em_mode"}
    for key, value in ((gen.get("by_em_mode") or {}).get(em_mode) or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _number(cell: str) -> float | None:
    return None if cell == UNSET else float(cell)


def _stops(cell: str) -> list[str]:
    return [] if cell == UNSET else [json.loads(s) for s in re.findall(r"`([^`]*)`", cell)]


def row_problems(row: dict[str, str], config: dict[str, Any]) -> list[str]:
    """Columns of a card row that disagree with the task config, each with both values."""
    gen = effective_gen_kwargs(config["generation_kwargs"], row["em_mode"])
    adaptive = row["em_mode"] == "adaptive_temp"
    expected: dict[str, Any] = {
        "temperature": "adaptive" if adaptive else gen.get("temperature"),
        "top_p": gen.get("top_p"), "top_k": gen.get("top_k"),
        "max_gen_toks": gen.get("max_gen_toks"), "max_context": gen.get("max_context"),
        "until": list(gen.get("until") or []),
        "chat template": "yes" if (config.get("metadata") or {}).get("chat_template") else "no",
        "system prompt": bool(config.get("description")),
    }
    found: dict[str, Any] = {
        "temperature": row["temperature"] if adaptive else _number(row["temperature"]),
        **{k: _number(row[k]) for k in ("top_p", "top_k", "max_gen_toks", "max_context")},
        "until": _stops(row["until"]), "chat template": row["chat template"],
        "system prompt": row["system prompt"] != UNSET,
    }
    bad = [f"{col}: card {row[col]!r}, YAML {expected[col]!r}" for col in expected if found[col] != expected[col]]
    if not re.search(r"`[^`]+:\d+`", row["paper code"]):
        bad.append(f"paper code: {row['paper code']!r} names no `path:line`")
    return bad


def folder_tasks(folder: Path) -> dict[str, dict[str, Any]]:
    """Every task defined by a ``task:`` key in the folder's YAML files."""
    configs = (task_config(f) for f in sorted(folder.glob("*.yaml")))
    return {c["task"]: c for c in configs if "task" in c}


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_card_sampling_table_matches_every_task_yaml(benchmark: str) -> None:
    folder = REPO / "tasks" / benchmark
    card = (folder / "README.md").relative_to(REPO)
    rows = sampling_table((REPO / card).read_text(encoding="utf-8"))
    tasks = folder_tasks(folder)
    keys = [(r["task"].strip("`"), r["em_mode"]) for r in rows]
    wanted = {(t, m) for t in tasks for m in EM_MODES}
    assert len(keys) == len(set(keys)), f"{card}: duplicate rows {sorted(k for k in keys if keys.count(k) > 1)}"
    assert not wanted - set(keys), f"{card}: no row for {sorted(wanted - set(keys))}"
    assert not set(keys) - wanted, f"{card}: rows for no task YAML / em_mode {sorted(set(keys) - wanted)}"
    problems = [f"{card}, row ({task}, {mode}): {p}" for row, (task, mode) in zip(rows, keys)
                for p in row_problems(row, tasks[task])]
    assert not problems, "\n".join(problems)


def test_a_drifted_cell_is_reported_with_card_row_and_column() -> None:
    config = {"task": "t", "description": "sys", "metadata": {"chat_template": True},
              "generation_kwargs": {"temperature": 0.1, "top_p": 1.0, "max_gen_toks": 4096, "max_context": 4096,
                                    "until": ["<|eot_id|>"],
                                    "by_em_mode": {"em_inf": {"max_gen_toks": 8192, "max_context": None, "until": []}}}}
    row = dict(zip(COLUMNS, ["t", "em_inf", "0.1", "1.0", UNSET, "8192", UNSET, UNSET, "yes", "`s.md`", "`a.py:1`"]))
    assert row_problems(row, config) == []
    assert row_problems({**row, "max_gen_toks": "4096"}, config) == ["max_gen_toks: card '4096', YAML 8192"]
    assert row_problems({**row, "em_mode": "off"}, config) == [
        "max_gen_toks: card '8192', YAML 4096", "max_context: card '–', YAML 4096",
        "until: card '–', YAML ['<|eot_id|>']"]
    assert row_problems({**row, "em_mode": "adaptive_temp"}, config)[0] == "temperature: card '0.1', YAML 'adaptive'"
