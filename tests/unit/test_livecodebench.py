"""em_livecodebench's pure parts: safe decoding, the date window, prompt, extraction, LiveCodeBench's
stdout comparison, verdicts and metrics (records written for the tests in the upstream schema)."""

from __future__ import annotations

import base64
import json
import math
import pickle
import zlib
from pathlib import Path

import pytest
import yaml

from em_eval import sandbox
from em_eval.data import DataFileError
from em_eval.tasks.livecodebench import task
from em_eval.tasks.livecodebench.dataset import documents, record_of
from em_eval.tasks.livecodebench.decode import UnsafePickleError, decode_test_cases, encode_test_cases
from em_eval.tasks.livecodebench.harness import as_function, compare_stdout, unwrap_main_guard
from em_eval.tasks.livecodebench.problems import END_DATE, START_DATE, cases_of, in_window
from em_eval.tasks.livecodebench.score import verdict
from em_eval.tasks.livecodebench.source import ENV_VAR, release_files
from em_eval.tasks.livecodebench.task import SYSTEM_PROMPT, doc_to_text, extract_program
from livecodebench_records import IN_WINDOW, RECORDS, STARTER, record, write_jsonl

REPO = Path(__file__).resolve().parents[2]


def _open_marker_pickle(marker: Path) -> str:
    """Upstream's encoding of a pickle that calls ``builtins.open(marker, "w")`` when loaded."""
    payload = b"cbuiltins\nopen\n(" + pickle.dumps(str(marker), protocol=0)[:-1] + b"S'w'\ntR."
    return base64.b64encode(zlib.compress(payload)).decode()


# ---- decoding ----------------------------------------------------------------------------------
def test_private_tests_decode_as_upstream_encodes_them():
    cases = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]
    assert decode_test_cases(encode_test_cases(cases)) == cases
    assert decode_test_cases(json.dumps(cases)) == cases  # some records hold plain JSON


def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    raw = _open_marker_pickle(marker)
    assert pickle.loads(zlib.decompress(base64.b64decode(raw))).close() is None and marker.exists()  # it is live
    marker.unlink()
    with pytest.raises(UnsafePickleError, match=r"asks for builtins\.open.*refused unexecuted"):
        decode_test_cases(raw)
    assert not marker.exists()


def test_a_malicious_record_stops_loading_with_the_file_and_line(tmp_path):
    marker = tmp_path / "pwned"
    bad = {**RECORDS[0], "private_test_cases": _open_marker_pickle(marker)}
    path = write_jsonl(tmp_path / "lcb.jsonl", [RECORDS[1], bad])
    with pytest.raises(DataFileError, match=r"lcb\.jsonl:2: .*builtins\.open.*refused unexecuted"):
        documents([path])
    assert not marker.exists()


@pytest.mark.parametrize("value, kind", [((1, 2), "tuple"), ({1, 2}, "set"), (b"x", "bytes")])
def test_only_plain_data_is_accepted_from_a_pickle(value, kind):
    raw = base64.b64encode(zlib.compress(pickle.dumps([value]))).decode()
    with pytest.raises(UnsafePickleError, match=f"holds a {kind}"):
        decode_test_cases(raw)


def test_garbage_is_refused_with_a_reason():
    with pytest.raises(UnsafePickleError, match="neither JSON nor base64"):
        decode_test_cases("not base64 at all!")


def _packed(value) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(value))).decode()


def _shared_levels(levels: int) -> list:
    node: list = []
    for _ in range(levels):
        node = [node, node]  # pickle memoises it: a few bytes a level, 2**levels paths to walk
    return node


def _self_referencing() -> list:
    loop: list = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize("value", [_self_referencing(), _shared_levels(60)], ids=["self-referencing", "60-shared"])
def test_a_pickle_that_is_not_a_tree_is_refused_at_once(value):
    raw = _packed(value)
    assert len(raw) < 600
    with pytest.raises(UnsafePickleError, match="shared or self-referencing"):
        decode_test_cases(raw)


def test_a_zlib_bomb_is_refused_without_inflating_it():
    raw = _packed("A" * (40 << 20))  # 40 MB of tests in ~60 kB
    assert len(raw) < 100_000
    with pytest.raises(UnsafePickleError, match="inflate past 16777216 bytes.*zlib bomb"):
        decode_test_cases(raw)


def test_deeply_nested_json_is_one_clear_error_naming_file_and_line(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(UnsafePickleError, match="nest too deeply"):
        decode_test_cases(deep)
    with pytest.raises(UnsafePickleError, match="nest too deeply"):
        decode_test_cases(_packed(deep))
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(RECORDS[1]) + "\n" + deep + "\n")
    with pytest.raises(DataFileError, match=r"lcb\.jsonl:2 nests too deeply"):
        documents([path])


