"""The demo's lab views, their pure parts: em_smoke graded per response, the task variant, the training run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from em_eval.demo_lab import (
    FIRST_TRAINING_PROBLEM,
    TRAIN,
    smoke_variant,
    train_command,
    training_prompts,
    training_settings,
)
from em_eval.records import decode_records
from em_eval.tasks.smoke.task import grade_responses, problems, process_results
from em_eval.training.setup.config import load_recipe, parse_overrides


def _graded(doc: dict, responses: list[str]) -> tuple[dict, list[dict]]:
    """em_smoke's metrics and records as lm-eval runs them: the task's filter, then process_results."""
    filtered = grade_responses([responses], [doc])
    return process_results(doc, filtered), decode_records(filtered)


def test_em_smoke_grades_every_response_and_keeps_one_response_as_before() -> None:
    doc = {"answer": 12}
    many, records = _graded(doc, ["It is 12.", "13", "no idea", "12, surely"])
    assert many == {"exact_match": pytest.approx(0.5)}, "only the metric: the records are the filtered responses"
    assert [g["answer"] for g in records] == ["12", "13", None, "12"]
    assert [g["exact_match"] for g in records] == [True, False, False, True]
    one, records = _graded(doc, ["The answer is 12"])
    assert one == {"exact_match": 1} and records == [{"answer": "12", "exact_match": True}]
    assert _graded(doc, ["7"])[0]["exact_match"] == 0


def test_smoke_variant_includes_em_smoke_with_repeats_and_keeps_all_responses(tmp_path: Path) -> None:
    name = smoke_variant(tmp_path, 4)
    text = (tmp_path / f"{name}.yaml").read_text()
    assert name == "em_smoke_n4" and f"task: {name}\n" in text and "repeats: 4\n" in text
    include = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("include: "))
    assert Path(include).name == "em_smoke.yaml" and Path(include).is_file()
    assert "filter_list" not in text, "em_smoke's own filter grades every response"
    assert "filter_fn: !function em_eval.tasks.smoke.task.grade_responses" in Path(include).read_text()


def test_training_uses_unswept_em_smoke_questions_without_answers(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in training_prompts(tmp_path / "p.jsonl").open()]
    assert rows == [{"prompt": p["question"]} for p in problems()[FIRST_TRAINING_PROBLEM:]]


def test_the_printed_train_command_is_the_run(tmp_path: Path) -> None:
    settings = training_settings("smollm2-135m", training_prompts(tmp_path / "p.jsonl"), tmp_path / "run")
    config = load_recipe("em_ft", settings)
    assert (config.finetune, config.max_steps, config.save_every) == ("lora", 2, 1)
    assert config.system_prompt is None and config.user_template.endswith("Answer with a single number.")
    words = shlex.split(train_command(settings))
    assert words[:3] == ["em-eval", "train", "em_ft"]
    assert load_recipe("em_ft", parse_overrides(words[3:])) == config
    assert {k: getattr(config, k) for k in TRAIN} == pytest.approx(TRAIN)
