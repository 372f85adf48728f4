"""Inference-time baselines: argument parsing, self-consistency voting, iterative refinement, and the
per-task protocol (rounds, feedback, grouping) checked against the paper's own prompt construction."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from em_eval.decoding.methods import (
    DecodeMethod,
    generate_with_method,
    majority_index,
    pop_method_args,
    refinement_prompt,
)
from em_eval.decoding.task_hooks import TaskDecoding, task_decoding
from em_eval.records import DECODE_KEY, TELEMETRY_KEY, Generated, write_samples
from em_eval.tasks.math.consistency import sc_votes as math_votes
from lm_requests import make_requests

ORACLE = json.loads((Path(__file__).parents[1] / "data" / "refinement_oracle.json").read_text())


class ScriptedPlain:
    """A stand-in for backend generation: scripted outputs per prompt, telemetry like the HF backend."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[list[Instance]] = []

    def __call__(self, reqs: list[Instance]) -> list[Generated]:
        self.calls.append(reqs)
        outs = []
        for req in reqs:
            assert TELEMETRY_KEY not in req.args[1] and DECODE_KEY not in req.args[1], "records leaked into generation"
            out = self.script[req.args[0]].pop(0)
            outs.append(Generated(out, ({"gen_tokens": len(out.split())},)))
        return outs


def generate(method: DecodeMethod, reqs: list[Instance], plain, **kwargs) -> list[str]:
    """The decode method's results, written into the requests as the backends write them."""
    return write_samples(reqs, generate_with_method(method, reqs, plain, **kwargs))


def task_requests(task: str, prompts: list[str], docs: list[dict] | None = None) -> list[Instance]:
    gen = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 8}
    return [
        Instance("generate_until", (docs or [{}] * len(prompts))[i], (p, dict(gen)), idx=0, metadata=(task, i, 1))
        for i, p in enumerate(prompts)
    ]


# ---- arguments ---------------------------------------------------------------------------
def test_method_args_are_popped_with_defaults_and_aliases() -> None:
    args = {"pretrained": "x", "decode_method": "self_consistency", "decode_n": "4"}
    assert pop_method_args(args) == DecodeMethod("self_consistency", 4) and args == {"pretrained": "x"}
    assert pop_method_args({}) == DecodeMethod("plain", 1)
    assert pop_method_args({"decode_method": "iterative_refinement"}) == DecodeMethod("refinement", None)
    assert pop_method_args({"decode_method": "refinement", "decode_n": "2"}).n == 2
    assert pop_method_args({"decode_method": "sc"}).n == 4
    assert DecodeMethod("refinement", 2).as_args() == {"decode_method": "refinement", "decode_n": 2, "decode_seed": 42}
    assert DecodeMethod("refinement", None).label == "iterative refinement (N=each task's rounds)"
    assert DecodeMethod("self_consistency", 4).as_args()["sample_seeds"].startswith("independent")


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"decode_method": "beam"}, "decode_method='beam' is not one of"),
        ({"decode_rounds": 3}, "unknown decoding argument"),
        ({"decode_method": "self_consistency", "decode_n": 0}, "decode_n=0 is invalid"),
        ({"decode_n": 2}, "plain: n = 1"),
        ({"decode_method": "sc", "decode_n": "four"}, "must be integers"),
    ],
)
def test_bad_method_args_fail_clearly(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pop_method_args(dict(bad))


def test_tasks_declare_their_protocol_and_bad_declarations_fail_clearly() -> None:
    assert [
        task_decoding(t).refinement_rounds for t in ("em_math500", "em_ugphysics", "em_leetcode", "em_scicode")
    ] == [3, 3, 4, 2]
    assert task_decoding("leetcode").refinement_feedback == "code_block"  # the alias YAML inherits it
    assert task_decoding("not_ours").declared == ()
    with pytest.raises(ValueError, match="sc_grouping='vote' is not one of .*fix the task's YAML"):
        TaskDecoding("x", 3, "completion", "vote")
    with pytest.raises(ValueError, match="refinement_rounds=0 must be an integer >= 1"):
        TaskDecoding("x", 0, "completion", "math")


# ---- self-consistency --------------------------------------------------------------------
def test_math_votes_count_equivalent_answers_and_unanswered_only_match_themselves() -> None:
    answers, votes = math_votes(["\\boxed{1/2}", "no idea", "\\boxed{3}", "so \\boxed{0.5}", "?"], {})
    assert answers == ["1/2", None, "3", "0.5", None] and votes == [2, 1, 1, 2, 1]
    picks = {majority_index([1, 1, 1], random.Random(s)) for s in range(40)}
    assert picks == {0, 1, 2}  # ties are broken at random, not always the first


def test_self_consistency_returns_a_member_of_the_majority_cluster() -> None:
    q1 = ["\\boxed{1}", "\\boxed{2}", "\\boxed{2}", "\\boxed{3}"]
    plain = ScriptedPlain({"Q1": q1, "Q2": ["\\boxed{x}", "\\boxed{y}", "\\boxed{z}", "\\boxed{y}"]})
    reqs = make_requests(["Q1", "Q2"])
    out = generate(DecodeMethod("self_consistency", 4), reqs, plain)
    assert out == ["\\boxed{2}", "\\boxed{y}"]
    assert len(plain.calls) == 1 and len(plain.calls[0]) == 8, "all samples go out as one batched call"
    record = reqs[0].args[1][DECODE_KEY]
    assert record["samples"] == q1 and record["votes"] == [1, 2, 2, 1] and record["chosen"] in (1, 2)
    assert record["grouping"] == "math" and record["sample_seeds"].startswith("independent")
    assert len(reqs[1].args[1][TELEMETRY_KEY]) == 4, "every sample's compute is counted"


def test_self_consistency_tie_break_is_seeded_and_independent_of_batch_order() -> None:
    prompts = [f"Q{i}" for i in range(12)]
    script = {p: ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "\\boxed{4}"] for p in prompts}  # four-way tie

    def run(order: list[str], seed: int) -> dict[str, str]:
        method = DecodeMethod("self_consistency", 4, seed)
        out = generate(method, make_requests(order), ScriptedPlain(script))
        return dict(zip(order, out))

    first = run(prompts, 42)
    assert run(prompts[::-1], 42) == first
    assert run(prompts, 7) != first
    assert len(set(first.values())) > 1


