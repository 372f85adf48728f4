"""The synthetic lm-eval output folders the gate and leaderboard tests use load like real ones."""

from __future__ import annotations

from pathlib import Path

from em_eval.results import load_run, result_files
from synthetic_runs import write_run


def test_synthetic_runs_load_like_real_ones(tmp_path: Path) -> None:
    path = write_run(tmp_path, {"t1": [1, 0, 1], "t2": [[1, 0], [0, 0], [1, 1]]}, em_mode="em_inf", tokens=[64, 10, 5])
    assert result_files(tmp_path) == [path]
    run = load_run(path)
    assert (run.method, run.method_label) == ("em_inf", "EM-INF")
    t1, t2 = run.tasks["t1"], run.tasks["t2"]
    assert t1.binary and t1.scores == [1.0, 0.0, 1.0] and t1.metric == "exact_match"
    assert not t2.binary and t2.scores == [0.5, 0.0, 1.0] and t2.samples_per_problem == 2
    assert [p.flags["hit_token_limit"] for p in t1.problems] == [True, False, False]
    assert t1.problems[0].flags["no_answer"] is True and t1.problems[1].flags["no_answer"] is False
    assert t2.problems[0].gen_tokens == 128, "tokens of every response are counted"
