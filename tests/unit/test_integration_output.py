"""What em-eval keeps out of lm-eval's console output (pure parts)."""

from __future__ import annotations

import logging

from em_eval.integration.log_noise import is_noise
from em_eval.integration.results_table import without_bookkeeping


def test_the_table_drops_bookkeeping_metrics_of_our_tasks_only() -> None:
    ours = {
        "alias": "em_math500",
        "exact_match,none": 0.5,
        "exact_match_stderr,none": 0.1,
        "n,none": 1,
        "n_stderr,none": 0.0,
        "grading,none": 2,
        "grading_stderr,none": "N/A",
        "no_answer,none": 0.0,
    }
    theirs = {"alias": "gsm8k", "n,none": 3, "exact_match,none": 0.2}
    result = {"results": {"em_math500": ours, "gsm8k": theirs}, "versions": {}}
    trimmed = without_bookkeeping(result)
    kept = {"alias", "exact_match,none", "exact_match_stderr,none", "no_answer,none"}
    assert set(trimmed["results"]["em_math500"]) == kept
    assert trimmed["results"]["gsm8k"] == theirs, "other tasks' metrics are theirs to show"
    assert result["results"]["em_math500"] is ours and "grading,none" in ours, "the results themselves are untouched"
    assert without_bookkeeping({"results": {}}, "groups") == {"results": {}}


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
