"""User errors: found anywhere in a chain of exceptions, and reported in one line."""

from __future__ import annotations

import sys

import pytest

from em_eval.em_inf.settings import EmSettings
from em_eval.user_errors import ArgumentNameError, UserError, did_you_mean, excepthook, find_user_error


def test_did_you_mean_names_the_closest_known_name_only_when_close() -> None:
    assert did_you_mean("em_treshold", EmSettings.arg_names()) == " (did you mean 'em_threshold'?)"
    assert did_you_mean("attn_implementation", EmSettings.arg_names()) == ""


def test_the_user_error_is_found_behind_wrapping_exceptions() -> None:
    try:
        try:
            EmSettings.pop_from({"em_treshold": 0.3})
        except ValueError as inner:
            raise RuntimeError("lm-eval could not build the model") from inner
    except RuntimeError as outer:
        found = find_user_error(outer)
    assert isinstance(found, ArgumentNameError) and "did you mean 'em_threshold'" in str(found)
    assert find_user_error(RuntimeError("a bug")) is None


def test_excepthook_prints_one_line_for_a_user_error_and_the_usual_report_otherwise(capsys, monkeypatch) -> None:
    monkeypatch.delenv("EM_EVAL_TRACEBACK", raising=False)
    monkeypatch.setattr(sys, "argv", ["lm_eval"])
    calls = []
    excepthook(
        UserError, UserError("em_mode='fast' is not one of off, em_inf"), None, fallback=lambda *a: calls.append(a)
    )
    assert capsys.readouterr().err == (
        "lm_eval: error: em_mode='fast' is not one of off, em_inf\n(the full traceback: EM_EVAL_TRACEBACK=1)\n"
    )
    assert calls == []
    bug = KeyError("x")
    excepthook(KeyError, bug, None, fallback=lambda *a: calls.append(a))
    assert calls == [(KeyError, bug, None)]
    monkeypatch.setenv("EM_EVAL_TRACEBACK", "1")
    excepthook(UserError, UserError("y"), None, fallback=lambda *a: calls.append(a))
    assert len(calls) == 2, "EM_EVAL_TRACEBACK=1 keeps the full report"


def test_argument_errors_stay_value_errors_for_callers() -> None:
    with pytest.raises(ValueError, match="unknown EM argument"):
        EmSettings.pop_from({"em_stepz": 1})