def test_ugphysics_self_consistency_groups_with_the_ugphysics_judge() -> None:
    doc = {"answers": "\\boxed{2.00 \\times 10^{3}}", "answer_type": "NV", "unit": "None"}
    samples = ["so \\boxed{2010}", "\\boxed{2.00 \\times 10^{3}}", "\\boxed{7}", "no boxed answer"]
    reqs = task_requests("em_ugphysics", ["Q"], [doc])
    out = generate(DecodeMethod("self_consistency", 4), reqs, ScriptedPlain({"Q": samples}))
    record = reqs[0].args[1][DECODE_KEY]
    # the judge's 1e-2 relative precision puts 2010 with 2000 (the math grader keeps them apart);
    # a sample without an answer agrees with nothing, itself included (the paper's judge returns False)
    assert record["grouping"] == "ugphysics" and record["votes"] == [2, 2, 1, 0]
    assert out[0] in samples[:2]


@pytest.mark.parametrize("task", ["em_leetcode", "em_livecodebench", "em_scicode"])
def test_self_consistency_refuses_code_tasks_before_generating(task: str) -> None:
    plain = ScriptedPlain({})
    reqs = task_requests(task, ["Q"]) + make_requests(["M"])
    with pytest.raises(ValueError, match=f"not defined for task {task}: .*Use decode_method=plain or refinement"):
        generate(DecodeMethod("self_consistency", 4), reqs, plain)
    assert plain.calls == []


def test_plain_method_passes_requests_through() -> None:
    reqs = make_requests(["Q"])
    assert generate(DecodeMethod(), reqs, ScriptedPlain({"Q": ["only"]})) == ["only"]
    assert DECODE_KEY not in reqs[0].args[1]


def test_results_are_written_into_the_logged_gen_kwargs_once_telemetry_first() -> None:
    reqs = make_requests(["Q", "R"])
    texts = write_samples(reqs, [Generated("a", ({"gen_tokens": 1},), {"decode_method": "sc"}), Generated("b")])
    assert texts == ["a", "b"]
    assert list(reqs[0].args[1])[-2:] == [TELEMETRY_KEY, DECODE_KEY]
    assert reqs[0].args[1][TELEMETRY_KEY] == [{"gen_tokens": 1}]
    assert reqs[0].args[1][DECODE_KEY] == {"decode_method": "sc"}
    assert TELEMETRY_KEY not in reqs[1].args[1] and DECODE_KEY not in reqs[1].args[1], "nothing to write: no keys"


