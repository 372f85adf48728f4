"""SciCode prompts: upstream's multi-step construction, pre-written steps, both variants."""

from __future__ import annotations

import json
import os

import pytest

from em_eval.data import DataFileError
from em_eval.tasks.scicode import prompts as sp
from em_eval.tasks.scicode.task import doc_to_text, resolve_h5


def _doc(problem: dict, with_background: bool = True) -> dict:
    return {
        "problem_id": problem["problem_id"],
        "problem_json": json.dumps(problem),
        "with_background": with_background,
    }


def _problem(split: str, pid: str) -> dict:
    return next(p for p in sp.problems(split) if p["problem_id"] == pid)


def test_split_sizes_match_the_paper():
    assert len(sp.problems("dev")) == 15
    assert sum(len(p["sub_steps"]) for p in sp.problems("dev")) == 50
    test = sp.problems("test")
    assert len(test) == 65
    assert sum(sp.is_generated(s) for p in test for s in p["sub_steps"]) == 288


def test_step_prompt_holds_earlier_steps_with_the_models_own_code():
    problem = _problem("dev", "29")
    steps = problem["sub_steps"]
    own_code = ["def normalize(v):\n    return 'MODEL-1'", "def inner_product(u, v):\n    return 'MODEL-2'"]
    prompt = sp.step_prompt(problem, 2, own_code, with_background=True)
    assert prompt.startswith("PROBLEM DESCRIPTION:\nYou will be provided with problem steps along with background")
    for step in steps[:2]:
        assert step["step_description_prompt"] + "\n" + step["step_background"] in prompt
    assert "return 'MODEL-1'\n\n------\n\n" in prompt and "return 'MODEL-2'" in prompt
    assert steps[2]["function_header"] + "\n\n" + steps[2]["return_line"] in prompt
    assert problem["required_dependencies"] in prompt
    assert steps[2]["ground_truth_code"] not in prompt


def test_without_background_uses_the_comment_template_and_no_backgrounds():
    problem = _problem("dev", "29")
    prompt = sp.step_prompt(problem, 1, ["def normalize(v): pass"], with_background=False)
    assert prompt.startswith("PROBLEM DESCRIPTION:\nYou will be provided with the main description of the problem")
    assert "Start with the scientific background required for the next step" in prompt
    backgrounds = [s["step_background"] for s in problem["sub_steps"][:2] if s["step_background"].strip()]
    assert backgrounds and not any(b in prompt for b in backgrounds)


def test_prewritten_steps_are_used_whole_and_never_generated():
    problem = _problem("test", "13")
    session = sp.ScicodeSession(_doc(problem))
    for _ in range(5):
        assert session.next_prompt() is not None
        session.record("```python\ndef step():\n    return 1\n```")
    prompt = session.next_prompt()  # step 13.7: 13.6 came from the pre-written file
    assert [s["source"] for s in session.steps] == ["model"] * 5 + ["prewritten"]
    assert session.steps[5]["step"] == "13.6"
    assert "class Maxwell:" in prompt and "def __init__(self, n_grid, x_out):" in prompt
    assert "class Maxwell:" in session.codes[5] and "import" not in session.codes[5].split("\n")[0]


def test_first_generated_step_of_62_follows_its_prewritten_first_step():
    problem = _problem("test", "62")
    prompt = doc_to_text(_doc(problem))
    assert "class Block:" in prompt and "class EnlargedBlock:" in prompt  # 62.1 whole, classes kept
    assert problem["sub_steps"][1]["function_header"] in prompt


def test_session_runs_every_generated_step_then_stops():
    problem = _problem("dev", "19")
    session = sp.ScicodeSession(_doc(problem))
    prompts = []
    while (prompt := session.next_prompt()) is not None:
        prompts.append(prompt)
        session.record(f"```python\nimport numpy as np\ndef f{len(prompts)}(): pass\n```")
    assert len(prompts) == len(problem["sub_steps"]) == 2
    assert prompts[0] == doc_to_text(_doc(problem)) == prompts[0].strip()
    assert "def f1(): pass" in prompts[1] and "import numpy" not in prompts[1].split("DEPENDENCIES")[0]
    record = session.result()
    assert record["protocol"] == sp.PROTOCOL and [s["step"] for s in record["steps"]] == ["19.1", "19.2"]


def test_h5_unreadable_by_the_sandbox_uid_is_refused_when_root(tmp_path):
    private = tmp_path / "private.h5"
    private.write_bytes(b"not hdf5")
    private.chmod(0o600)
    expected = "not world-readable" if os.geteuid() == 0 else "not a readable HDF5 file"
    with pytest.raises(DataFileError, match=expected):
        resolve_h5(str(private))


def test_an_unfenced_answer_is_cut_to_its_first_function_as_the_paper_does():
    from em_eval.tasks.scicode.extract import extract_scicode_code

    text = "  Here is the step.\nimport numpy as np\ndef f(x):\n    return np.sin(x)\n\nDone.\n"
    assert extract_scicode_code(text) == "def f(x):\n    return np.sin(x)\n\nDone."
    assert extract_scicode_code("x = 1\nprint(x)") == "x = 1\nprint(x)"  # no function: the whole answer
    assert extract_scicode_code("def g(): return 1") == "def g(): return 1"  # one-line def: no indented body
    assert extract_scicode_code("Text\n```\ndef h():\n    pass\n```") == "\ndef h():\n    pass\n"
