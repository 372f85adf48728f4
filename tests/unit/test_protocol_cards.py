"""Every benchmark's protocol card (``tasks/<benchmark>/README.md``) agrees with its task YAMLs and with what the
backends sample (``effective_sampling``, the one function both backends resolve a request with), row by row."""

from __future__ import annotations

from pathlib import Path

import pytest

from em_eval.backends.effective_sampling import effective_sampling
from em_eval.em_inf.settings import EmSettings
from em_eval.records import MULTISTEP_KEY
from protocol_cards import (
    COLUMNS,
    TASKS,
    CardError,
    all_cards,
    cell_mismatches,
    coverage_problems,
    effective_cells,
    effective_gen_kwargs,
    load_task_config,
    parse_cell,
    read_card,
    row_mismatches,
    sampler_equivalent,
    split_row,
    task_yamls,
    yaml_cells,
)

BENCHMARKS = ("leetcode", "livecodebench", "math", "scicode", "smoke", "ugphysics")
# A card's system-prompt name -> the text em-eval sends. The paper's file holds "\\boxed{}" (two backslashes);
# em-eval uses one, a departure stated in tasks/math/README.md.
SYSTEM_PROMPTS = {"system_prompt.md": r"Please reason step by step, and put your final answer within \boxed{}."}
MATH_STOPS = ("\n###\nProblem: ", "<|eot_id|>")


def test_every_benchmark_folder_has_a_card() -> None:
    assert [card.parent.name for card in all_cards()] == list(BENCHMARKS)
    assert all(card.is_file() for card in all_cards())


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_card_rows_are_what_the_backends_sample(benchmark: str) -> None:
    """The backends' resolution of each task's gen_kwargs under each em_mode gives the card's row."""
    card = TASKS / benchmark / "README.md"
    tasks = task_yamls(card.parent)
    problems = []
    for row in read_card(card):
        gen_kwargs = dict(load_task_config(tasks[row.key[0]]).get("generation_kwargs") or {})
        gen_kwargs.pop(MULTISTEP_KEY, None)  # the multi-step layer takes its marker out before the backend sees it
        effective = effective_sampling(gen_kwargs, EmSettings(mode=row.key[1]))
        problems += cell_mismatches(row, sampler_equivalent(effective_cells(effective)), "effective_sampling")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_card_rows_match_the_task_yamls(benchmark: str) -> None:
    card = TASKS / benchmark / "README.md"
    rows = read_card(card)
    tasks = task_yamls(card.parent)
    problems = coverage_problems(card, rows, tasks)
    for row in rows:
        if row.key[0] in tasks:
            problems += row_mismatches(row, load_task_config(tasks[row.key[0]]), SYSTEM_PROMPTS)
    assert not problems, "\n".join(problems)


def test_every_single_task_yaml_is_covered() -> None:
    tasks = task_yamls(TASKS / "math")
    assert {"em_math500", "em_minerva", "em_aime25_n16"} <= set(tasks) and "em_math" not in tasks  # a group
    assert set(task_yamls(TASKS / "ugphysics")) == {"em_ugphysics", "em_ugphysics_en", "em_ugphysics_zh"}


def test_include_chains_and_by_em_mode_resolve_as_the_paper_ran() -> None:
    n16 = load_task_config(TASKS / "math" / "em_aime_n16.yaml")  # em_aime_n16 -> n16 template -> math template
    assert n16["repeats"] == 16 and n16["task"] == "em_aime_n16"
    assert n16["custom_dataset"] == "em_eval.tasks.math.task.load_dataset"  # !function kept as its name
    assert yaml_cells(n16, "off")["until"] == MATH_STOPS
    assert yaml_cells(n16, "em_inf")["until"] is None  # the paper's EM-INF loop has no stop strings
    minerva = load_task_config(TASKS / "math" / "em_minerva.yaml")
    assert yaml_cells(minerva, "em_inf")["until"] == ("</s>", "<|im_end|>", "<|endoftext|>")
    ugphysics = load_task_config(TASKS / "ugphysics" / "em_ugphysics_zh.yaml")
    assert yaml_cells(ugphysics, "off")["max_context"] == 4096
    assert yaml_cells(ugphysics, "em_inf")["max_context"] is None and yaml_cells(ugphysics, "em_inf")["until"] is None
    gen = effective_gen_kwargs(ugphysics["generation_kwargs"], "adaptive_temp")
    assert gen["temperature"] == 1.0 and "by_em_mode" not in gen and gen["max_context"] == 4096


