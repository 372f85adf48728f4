"""Checkpoint sweeps: planning and resuming, the per-step metrics, the entropy fit and the
collapse alarm (on synthetic lm-eval outputs; no model, no lm-eval process)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from synthetic_runs import write_run

from em_eval.analysis.sweep import entropy_fit, evaluate_missing, lm_eval_command, plan, summarise, transitional_rate
from em_eval.cli import main
from em_eval.gate.compare import GateSettings
from em_eval.models.checkpoint_format import METADATA_FILE
from em_eval.results import ResultsError


def test_transitional_rate_counts_phrases_per_thousand_words() -> None:
    assert transitional_rate(["Wait, let me check this. Hmm ok", "waiter awaits"]) == pytest.approx(1000 * 3 / 9)
    assert math.isnan(transitional_rate([""]))


def test_entropy_fit_recovers_the_exponential_law() -> None:
    entropy = [0.2, 0.5, 0.8, 1.1]
    fit = entropy_fit(entropy, [-0.2 * math.exp(h) + 0.9 for h in entropy])
    assert fit["a"] == pytest.approx(0.2) and fit["b"] == pytest.approx(0.9) and fit["ceiling"] == pytest.approx(0.7)
    assert fit["r2"] == pytest.approx(1.0)
    assert entropy_fit([0.1, 0.2], [0.5, 0.4]) is None  # too few points


STEP_OUTCOMES = {0: (0.9, 1.2), 10: (0.9, 1.0), 20: (0.2, 0.6)}  # step: (share correct, entropy)


def _fake_eval(calls: list[int]):
    def run(command: list[str]) -> int:
        out = command[command.index("--output_path") + 1]
        step = int(out.rsplit("-", 1)[1])
        calls.append(step)
        share, entropy = STEP_OUTCOMES[step]
        write_run(Path(out), {"em_t": [int(i < 40 * share) for i in range(40)]},
                  model="m", entropy=(entropy, entropy, 0.0))
        return 0
    return run


def _run_dir(tmp_path):
    run_dir = tmp_path / "run"
    for step in (10, 20, 30):
        folder = run_dir / f"checkpoint-{step:06d}"
        folder.mkdir(parents=True)
        if step != 30:  # an unfinished checkpoint (no metadata) is left out
            (folder / METADATA_FILE).write_text("{}")
    return run_dir


def test_sweep_evaluates_each_checkpoint_once_and_raises_the_collapse_alarm(tmp_path) -> None:
    out = tmp_path / "sweep"
    checkpoints = plan(_run_dir(tmp_path), out, base="base-model")
    assert [(c.step, c.done) for c in checkpoints] == [(0, False), (10, False), (20, False)]
    command = lm_eval_command(checkpoints[1], "em_inf", "device=cpu", "em_t", ["--limit", "5"])
    assert command[:4] == [sys.executable, "-m", "em_eval", "eval"] and "--log_samples" in command
    assert command[command.index("--model_args") + 1] == f"pretrained={checkpoints[1].model},device=cpu"
    calls: list[int] = []
    build = lambda c: lm_eval_command(c, "em_inf", "", "em_t", [])  # noqa: E731
    assert evaluate_missing(checkpoints[:2], build, _fake_eval(calls)) == [0, 10]
    assert evaluate_missing(checkpoints, build, _fake_eval(calls)) == [20]  # resumed: 0 and 10 are done
    assert calls == [0, 10, 20]
    summary = summarise(checkpoints, GateSettings())
    by_step = {r["step"]: r for r in summary["rows"]}
    assert by_step[20]["accuracy"] == 0.2 and by_step[10]["entropy"] == 1.0 and by_step[0]["tokens"] == 20
    assert [(a["to_step"], a["alarm"]) for a in summary["alarms"]] == [(10, False), (20, True)]
    assert summary["fits"]["em_t"] is not None and summary["alarm"]
    assert main(["sweep", str(tmp_path / "run"), "--base", "base-model", "--tasks", "em_t", "-o", str(out),
                 "--no-eval"]) == 1
    assert json.loads((out / "sweep.json").read_text())["alarm"] and (out / "plots" / "sweep_em_t.png").exists()


def test_a_failed_evaluation_names_the_step_and_keeps_what_finished(tmp_path) -> None:
    checkpoints = plan(_run_dir(tmp_path), tmp_path / "sweep")
    with pytest.raises(ResultsError, match=r"evaluating step 10 .* failed \(exit 3\).*finished steps are kept"):
        evaluate_missing(checkpoints, lambda c: ["x"], lambda cmd: 3)
    with pytest.raises(ResultsError, match="holds no finished checkpoint"):
        plan(tmp_path / "empty", tmp_path / "sweep")
