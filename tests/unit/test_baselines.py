"""Inference-time baselines: argument parsing, self-consistency voting, iterative refinement."""

from __future__ import annotations

import random

import pytest
from lm_eval.api.instance import Instance

from lm_requests import make_requests

from em_eval.records import TELEMETRY_KEY
from em_eval.decoding.methods import (
    RECORD_KEY,
    DecodeMethod,
    generate_with_method,
    majority_index,
    pop_method_args,
    refinement_prompt,
)

class ScriptedPlain:
    """A stand-in for backend generation: scripted outputs per prompt, telemetry like the HF backend."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[list[Instance]] = []

    def __call__(self, reqs: list[Instance]) -> list[str]:
        self.calls.append(reqs)
        outs = []
        for req in reqs:
            assert TELEMETRY_KEY not in req.args[1] and RECORD_KEY not in req.args[1], "records leaked into generation"
            out = self.script[req.args[0]].pop(0)
            req.args[1].setdefault(TELEMETRY_KEY, []).append({"gen_tokens": len(out.split())})
            outs.append(out)
        return outs


# ---- arguments ---------------------------------------------------------------------------
def test_method_args_are_popped_with_defaults_and_aliases() -> None:
    args = {"pretrained": "x", "decode_method": "self_consistency", "decode_n": "4"}
    assert pop_method_args(args) == DecodeMethod("self_consistency", 4) and args == {"pretrained": "x"}
    assert pop_method_args({}) == DecodeMethod("plain", 1)
    assert pop_method_args({"decode_method": "iterative_refinement"}) == DecodeMethod("refinement", 3)
    assert pop_method_args({"decode_method": "sc"}).n == 4
    assert DecodeMethod("refinement", 2).as_args() == {"decode_method": "refinement", "decode_n": 2, "decode_seed": 42}


@pytest.mark.parametrize(
    "bad,match",
    [({"decode_method": "beam"}, "decode_method='beam' is not one of"), ({"decode_rounds": 3}, "unknown decoding argument"),
     ({"decode_method": "self_consistency", "decode_n": 0}, "decode_n=0 is invalid"),
     ({"decode_n": 2}, "plain: n = 1"), ({"decode_method": "sc", "decode_n": "four"}, "must be integers")],
)
def test_bad_method_args_fail_clearly(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pop_method_args(dict(bad))


# ---- self-consistency --------------------------------------------------------------------
def test_majority_counts_clusters_and_unanswered_only_match_themselves() -> None:
    pick, votes = majority_index([0, None, 1, 0, None], random.Random(0))
    assert votes == [2, 1, 1, 2, 1] and pick in (0, 3)
    picks = {majority_index([None, None, None], random.Random(s))[0] for s in range(40)}
    assert picks == {0, 1, 2}  # ties are broken at random, not always the first


def test_self_consistency_returns_a_member_of_the_majority_cluster() -> None:
    plain = ScriptedPlain({"Q1": ["A", "B", "B", "C"], "Q2": ["x", "y", "z", "y"]})
    reqs = make_requests(["Q1", "Q2"])
    out = generate_with_method(
        DecodeMethod("self_consistency", 4), reqs, plain, extract=str.strip, cluster=lambda answers: list(answers)
    )
    assert out == ["B", "y"]
    assert len(plain.calls) == 1 and len(plain.calls[0]) == 8, "all samples go out as one batched call"
    record = reqs[0].args[1][RECORD_KEY]
    assert record["samples"] == ["A", "B", "B", "C"] and record["votes"] == [1, 2, 2, 1] and record["chosen"] in (1, 2)
    assert len(reqs[1].args[1][TELEMETRY_KEY]) == 4, "every sample's compute is counted"


def test_self_consistency_uses_the_math_grader_by_default() -> None:
    outs = ["so \\boxed{1/2}", "\\boxed{3}", "I get \\boxed{0.5}", "no idea"]
    reqs = make_requests(["Q"])
    out = generate_with_method(DecodeMethod("self_consistency", 4), reqs, ScriptedPlain({"Q": outs}))
    assert out[0] in (outs[0], outs[2])
    assert reqs[0].args[1][RECORD_KEY]["answers"] == ["1/2", "3", "0.5", None]


def test_self_consistency_tie_break_is_seeded_and_independent_of_batch_order() -> None:
    prompts = [f"Q{i}" for i in range(12)]
    script = {p: ["a", "b", "c", "d"] for p in prompts}  # four-way tie everywhere

    def run(order: list[str], seed: int) -> dict[str, str]:
        out = generate_with_method(DecodeMethod("self_consistency", 4, seed), make_requests(order), ScriptedPlain(script),
                                   extract=str.strip, cluster=lambda a: list(a))
        return dict(zip(order, out))

    first = run(prompts, 42)
    assert run(prompts[::-1], 42) == first
    assert run(prompts, 7) != first
    assert len(set(first.values())) > 1


def test_plain_method_passes_requests_through() -> None:
    reqs = make_requests(["Q"])
    assert generate_with_method(DecodeMethod(), reqs, ScriptedPlain({"Q": ["only"]})) == ["only"]
    assert RECORD_KEY not in reqs[0].args[1]


# ---- iterative refinement ---------------------------------------------------------------
def test_refinement_rereads_previous_attempts_for_n_rounds() -> None:
    q1 = "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n"
    r2 = refinement_prompt(q1, "first", q1)
    r3 = refinement_prompt(r2, "second", q1)
    assert r2 == q1 + "first\n\n" + q1
    plain = ScriptedPlain({q1: ["first"], r2: ["second"], r3: ["third"], "Q2": ["a"], "Q2a\n\nQ2": ["b"],
                           "Q2a\n\nQ2b\n\nQ2": ["c"]})
    reqs = make_requests([q1, "Q2"])
    out = generate_with_method(DecodeMethod("refinement", 3), reqs, plain)
    assert out == ["third", "c"]
    assert [len(c) for c in plain.calls] == [2, 2, 2], "each round is one batched call"
    assert reqs[0].args[1][RECORD_KEY]["rounds"] == ["first", "second", "third"]
    assert len(reqs[0].args[1][TELEMETRY_KEY]) == 3
    assert reqs[0].args[0] == q1, "the logged prompt stays the original question"