def _card(tmp_path: Path, rows: list[str], header: str = "| " + " | ".join(COLUMNS) + " |") -> Path:
    card = tmp_path / "README.md"
    table = [header, "|---" * len(COLUMNS) + "|", *rows]
    card.write_text("# card\n\n## Sampling settings\n\n" + "\n".join(table) + "\n")
    return card


GOOD = (
    '| `em_math500` | off | 0.1 | 1.0 | – | 4096 | – | `"\\n###\\nProblem: "`, `"<\\|eot_id\\|>"` | yes '
    "| `system_prompt.md` | `eval/Math/math/evaluate_math.py:54` |"
)


def test_a_good_row_parses_to_typed_cells(tmp_path: Path) -> None:
    (row,) = read_card(_card(tmp_path, [GOOD]))
    assert row.key == ("em_math500", "off") and row.line == 7
    assert row.cells["until"] == MATH_STOPS and row.cells["top_k"] is None and row.cells["max_gen_toks"] == 4096
    assert row.cells["chat template"] is True and row.cells["paper code"] == ("eval/Math/math/evaluate_math.py:54",)
    config = load_task_config(TASKS / "math" / "em_math500.yaml")
    assert row_mismatches(row, config, SYSTEM_PROMPTS) == []


@pytest.mark.parametrize(
    "old, new, column",
    [
        ("| 0.1 |", "| 0.7 |", "temperature"),
        ("| 4096 | – |", "| 4096 | 4096 |", "max_context"),
        (', `"<\\|eot_id\\|>"`', "", "until"),
        ("`system_prompt.md`", "–", "system prompt"),
    ],
)
def test_a_drifted_row_names_card_row_and_column(tmp_path: Path, old: str, new: str, column: str) -> None:
    card = _card(tmp_path, [GOOD.replace(old, new, 1)])
    (row,) = read_card(card)
    (problem,) = row_mismatches(row, load_task_config(TASKS / "math" / "em_math500.yaml"), SYSTEM_PROMPTS)
    assert str(card) in problem and "row em_math500/off (line 7)" in problem and f"column {column!r}" in problem


@pytest.mark.parametrize(
    "old, new, column",
    [
        ("| off |", "| normal |", "em_mode"),
        ("| 0.1 |", "| 0,1 |", "temperature"),
        ('`"\\n###\\nProblem: "`', "`\\n###`", "until"),
        ("| yes |", "| true |", "chat template"),
        ("`eval/Math/math/evaluate_math.py:54`", "evaluate_math.py", "paper code"),
    ],
)
def test_a_malformed_cell_is_one_error_naming_card_row_and_column(
    tmp_path: Path, old: str, new: str, column: str
) -> None:
    card = _card(tmp_path, [GOOD.replace(old, new, 1)])
    with pytest.raises(CardError) as err:
        read_card(card)
    assert str(card) in str(err.value) and "(line 7)" in str(err.value) and f"column {column!r}" in str(err.value)


def test_missing_duplicate_and_unknown_rows_are_reported(tmp_path: Path) -> None:
    card = _card(tmp_path, [GOOD, GOOD, GOOD.replace("em_math500", "em_math501")])
    rows = read_card(card)
    problems = coverage_problems(card, rows, {"em_math500": TASKS / "math" / "em_math500.yaml"})
    assert any("duplicates line 7" in p for p in problems)
    assert any("em_math501" in p and "defines" in p for p in problems)
    assert {p for p in problems if "no row" in p} == {
        f"{card}: no row for task 'em_math500' under em_mode 'em_inf'",
        f"{card}: no row for task 'em_math500' under em_mode 'adaptive_temp'",
    }


def test_the_table_must_have_the_spec_columns(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="columns must be exactly task | em_mode"):
        read_card(_card(tmp_path, [GOOD], header="| task | em_mode |"))
    (tmp_path / "other.md").write_text("# no table\n")
    with pytest.raises(CardError, match="no '## Sampling settings' heading"):
        read_card(tmp_path / "other.md")


def test_cells_split_on_unescaped_pipes_only() -> None:
    assert split_row(r'| a | `"<\|x\|>"` | b |') == ["a", '`"<|x|>"`', "b"]
    assert parse_cell("until", r'`"a\u007cb"`, `"c"`') == ("a|b", "c")
    assert parse_cell("temperature", "adaptive") == "adaptive" and parse_cell("max_context", "–") is None
