"""What em-eval keeps out of lm-eval's console output (pure parts)."""

from __future__ import annotations

import logging

from em_eval.integration.log_noise import is_noise


def _record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord("lm_eval.evaluator", logging.WARNING, __file__, 1, msg, args, None)


def test_only_the_two_unactionable_warnings_are_dropped() -> None:
    custom = "{}: Custom kwargs can be passed to `--metadata` in console (as json string) or to the TaskManager."
    assert is_noise(_record(custom.format("em_math500")))
    assert not is_noise(_record(custom.format("gsm8k_custom")))
    ensure = (
        "generation_kwargs: %s specified through cli, these settings will update set parameters in yaml tasks. "
        "Ensure 'do_sample=True' for non-greedy decoding!"
    )
    assert is_noise(_record(ensure, {"do_sample": True, "temperature": 0.7}))
    assert not is_noise(_record(ensure, {"temperature": 0.7})), "a temperature without do_sample still warns"
    assert not is_noise(_record("model_args not specified. Using defaults."))
