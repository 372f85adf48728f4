"""The em_math tasks: data and answer fields, task configs, prompt layout, scoring, missing/corrupt data,
n = 16 sampling in lm-eval, and the stock ``lm_eval`` CLI end to end on the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from em_eval.data import FILES, DataFileError
from em_eval.records import decode_records, graded_responses, response_records
from em_eval.tasks.math.grade import GRADER_VERSION
from em_eval.tasks.math.task import (
    BENCHMARKS,
    SYSTEM_PROMPT,
    documents,
    grade_responses,
    load_dataset,
    process_results,
    sample_status,
)

MATH_TASKS = ["em_math500", "em_amc", "em_amc23", "em_aime", "em_aime24", "em_aime25", "em_minerva", "em_olympiadbench"]
N16_TASKS = ["em_amc_n16", "em_amc23_n16", "em_aime_n16", "em_aime24_n16", "em_aime25_n16"]
PAPER_FIVE = ["em_math500", "em_amc", "em_aime", "em_minerva", "em_olympiadbench"]


@pytest.fixture(scope="module")
def manager():
    """One lm-eval TaskManager (indexing every task folder takes seconds)."""
    from em_eval import plugin

    plugin.activate()
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(plugin.tasks_dir()))


@pytest.fixture(scope="module")
def task_dict(manager, data_dir: Path) -> dict:
    return manager.load([*MATH_TASKS, *N16_TASKS])


def _tasks(loaded: dict) -> dict:
    return {name: task for name, task in loaded["tasks"].items()}


# ---- data -------------------------------------------------------------------------------------


def test_documents_share_one_schema_and_normalised_answers(data_dir: Path) -> None:
    for name, spec in BENCHMARKS.items():
        docs = documents(name)
        assert len(docs) == spec.size
        assert all(set(d) == {"id", "problem", "answer", "subset"} for d in docs)
        assert all(d["problem"].strip() and d["answer"].strip() for d in docs)
    assert documents("amc")[0]["answer"] == "142"  # 142.0 in the file
    assert documents("amc23")[0]["answer"] == "27"  # 27.0
    aime24 = [d["answer"] for d in documents("aime24")]
    assert "25" in aime24 and "025" not in aime24  # zero-padded "025" in the file
    assert documents("aime")[60]["answer"] == "204" and documents("aime")[0]["subset"] == "2022"
    assert documents("minerva")[0]["answer"] == "1.6"  # last \boxed{} of the solution
    olympiad = [d["answer"] for d in documents("olympiadbench")]
    assert "69,84" in olympiad and not any("$" in a for a in olympiad)  # ['$69$,$84$'] in the file
    assert documents("math500")[0]["answer"] == r"\left( 3, \frac{\pi}{2} \right)"


def test_unknown_benchmark_is_a_clear_error(data_dir: Path) -> None:
    with pytest.raises(KeyError, match="known: math500"):
        documents("math5000")
    with pytest.raises(KeyError, match="known: math500"):
        load_dataset("math5000")


@pytest.mark.parametrize("broken", ["corrupt", "missing"])
def test_bad_mirror_file_fails_the_task_with_one_clear_error(
    manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path, broken: str
) -> None:
    if broken == "corrupt":
        (tmp_path / "math500").mkdir()
        good = (data_dir / "math500" / "test.jsonl").read_bytes()
        (tmp_path / "math500" / "test.jsonl").write_bytes(good[: len(good) // 2])
    monkeypatch.setenv("EM_EVAL_DATA_DIR", str(tmp_path))
    with pytest.raises(DataFileError) as err:
        manager.load(["em_math500"])
    message = str(err.value)
    assert "math500/test.jsonl" in message and FILES["math500/test.jsonl"].sha256 in message
    assert "EM_EVAL_DATA_DIR" in message


# ---- task configs and prompt ---------------------------------------------------------------------


def test_task_configs_follow_the_paper(task_dict: dict) -> None:
    tasks = _tasks(task_dict)
    for name in MATH_TASKS + N16_TASKS:
        config = tasks[name].config
        assert config.description == SYSTEM_PROMPT
        gen = config.generation_kwargs
        assert gen["temperature"] == 0.1 and gen["top_p"] == 1.0 and gen["max_gen_toks"] == 4096 and gen["do_sample"]
        assert config.repeats == (16 if name.endswith("_n16") else 1)
        meta = config.metadata
        bench = config.dataset_kwargs["benchmark"]
        assert meta["grader"] == GRADER_VERSION
        assert BENCHMARKS[bench].file in FILES  # the pin's one home: em_eval.data
        assert not {"data_file", "data_sha256", "data_source"} & set(meta), "no second copy of the pin in the YAML"
        assert len(tasks[name].eval_docs) == BENCHMARKS[bench].size
    assert SYSTEM_PROMPT == "Please reason step by step, and put your final answer within \\boxed{}."
    metrics = {m["metric"] for m in tasks["em_aime_n16"].config.metric_list}
    assert {"pass@1", "pass@16", "maj@16", "exact_match", "math_verify"} <= metrics
    assert not {"n", "grading"} & metrics, "bookkeeping is no metric: the filter's records carry it"
    (ensemble,) = tasks["em_aime_n16"].config.filter_list
    assert ensemble["filter"][-1]["filter_fn"] is grade_responses


def test_group_is_the_papers_five_with_a_macro_average(manager, data_dir: Path) -> None:
    group = manager.load(["em_math"])["groups"]["em_math"]
    assert sorted(group.child_names) == sorted(PAPER_FIVE)
    aggregates = {a.metric: a for a in group.aggregate_metric_list}
    assert set(aggregates) == {"exact_match", "math_verify"}
    assert all(a.weight_by_size is False for a in aggregates.values())


def test_prompt_is_system_turn_then_problem(task_dict: dict) -> None:
    task = _tasks(task_dict)["em_aime24"]
    doc = task.eval_docs[0]
    render = lambda messages, add_generation_prompt=True: json.dumps(messages)  # noqa: E731
    messages = json.loads(task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=render))
    assert messages == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": doc["problem"]}]
    with_instruction = json.loads(
        task.fewshot_context(doc, 0, system_instruction="Be brief.", apply_chat_template=True, chat_template=render)
    )
    assert with_instruction[0] == {"role": "system", "content": "Be brief.\n\n" + SYSTEM_PROMPT}


# ---- scoring ------------------------------------------------------------------------------------


def _graded(doc: dict, responses: list[str]) -> tuple[dict, list[dict]]:
    """process_results' metrics and the records, as lm-eval runs them: the task's filter, then process_results
    on [the filter's output] (one request per problem)."""
    (filtered,) = grade_responses([responses], [doc])
    return process_results(doc, [filtered]), decode_records(filtered)


def test_process_results_single_response() -> None:
    doc = {"id": "1", "problem": "?", "answer": r"\frac{1}{2}", "subset": ""}
    out, (record,) = _graded(doc, [r"Thus $\boxed{0.5}$."])
    assert out["exact_match"] == 1.0 and out["math_verify"] == 1.0
    assert out["no_answer"] == 0.0 and out["unfinished"] == 0.0 and out["graders_disagree"] == 0.0
    assert not any(k.startswith(("pass@", "maj@")) for k in out)
    assert set(out) == {"exact_match", "math_verify", "no_answer", "unfinished", "graders_disagree"}
    assert record["answer"] == "0.5" and record["exact_match"] and record["cluster"] == 0
    missing, (missing_record,) = _graded(doc, ["I could not solve it"])
    assert missing["exact_match"] == 0.0 and missing["no_answer"] == 1.0
    assert missing_record["cluster"] is None
    with pytest.raises(ValueError, match="filter_list must end with its grading filter"):
        process_results(doc, [[r"Thus $\boxed{0.5}$."]])  # a filter_list without the grading filter


def test_process_results_many_responses_gives_sampling_metrics() -> None:
    doc = {"id": "2", "problem": "?", "answer": "12", "subset": ""}
    responses = [
        r"\boxed{12}",
        r"\boxed{13}",
        r"\boxed{13}",
        r"\boxed{12.0}",
        "no idea",
        r"<think>\boxed{1",
        r"\boxed{13}",
        r"\boxed{13}",
    ]
    out, records = _graded(doc, responses)
    assert len(records) == 8 and all(isinstance(v, float) for v in out.values())
    assert out["exact_match"] == pytest.approx(2 / 8)
    assert out["no_answer"] == pytest.approx(2 / 8) and out["unfinished"] == pytest.approx(1 / 8)
    assert out["pass@1"] == pytest.approx(2 / 8)
    assert out["pass@8"] == 1.0
    assert out["pass@2"] == pytest.approx(1 - (6 * 5) / (8 * 7))
    assert out["maj@8"] == 0.0  # 13 has four votes, 12 has two
    assert out["maj@2"] == pytest.approx((0.5 + 0.5 + 0 + 0) / 4)  # (12,13) and (13,12.0) are ties
    assert [r["cluster"] for r in records] == [0, 1, 1, 0, None, None, 1, 1]
    assert [r["exact_match"] for r in records] == [True, False, False, True, False, False, False, False]


def test_sample_status_adds_hit_token_limit_from_telemetry() -> None:
    grading = [{"answer": "1", "exact_match": True}, {"answer": None, "exact_match": False}]
    telemetry = [{"gen_tokens": 12}, {"gen_tokens": 64}]
    filtered = [graded_responses(grading)]  # the row's filtered_resps: one request, one record per response
    on_disk = {
        "filtered_resps": filtered,
        "arguments": {"gen_args_0": {"arg_0": "ctx", "arg_1": {"max_gen_toks": 64, "em_telemetry": telemetry}}},
    }
    in_memory = {"filtered_resps": filtered, "arguments": [("ctx", {"max_gen_toks": 64, "em_telemetry": telemetry})]}
    older = {**on_disk, "filtered_resps": [["r1", "r2"]], "grading": grading}  # before issue 25: top-level grading
    for row in (on_disk, in_memory, older):
        status = sample_status(row)
        assert [r["hit_token_limit"] for r in status] == [False, True]
        assert [r["answer"] for r in status] == ["1", None]
    assert [r["hit_token_limit"] for r in sample_status({"filtered_resps": filtered})] == [None, None]


# ---- lm-eval runs ---------------------------------------------------------------------------------


def test_n16_variant_and_group_in_lm_eval(tiny_llama_dir: Path, data_dir: Path) -> None:
    from em_eval import plugin

    plugin.activate(task_path=True)  # simple_evaluate(tasks=...) without a task_manager
    import lm_eval

    out = lm_eval.simple_evaluate(
        model="em_inf",
        model_args=f"pretrained={tiny_llama_dir},em_mode=off,dtype=float32",
        tasks=["em_aime24_n16", "em_math"],
        limit=1,
        gen_kwargs="max_gen_toks=4",
        apply_chat_template=True,
        log_samples=True,
        batch_size=16,
        device="cpu",
    )
    res = out["results"]["em_aime24_n16"]
    assert not {k for k in res if k.partition(",")[0].removesuffix("_stderr") in ("n", "grading")}, res
    assert all(isinstance(v, float) or v == "N/A" for k, v in res.items() if "," in k), res
    assert out["configs"]["em_aime24_n16"]["repeats"] == 16
    for k in (1, 2, 4, 8, 16):
        assert 0.0 <= res[f"pass@{k},none"] <= 1.0 and 0.0 <= res[f"maj@{k},none"] <= 1.0
        assert f"pass@{k}_stderr,none" in res
    assert res["pass@1,none"] == pytest.approx(res["exact_match,none"])
    (sample,) = out["samples"]["em_aime24_n16"]
    assert len(sample["resps"][0]) == 16 and len(response_records(sample)) == 16
    assert not {"n", "grading"} & set(sample) and set(sample["metrics"]) >= {"exact_match", "pass@16"}
    assert [bool(r["exact_match"]) for r in response_records(sample)].count(True) / 16 == sample["exact_match"]
    group = out["groups"]["em_math"]
    members = [out["results"][t]["exact_match,none"] for t in PAPER_FIVE]
    assert group["exact_match,none"] == pytest.approx(sum(members) / 5)  # macro average
    assert "math_verify,none" in group