# ---- the date window and the documents ------------------------------------------------------------
def test_date_window_is_upstreams_inclusive_filter():
    assert in_window("2023-05-01T00:00:00") and in_window("2024-05-31T00:00:00")
    assert not in_window("2023-04-30T23:59:59") and not in_window("2024-06-01T00:00:00")
    assert not in_window("2024-05-31T12:00:00")  # upstream compares with midnight of the end date
    assert in_window("2024-01-01T00:00:00", "2024-01-01", "2024-01-01")


def test_documents_keep_the_window_sorted_by_id_with_its_size(tmp_path, caplog):
    path = write_jsonl(tmp_path / "lcb.jsonl")
    with caplog.at_level("WARNING"):
        docs = documents([path])
    assert "is not a pinned release_v2 file" in caplog.text and "not comparable with the paper's" in caplog.text
    assert [d["question_id"] for d in docs] == IN_WINDOW
    assert {d["window_size"] for d in docs} == {3} and [d["n_tests"] for d in docs] == [2, 3, 3]
    assert len({d["data_sha256"] for d in docs}) == 1 and len(docs[0]["data_sha256"]) == 64
    assert "private_test_cases" not in docs[0]  # the judge reads the record again
    functional = record_of(docs[1])
    assert functional["question_id"] == "3000"
    assert cases_of(functional) == {
        "inputs": ["[1, 2]\n3", "[]\n1", "[0]\n-1"],
        "outputs": ["[4, 5]", "[]", "[-1]"],
        "fn_name": "addDigits",
    }
    assert [d["question_id"] for d in documents([path], "2023-01-01", "2023-12-31")] == ["abc299_a", "abc300_a"]


def test_a_record_outside_the_schema_is_one_clear_error(tmp_path):
    path = write_jsonl(tmp_path / "lcb.jsonl", [{k: v for k, v in RECORDS[0].items() if k != "metadata"}])
    with pytest.raises(DataFileError, match=r"lcb\.jsonl:1: record abc300_a lacks metadata"):
        documents([path])


def test_data_path_env_variable_and_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    one = write_jsonl(tmp_path / "small.jsonl")
    assert release_files(str(one)) == [one]
    (tmp_path / "test.jsonl").write_text("")
    (tmp_path / "test2.jsonl").write_text("")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert release_files() == [tmp_path / "test.jsonl", tmp_path / "test2.jsonl"]
    with pytest.raises(
        DataFileError,
        match=r"nowhere\.jsonl \(from data_path=.*Download https://huggingface\.co/"
        r"datasets/livecodebench/code_generation_lite/resolve/[0-9a-f]{40}/test\.jsonl",
    ):
        release_files(str(tmp_path / "nowhere.jsonl"))


# ---- prompt and extraction ---------------------------------------------------------------------
def test_prompt_is_the_papers_lcb_fork():
    doc = {"question_content": "Print A+B.", "starter_code": ""}
    assert doc_to_text(doc) == (
        "### Question:\nPrint A+B.\n\n### Format: Read the inputs from stdin solve the problem and write the answer to "
        "stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows.\n"
        "```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n\n\n"
        "Write Python code to solve the problem. Present the code in \n```python\nYour code\n```\nat the end."
    )
    with_starter = doc_to_text({"question_content": "Add.", "starter_code": STARTER})
    assert "### Format: You will use the following starter code" in with_starter
    assert f"```python\n{STARTER}\n```" in with_starter
    assert "\n" not in SYSTEM_PROMPT and SYSTEM_PROMPT.startswith("\\nWhen tackling")
    assert "[ASSESS]\\n\\n[ADVANCE]" in SYSTEM_PROMPT


def test_task_yaml_has_the_papers_generation_settings():
    config = yaml.safe_load((REPO / "tasks/livecodebench/em_livecodebench.yaml").read_text().replace("!function", ""))
    assert config["description"] == SYSTEM_PROMPT
    assert config["generation_kwargs"] == {
        "until": ["###"],
        "do_sample": True,
        "temperature": 0.2,
        "top_p": 0.95,
        "max_gen_toks": 4096,
        "max_context": 4096,
        "by_em_mode": {"adaptive_temp": {"temperature": 1.0}},
    }
    assert config["repeats"] == 1 and config["metadata"]["paper_problems"] == 511
    assert config["metadata"]["window"] == [START_DATE, END_DATE] == ["2023-05-01", "2024-05-31"]


ORACLE = json.loads((REPO / "tests" / "data" / "livecodebench_extraction_oracle.json").read_text())


