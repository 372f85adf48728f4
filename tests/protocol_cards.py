"""Protocol cards (``tasks/<benchmark>/README.md``, issue 22 spec C): read a card's ``## Sampling settings``
table into typed rows, and compute the same cells from a task YAML (``include:`` chains resolved, ``by_em_mode``
applied), so a test can hold card and YAML together. Pure file reading: no lm-eval task is built.

Cell values after parsing: numbers are ``int``/``float``; ``–`` is ``None``; ``temperature`` may be ``"adaptive"``;
``until`` a tuple of stop strings (``None`` for none); ``chat template`` a bool; ``system prompt`` the name in
backticks; ``paper code`` a tuple of ``path:line`` references.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TASKS = Path(__file__).resolve().parents[1] / "tasks"
HEADING = "## Sampling settings"
COLUMNS = (
    "task",
    "em_mode",
    "temperature",
    "top_p",
    "top_k",
    "max_gen_toks",
    "max_context",
    "until",
    "chat template",
    "system prompt",
    "paper code",
)
EM_MODES = ("off", "em_inf", "adaptive_temp")
UNSET = "–"  # en dash: unset / not applied
ADAPTIVE = "adaptive"
NUMERIC = ("top_p", "top_k", "max_gen_toks", "max_context")
COMPARED = ("temperature", "top_p", "top_k", "max_gen_toks", "max_context", "until")

_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_TICKED = re.compile(r"`([^`]*)`")
_CODE_REF = re.compile(r"^(?:[\w.-]+/[\w.-]+:)?[\w./-]+\.\w+:\d+$")  # path:line, or owner/repo:path:line
_FILE_REF = re.compile(r"^[\w./-]+\.\w+(?::\d+)?$")  # a system prompt named by its file (or file:line)


class CardError(ValueError):
    """A card that cannot be read, or that disagrees with its task YAML; the message names card, row and column."""


@dataclass(frozen=True)
class CardRow:
    """One parsed row of a card's sampling table; ``line`` is its 1-based line number in the card."""

    card: Path
    line: int
    cells: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.cells["task"], self.cells["em_mode"]

    def where(self, column: str | None = None) -> str:
        row = f"{self.card}, row {self.key[0]}/{self.key[1]} (line {self.line})"
        return f"{row}, column {column!r}" if column else row


def split_row(line: str) -> list[str]:
    """The cells of a Markdown table line; ``\\|`` (GitHub's escape inside a cell) is a literal pipe."""
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")):
        raise ValueError("a table row starts and ends with '|'")
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(text[1:-1])]


def _number(text: str) -> int | float:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(?:[eE]-?\d+)?|-?\d+[eE]-?\d+", text):
        return float(text)
    raise ValueError(f"expected a plain number or {UNSET!r}, got {text!r}")


def _ticked_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in _TICKED.split(text)]
    values, separators = items[1::2], items[0::2]
    if not values or separators[0] or separators[-1] or any(sep != "," for sep in separators[1:-1]):
        raise ValueError(f"expected {what} in backticks, comma-separated, or {UNSET!r}; got {text!r}")
    return values


def parse_cell(column: str, text: str) -> Any:
    """The typed value of one cell (see the module docstring); ``ValueError`` says what is wrong with it."""
    if column == "task":
        name = text.strip("`")
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"expected a task name, got {text!r}")
        return name
    if column == "em_mode":
        if text not in EM_MODES:
            raise ValueError(f"expected one of {', '.join(EM_MODES)}, got {text!r}")
        return text
    if column == "chat template":
        if text not in ("yes", "no"):
            raise ValueError(f"expected yes or no, got {text!r}")
        return text == "yes"
    if text == UNSET and column != "paper code":
        return None
    if column == "temperature":
        return ADAPTIVE if text == ADAPTIVE else _number(text)
    if column in NUMERIC:
        return _number(text)
    if column == "until":
        values = []
        for literal in _ticked_list(text, "JSON string literals"):
            try:
                value = json.loads(literal)
            except json.JSONDecodeError as err:
                raise ValueError(f"{literal!r} is not a JSON string literal ({err.msg})") from None
            if not isinstance(value, str):
                raise ValueError(f"{literal!r} is not a JSON string literal")
            values.append(value)
        return tuple(values)
    if column == "system prompt":
        names = _ticked_list(text, "a name in backticks")
        if len(names) != 1:
            raise ValueError(f"expected one name in backticks or {UNSET!r}, got {text!r}")
        return names[0]
    if column == "paper code":
        refs = _ticked_list(text, "path:line references")
        bad = [ref for ref in refs if not _CODE_REF.match(ref)]
        if bad:
            raise ValueError(f"expected path:line (or owner/repo:path:line), got {', '.join(bad)}")
        return tuple(refs)
    raise ValueError(f"unknown column {column!r}")


