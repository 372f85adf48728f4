"""The single place that turns (task gen_kwargs, EM settings) into what is sampled."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from em_eval.backends.effective_sampling import (
    MIN_GEN_TOKS,
    effective_sampling,
    fit_prompt,
    refuse_protocol_keys,
    resolve,
)
from em_eval.em_inf.settings import EmSettings
from em_eval.user_errors import ArgumentValueError

LEETCODE = {
    "until": [],
    "do_sample": True,
    "temperature": 0.1,
    "max_gen_toks": 4096,
    "max_context": 4096,
    "by_em_mode": {"em_inf": {"max_gen_toks": 8192, "max_context": None}},
}


def test_by_em_mode_applies_to_the_request_mode_and_null_removes_a_key() -> None:
    em = effective_sampling(LEETCODE, EmSettings())
    assert (em["em_mode"], em["max_gen_toks"], em["max_context"]) == ("em_inf", 8192, None)
    off = effective_sampling(LEETCODE, EmSettings(mode="off"))  # em_mode=off as a model arg
    assert (off["max_gen_toks"], off["max_context"]) == (4096, 4096)
    plain = effective_sampling({**LEETCODE, "em_mode": "off"}, EmSettings())  # a gen key beats the model arg
    assert (plain["em_mode"], plain["max_gen_toks"], plain["max_context"]) == ("off", 4096, 4096)
    resolved = resolve(LEETCODE, EmSettings(mode="off"))
    assert "by_em_mode" not in resolved.gen_kwargs and "max_context" not in resolved.gen_kwargs
    assert resolved.gen_kwargs["em_mode"] == "off" and resolved.max_context == 4096


def test_adaptive_temperature_replaces_the_task_temperature() -> None:
    at = effective_sampling({"do_sample": True, "temperature": 0.1, "top_p": 1.0}, EmSettings(mode="adaptive_temp"))
    assert (at["temperature"], at["replaced_temperature"], at["top_p"], at["top_k"]) == (1.0, 0.1, 1.0, None)
    assert resolve({"temperature": 0.1}, EmSettings(mode="adaptive_temp")).gen_kwargs["temperature"] == 1.0
    em = effective_sampling({"do_sample": True, "temperature": 0.1, "top_k": 20}, EmSettings())
    assert (em["temperature"], em["replaced_temperature"], em["top_k"]) == (0.1, None, 20)
    greedy = effective_sampling({"do_sample": False, "temperature": 0.1, "top_k": 20}, EmSettings(mode="adaptive_temp"))
    assert (greedy["do_sample"], greedy["temperature"], greedy["top_k"], greedy["replaced_temperature"]) == (
        False,
        0.0,
        None,
        None,
    )


def test_fit_prompt_caps_by_context_and_truncates_only_what_does_not_fit() -> None:
    assert fit_prompt(100, 4096, 4096, 32768) == (3996, 100)
    assert fit_prompt(100, 8192, None, 4096) == (3996, 100)
    assert fit_prompt(100, 512, None, 4096) == (512, 100)
    assert fit_prompt(4095, 4096, 4096, 32768) == (1, 4095)  # fits: the paper's vLLM would generate 1 token
    assert fit_prompt(5000, 4096, 4096, 32768) == (MIN_GEN_TOKS, 4096 - MIN_GEN_TOKS)
    assert fit_prompt(300, 8, None, 64) == (8, 56)
    assert fit_prompt(300, 4096, None, 64) == (32, 32)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"max_context": 0}, "max_context=0 must be a positive number"),
        ({"max_context": "lots"}, "max_context='lots'"),
        ({"by_em_mode": {"greedy": {}}}, "unknown em_mode"),
        ({"by_em_mode": {"em_inf": 3}}, "must map an em_mode to gen keys"),
        ({"prompt_overflow": "drop"}, "prompt_overflow='drop' must be one of truncate, empty"),
    ],
)
def test_bad_protocol_keys_give_one_clear_error(bad: dict, match: str) -> None:
    with pytest.raises(ArgumentValueError, match=match):
        resolve(bad, EmSettings())


def test_stock_backends_refuse_protocol_keys_naming_the_fix() -> None:
    reqs = [
        SimpleNamespace(task_name="em_leetcode", args=("p", dict(LEETCODE))),
        SimpleNamespace(task_name="em_math500", args=("p", {"temperature": 0.1})),
    ]
    with pytest.raises(ArgumentValueError, match="em_leetcode sets by_em_mode, em_leetcode sets max_context.*em_inf"):
        refuse_protocol_keys(reqs, "HFLM")
    refuse_protocol_keys(reqs[1:], "HFLM")


def test_the_stock_backend_guard_refuses_protocol_keys_and_ours_pass() -> None:
    from em_eval.plugin import guard_multistep

    class Stock:
        def generate_until(self, requests, disable_tqdm=False):
            return ["x"] * len(requests)

    class Ours(Stock):  # as em-eval's backends: its own generate_until, which runs the protocol
        def generate_until(self, requests, disable_tqdm=False):
            return ["x"] * len(requests)

    guard_multistep(Stock)
    req = SimpleNamespace(task_name="em_leetcode", args=("p", {"max_context": 4096}))
    with pytest.raises(ArgumentValueError, match="em_leetcode sets max_context: .*Stock backend cannot apply"):
        Stock().generate_until([req])
    assert Ours().generate_until([req]) == ["x"]