def test_extraction_keeps_the_program_before_a_sample_output_block():
    text = "Solution:\n```python\ndef main():\n    print(6)\nmain()\n```\nSample output:\n```\n6\n```\n"
    assert "def main():" in extract_program(text) and extract_program(text).strip() != "6"


@pytest.mark.parametrize("case", ORACLE["cases"], ids=[c["name"] for c in ORACLE["cases"]])
def test_extraction_matches_the_papers_fork(case):
    assert extract_program(case["completion"]) == case["fork"]


def test_the_oracle_bank_separates_the_fork_from_upstream():
    assert len(ORACLE["cases"]) >= 20
    assert sum(c["fork"] != c["upstream"] for c in ORACLE["cases"]) >= 10


# ---- the judge's pure rules ------------------------------------------------------------------------
def test_stdout_comparison_strips_lines_and_reads_numbers():
    assert compare_stdout("3  \n4\t\n\n", "3\n4\n") is None  # trailing spaces and blank lines
    assert compare_stdout("0.50 1.000\n", "0.5 1\n") is None  # the same numbers, written differently
    assert compare_stdout("1e2\n", "100\n") is None
    assert compare_stdout("0.3333333\n", "0.333333\n") == "Wrong answer at line 0: 0.3333333 != 0.333333"  # no epsilon
    assert compare_stdout("Yes\n", "YES\n") == "Wrong answer at line 0: Yes != YES"
    assert compare_stdout("1\n2\n", "1\n").startswith("Wrong answer: mismatched output length (2 lines, expected 1)")


def test_stdin_programs_become_one_function_after_the_imports():
    code = unwrap_main_guard("import sys\nx = 1\nif __name__ == '__main__':\n    print(x)\n")
    assert code.endswith("x = 1\nprint(x)")
    wrapped = as_function(code)
    assert "from itertools import *" in wrapped
    assert "\nimport sys\ndef wrapped_function():\n    x = 1\n    print(x)" in wrapped
    assert as_function("def broken(:\n") == "def broken(:\n"  # compiled as is, the syntax error is the verdict


def _result(status="passed", reason="", files=None):
    return sandbox.ProgramResult(status, reason, "", "", 0.5, 0, ("rlimits",), files or {})


def test_verdicts_say_why():
    ok = _result(files={"verdict.json": json.dumps({"results": [True, True], "info": {}}).encode()})
    assert verdict(ok, 2)["status"] == "passed"
    assert verdict(ok, 3)["status"] == "error"  # fewer results than tests is no pass
    wrong = {
        "results": [True, -2],
        "info": {
            "error_code": -2,
            "error_message": "Wrong answer at line 0: 1 != 2",
            "inputs": "5",
            "output": "1",
            "expected": "2",
        },
    }
    got = verdict(_result(files={"verdict.json": json.dumps(wrong).encode()}), 4)
    assert got["status"] == "failed" and got["tests_passed"] == 1
    assert got["reason"] == "test 2 of 4: Wrong answer at line 0: 1 != 2 (inputs 5; output 1; expected 2)"
    assert verdict(_result(), 1)["reason"] == "the program ended the judge before the tests finished (no verdict)"
    assert verdict(_result("timeout", "wall-clock limit of 12 s exceeded"), 1)["status"] == "timeout"
    assert verdict(_result(files={"verdict.json": b"{oops"}), 1)["status"] == "error"


def test_metrics_by_difficulty_and_platform_and_the_window_size():
    doc = {"difficulty": "hard", "platform": "codeforces", "window_size": 511}
    out = task.process_results(doc, [{"status": "passed"}])
    assert out["pass@1"] == 1.0 and out["pass@1_hard"] == (True, 1.0) and out["pass@1_easy"] == (False, 1.0)
    assert out["pass@1_codeforces"] == (True, 1.0) and out["pass@1_leetcode"] == (False, 1.0)
    assert task.mean_of_members([out["pass@1_hard"], (True, 0.0), (False, 1.0)]) == 0.5
    assert math.isnan(task.mean_of_members([out["pass@1_easy"]]))
    assert task.window_size([511, 511]) == 511 and task.count_items([1, 1]) == 2


def test_schema_of_the_test_records_is_upstreams():
    fields = set(record("x", "2024-01-01T00:00:00", "atcoder", "easy", "", [], []))
    assert fields == {
        "question_title",
        "question_content",
        "platform",
        "question_id",
        "contest_id",
        "contest_date",
        "starter_code",
        "difficulty",
        "public_test_cases",
        "private_test_cases",
        "metadata",
    }


def test_release_v2_files_are_pinned_by_sha256():
    from em_eval.tasks.livecodebench import source

    assert set(source.SHA256) == set(source.RELEASE_V2)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in source.SHA256.values())