def read_card(card: Path) -> list[CardRow]:
    """The rows of ``card``'s table under ``## Sampling settings`` (exactly the spec's columns)."""
    if not Path(card).is_file():
        raise CardError(f"{card}: no protocol card (issue 22 spec C: one README.md per tasks/<benchmark> folder)")
    lines = Path(card).read_text(encoding="utf-8").splitlines()
    if HEADING not in lines:
        raise CardError(f"{card}: no {HEADING!r} heading")
    at = lines.index(HEADING) + 1
    while at < len(lines) and not lines[at].strip():
        at += 1
    table = []
    while at < len(lines) and lines[at].lstrip().startswith("|"):
        table.append((at + 1, lines[at]))
        at += 1
    if len(table) < 3:
        raise CardError(f"{card}: the table under {HEADING!r} needs a header, a separator and at least one row")
    header = split_row(table[0][1])
    if tuple(header) != COLUMNS:
        raise CardError(
            f"{card}, line {table[0][0]}: columns must be exactly {' | '.join(COLUMNS)}; got {' | '.join(header)}"
        )
    rows = []
    for number, line in table[2:]:
        cells = split_row(line)
        if len(cells) != len(COLUMNS):
            raise CardError(f"{card}, line {number}: {len(cells)} cells, expected {len(COLUMNS)}")
        parsed: dict[str, Any] = {}
        for column, text in zip(COLUMNS, cells):
            try:
                parsed[column] = parse_cell(column, text)
            except ValueError as err:
                where = f"{card}, row {cells[0]}/{cells[1]} (line {number}), column {column!r}"
                raise CardError(f"{where}: {err}") from None
        rows.append(CardRow(Path(card), number, parsed))
    return rows


class _TaskLoader(yaml.SafeLoader):
    """YAML loader for task files: ``!function x.y`` stays the string ``x.y`` (nothing is imported)."""


_TaskLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def load_task_config(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include:`` chain (one file or a list) resolved as lm-eval does: later files win, the
    including file last, key by key (shallow)."""
    path = Path(path)
    config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader) or {}
    includes = config.pop("include", None)
    merged: dict[str, Any] = {}
    for include in includes if isinstance(includes, list) else [includes] if includes else []:
        merged.update(load_task_config(path.parent / include))
    return {**merged, **config}


def task_yamls(folder: Path) -> dict[str, Path]:
    """Task name -> file for every ``*.yaml`` in ``folder`` that defines one task (``task:`` is a name, not a group)."""
    found = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        name = load_task_config(path).get("task")
        if isinstance(name, str):
            found[name] = path
    return found


def effective_gen_kwargs(gen_kwargs: dict[str, Any], em_mode: str) -> dict[str, Any]:
    """``gen_kwargs`` with its ``by_em_mode`` entry for ``em_mode`` applied (a ``None`` value removes the key)."""
    effective = dict(gen_kwargs)
    overrides = (effective.pop("by_em_mode", None) or {}).get(em_mode) or {}
    for key, value in overrides.items():
        if value is None:
            effective.pop(key, None)
        else:
            effective[key] = value
    return effective


def yaml_cells(config: dict[str, Any], em_mode: str) -> dict[str, Any]:
    """The compared cells (``COMPARED``) a card row must show for this task config under ``em_mode``."""
    gen = effective_gen_kwargs(config.get("generation_kwargs") or {}, em_mode)
    top_k = gen.get("top_k")
    return {
        "temperature": ADAPTIVE if em_mode == "adaptive_temp" else gen.get("temperature"),
        "top_p": gen.get("top_p"),
        "top_k": None if top_k in (None, 0, -1) else top_k,  # 0 and -1 both mean "no top-k"
        "max_gen_toks": gen.get("max_gen_toks"),
        "max_context": gen.get("max_context"),
        "until": tuple(gen.get("until") or ()) or None,
    }


def cell_mismatches(row: CardRow, cells: dict[str, Any], source: str) -> list[str]:
    """Where ``row`` disagrees with ``cells`` (values as :func:`parse_cell` gives them, e.g. a backend's effective
    sampling for the row's task and em_mode); ``source`` names where ``cells`` come from in the messages."""
    return [
        f"{row.where(column)}: the card says {row.cells[column]!r}, {source} gives {cells[column]!r}"
        for column in cells
        if row.cells[column] != cells[column]
    ]


def effective_cells(effective: dict[str, Any]) -> dict[str, Any]:
    """The compared cells (``COMPARED``) from a backend's effective sampling (``effective_sampling()``): what the
    sampler really applies, so an unset top_p equals 1.0 and an unset top-k equals none."""
    adaptive = effective["em_mode"] == "adaptive_temp"
    if adaptive and effective["temperature"] != 1.0:  # T_adapt replaces the temperature: the sampler runs at 1
        temperature: Any = effective["temperature"]
    else:
        temperature = ADAPTIVE if adaptive else effective["temperature"]
    top_k = effective["top_k"]
    return {
        "temperature": temperature,
        "top_p": effective["top_p"],
        "top_k": None if top_k in (None, 0, -1) else top_k,
        "max_gen_toks": effective["max_gen_toks"],
        "max_context": effective["max_context"],
        "until": tuple(effective["until"]) or None,
    }


def sampler_equivalent(cells: dict[str, Any]) -> dict[str, Any]:
    """Cells with the sampler's equivalences applied (top_p unset = 1.0), to compare a card with a backend."""
    return {**cells, "top_p": 1.0 if cells["top_p"] is None else cells["top_p"]}


def row_mismatches(row: CardRow, config: dict[str, Any], system_prompts: dict[str, str]) -> list[str]:
    """What in ``row`` disagrees with the task ``config``, one message per column naming card, row and column.

    ``system_prompts`` maps a card's system-prompt name to the text em-eval uses for it (the task ``description``);
    a name that is a file (``system_prompt_original.md``, ``models.py:61``) and not in it only says there is one.
    The chat-template column must equal the task's ``metadata.chat_template`` where the task records it.
    """
    problems = cell_mismatches(row, yaml_cells(config, row.cells["em_mode"]), "the task YAML")
    name, description = row.cells["system prompt"], config.get("description") or None
    if name is None or description is None:
        if name != description:
            problems.append(
                f"{row.where('system prompt')}: the card says {name!r}, the task description is {description!r}"
            )
    elif (name in system_prompts or not _FILE_REF.match(name)) and system_prompts.get(name, name) != description:
        problems.append(
            f"{row.where('system prompt')}: {name!r} stands for {system_prompts.get(name, name)!r}, "
            f"the task description is {description!r}"
        )
    recorded = (config.get("metadata") or {}).get("chat_template")
    if recorded is not None and recorded != row.cells["chat template"]:
        problems.append(
            f"{row.where('chat template')}: the card says {row.cells['chat template']!r}, the task's "
            f"metadata.chat_template is {recorded!r}"
        )
    return problems


def all_cards() -> list[Path]:
    """The card of every benchmark folder under ``tasks/``."""
    return [folder / "README.md" for folder in sorted(TASKS.iterdir()) if folder.is_dir()]


def coverage_problems(card: Path, rows: list[CardRow], tasks: dict[str, Path]) -> list[str]:
    """Rows missing (each task needs one per em_mode), duplicated, or naming a task the folder does not define."""
    problems = []
    seen: dict[tuple[str, str], CardRow] = {}
    for row in rows:
        if row.key in seen:
            problems.append(f"{row.where()}: duplicates line {seen[row.key].line}")
        seen[row.key] = row
        if row.key[0] not in tasks:
            problems.append(f"{row.where()}: no task YAML in {Path(card).parent} defines {row.key[0]!r}")
    for task in tasks:
        for mode in EM_MODES:
            if (task, mode) not in seen:
                problems.append(f"{card}: no row for task {task!r} under em_mode {mode!r}")
    return problems
