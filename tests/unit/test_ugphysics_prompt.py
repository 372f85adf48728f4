"""UGPhysics' prompt is the paper's, character for character, for all 372 items: checked against the prompts EM_PT's
own ``make_prompt`` (cafe72e) gave, recorded in ``tests/data/ugphysics_prompt_oracle.json`` with the command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from em_eval.data import FILES, DataFileError
from em_eval.tasks.ugphysics.prompt import SYSTEM_PROMPT, answer_types, make_prompt, type_sentence, user_turn
from em_eval.tasks.ugphysics.task import documents
from protocol_cards import TASKS, load_task_config, task_yamls

ORACLE = json.loads((Path(__file__).parents[1] / "data" / "ugphysics_prompt_oracle.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def docs(data_dir) -> dict[str, dict]:
    return {f"{d['language']}/{d['index']}": d for d in documents("all")}


def test_every_user_turn_is_the_papers(docs) -> None:
    assert list(docs) == [item["id"] for item in ORACLE["items"]]  # the same 372 items, in the paper's order
    items, instructions = ORACLE["items"], ORACLE["instructions"]
    wrong_instruction = [i["id"] for i in items if make_prompt(docs[i["id"]]) != instructions[i["instruction"]]]
    wrong_turn = [
        i["id"]
        for i in items
        if hashlib.sha256(user_turn(docs[i["id"]]).encode("utf-8")).hexdigest() != i["user_sha256"]
    ]
    assert (len(docs), wrong_instruction, wrong_turn) == (372, [], [])
    assert all(user_turn(docs[key]) == text for key, text in ORACLE["examples"].items())


def test_system_turn_and_data_are_the_papers() -> None:
    assert SYSTEM_PROMPT == ORACLE["system"] == "You are a helpful assistant."
    configs = [load_task_config(path) for path in task_yamls(TASKS / "ugphysics").values()]
    assert len(configs) == 3 and {c["description"] for c in configs} == {ORACLE["system"]}
    assert {path: FILES[path].sha256 for path in ORACLE["source"]["data_sha256"]} == ORACLE["source"]["data_sha256"]
    assert not any("data_sha256" in c["metadata"] for c in configs), "the pin's one home is em_eval.data"


def test_answer_type_words_follow_the_papers_lookup() -> None:
    mc = "The answer of The problem should be one option of a multiple choice question. "
    assert type_sentence("\\\nMC", False, "en") == mc
    assert type_sentence("EQ", True, "zh") == "，题目有多个答案，答案类型均为方程"  # several answers, one type given
    assert type_sentence("TUP", False, "en").endswith("multiple numbers, seperated by comma, such as (x, y, z). ")
    with pytest.raises(DataFileError, match="names none of IN, TF, EX, EQ, MC, NV, TUP"):
        type_sentence("NV, XY", True, "en")
    assert answer_types("\\\nMC") == ["MC"] and answer_types("EQ, NV, NV") == ["EQ", "NV", "NV"]