# ---- iterative refinement ---------------------------------------------------------------
def test_refinement_rereads_previous_attempts_for_n_rounds() -> None:
    q1 = "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n"
    r2 = refinement_prompt(q1, "first", q1)
    r3 = refinement_prompt(r2, "second", q1)
    assert r2 == q1 + "first\n\n" + q1
    plain = ScriptedPlain(
        {q1: ["first"], r2: ["second"], r3: ["third"], "Q2": ["a"], "Q2a\n\nQ2": ["b"], "Q2a\n\nQ2b\n\nQ2": ["c"]}
    )
    reqs = make_requests([q1, "Q2"])
    out = generate(DecodeMethod("refinement", 3), reqs, plain)
    assert out == ["third", "c"]
    assert [len(c) for c in plain.calls] == [2, 2, 2], "each round is one batched call"
    assert reqs[0].args[1][DECODE_KEY]["rounds"] == ["first", "second", "third"]
    assert [t["refine_round"] for t in reqs[0].args[1][TELEMETRY_KEY]] == [1, 2, 3]
    assert reqs[0].args[0] == q1, "the logged prompt stays the original question"


def test_refinement_runs_each_task_s_rounds_unless_decode_n_overrides() -> None:
    tasks = {"em_leetcode": 4, "em_math500": 3, "em_scicode": 2}
    script = {t: [f"{t} {k}" for k in range(4)] for t in tasks}

    def plain(reqs: list[Instance]) -> list[Generated]:
        return [Generated(script[r.task_name][len(r.args[0].split("\n\n")) - 1]) for r in reqs]

    reqs = [r for t in tasks for r in task_requests(t, [t])]
    generate(DecodeMethod("refinement", None), reqs, plain, eos_token="</s>")
    records = {r.task_name: r.args[1][DECODE_KEY] for r in reqs}
    assert {t: (rec["decode_n"], len(rec["rounds"]), rec["decode_n_from"]) for t, rec in records.items()} == {
        t: (n, n, "task metadata") for t, n in tasks.items()
    }
    assert records["em_scicode"]["feedback"] == "scicode_code"
    step = "Here:\n```python\nimport numpy as np\ndef f():\n    return 1\n```"
    assert task_decoding("em_scicode").feedback()(step, "</s>") == "\n\n\ndef f():\n    return 1\n\n\n"
    reqs = task_requests("em_leetcode", ["em_leetcode"])
    generate(DecodeMethod("refinement", 2), reqs, plain, eos_token="</s>")
    assert reqs[0].args[1][DECODE_KEY]["decode_n"] == 2 and reqs[0].args[1][DECODE_KEY]["decode_n_from"] == "decode_n"


@pytest.mark.parametrize("case", range(len(ORACLE["leetcode"]["cases"])))
def test_leetcode_refinement_feeds_back_what_the_paper_s_code_did(case: int) -> None:
    """Oracle: EM_PT's own statements (evaluate_leetcode.py) on scripted completions; see the JSON's command."""
    oracle = ORACLE["leetcode"]["cases"][case]
    rounds = oracle["rounds"]
    plain = ScriptedPlain({r["prompt"]: [r["completion"]] for r in rounds})
    reqs = task_requests("em_leetcode", [oracle["question"]])
    out = generate(DecodeMethod("refinement", len(rounds)), reqs, plain, eos_token=oracle["eos_token"])
    assert [c[0].args[0] for c in plain.calls] == [r["prompt"] for r in rounds]
    assert out == [rounds[-1]["completion"]]


def test_math_refinement_feeds_back_what_the_paper_s_code_did() -> None:
    oracle = ORACLE["math"]
    plain = ScriptedPlain({r["prompt"]: [r["completion"]] for r in oracle["rounds"]})
    reqs = task_requests("em_aime24", [oracle["question"]])
    generate(DecodeMethod("refinement", None), reqs, plain)
    assert [c[0].args[0] for c in plain.calls] == [r["prompt"] for r in oracle["rounds"]]


def test_refinement_goes_on_when_a_round_comes_back_empty() -> None:
    """What the paper's vLLM did with a prompt longer than the context (an empty completion), or a
    backend that truncated it: every round still runs and is recorded."""
    outputs = iter(["a very long first answer " * 50, "", ""])
    reqs = task_requests("em_ugphysics", ["Q"], [{"answers": "\\boxed{1}"}])
    out = generate(DecodeMethod("refinement", None), reqs, lambda rs: [Generated(next(outputs)) for _ in rs])
    assert out == [""] and len(reqs[0].args[1][DECODE_KEY]["rounds"]) == 3
