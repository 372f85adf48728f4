"""Checkpoint sweeps: the pure functions on hand-made series, and the orchestration (resume, series,
paired tests, alarm, exit code) with a fake evaluator that writes synthetic lm-eval runs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from em_eval.cli import main
from em_eval.models.checkpoint_format import CheckpointMetadata, checkpoint_name, write_metadata
from em_eval.sweep import evaluate
from em_eval.sweep.evaluate import EvaluationFailed, SweepError, finished_results, lm_eval_argv, sweep_targets
from em_eval.sweep.laws import collapse_alarms, fit_entropy_law, transitional_counts, transitional_rate
from em_eval.sweep.run import run_sweep
from synthetic_runs import write_run


# ---- transitional words ------------------------------------------------------------------------
def test_transitional_phrases_count_once_on_word_boundaries() -> None:
    text = "Wait, let me check. But wait, hmm. Let me double-check: awaited, waits, wait-list, Alternatively x"
    # Wait | let me check | But wait | hmm | Let me double-check | Alternatively  (not awaited/waits/wait-list)
    assert transitional_counts([text]) == (6, 15)
    assert transitional_rate([text, "two words"]) == pytest.approx(1000 * 6 / 17)
    assert transitional_counts(["let   me\ncheck"], ["let me check"]) == (1, 3)
    assert transitional_rate(["", "  "]) is None
    with pytest.raises(ValueError, match="at least one"):
        transitional_counts(["x"], [])


# ---- entropy-performance law --------------------------------------------------------------------
def test_entropy_law_recovers_an_exact_series_and_its_ceiling() -> None:
    h = [1.2, 0.9, 0.6, 0.3, 0.1]
    r = [-0.3 * math.exp(x) + 0.9 for x in h]
    fit = fit_entropy_law(h, r)
    assert (fit.a, fit.b, fit.ceiling, fit.r2, fit.n) == pytest.approx((0.3, 0.9, 0.6, 1.0, 5))
    assert fit.predict(0.0) == pytest.approx(fit.ceiling)


def test_entropy_law_matches_least_squares_on_noisy_points() -> None:
    rng = np.random.default_rng(0)
    h = rng.uniform(0.1, 1.5, 12)
    r = -0.2 * np.exp(h) + 0.8 + rng.normal(0, 0.02, 12)
    slope, intercept = np.polyfit(np.exp(h), r, 1)
    fit = fit_entropy_law(list(h), list(r))
    assert (fit.a, fit.b) == pytest.approx((-slope, intercept))
    residual = r - (intercept + slope * np.exp(h))
    assert fit.r2 == pytest.approx(1 - residual @ residual / ((r - r.mean()) @ (r - r.mean())))
    assert 0 < fit.r2 < 1


def test_entropy_law_needs_two_distinct_entropies() -> None:
    assert fit_entropy_law([0.5], [0.4]) is None
    assert fit_entropy_law([0.5, 0.5, None], [0.4, 0.6, 0.7]) is None
    assert fit_entropy_law([0.5, 1.0], [0.5, 0.5]).r2 is None  # nothing to explain
    with pytest.raises(ValueError, match="one performance per entropy"):
        fit_entropy_law([0.5, 1.0], [0.5])


# ---- collapse alarm ----------------------------------------------------------------------------
def test_collapse_alarm_needs_a_significant_drop_while_entropy_falls() -> None:
    steps, acc = [10, 20, 30, 40], [0.5, 0.6, 0.4, 0.3]
    falling = [1.0, 0.8, 0.6, 0.5]
    alarms = collapse_alarms(steps, acc, falling, [False, True, True])
    assert [(a.step, a.from_step) for a in alarms] == [(30, 20), (40, 30)]
    assert "collapse at step 30: accuracy 60.0 -> 40.0" in alarms[0].message()
    assert collapse_alarms(steps, acc, falling, [False, False, False]) == []  # falls, but not significantly
    assert collapse_alarms(steps, acc, [1.0, 0.8, 0.9, 1.0], [False, True, True]) == []  # entropy rises: no collapse
    assert collapse_alarms(steps, acc, [1.0, 0.8, None, None], [False, True, True]) == []  # entropy unknown
    assert [a.step for a in collapse_alarms(steps, acc, falling, [False, True, True], min_entropy_fall=0.15)] == [30]


def test_collapse_alarm_rejects_malformed_series() -> None:
    with pytest.raises(ValueError, match="n - 1 drop flags"):
        collapse_alarms([1, 2], [0.1, 0.2], [1.0, 0.9], [True, False])
    with pytest.raises(ValueError, match="strictly increasing"):
        collapse_alarms([2, 1], [0.1, 0.2], [1.0, 0.9], [True])


# ---- orchestration with a fake evaluator --------------------------------------------------------
PLAN = {  # step: (per-problem success probability, entropy, transitional phrases per response)
    5: (0.5, 1.00, 0),
    10: (0.9, 0.80, 1),
    15: (0.1, 0.50, 2),
}


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for step in PLAN:
        folder = run / checkpoint_name(step)
        folder.mkdir(parents=True)
        write_metadata(folder, CheckpointMetadata("em_ft", step, "tiny-base", None, "sha", 0, None, {}, "0"))
    (run / "checkpoint-000020").mkdir()  # unfinished: no metadata, not swept
    return run


class FakeEvaluator:
    """Writes a synthetic run for the checkpoint named in lm_eval's arguments (0.5/0.9/0.1 accuracy)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, argv: list[str]) -> int:
        model_args = argv[argv.index("--model_args") + 1]
        step = json.loads(
            Path(model_args.split(",")[0].removeprefix("pretrained="), "em_eval_checkpoint.json").read_text()
        )["step"]
        self.calls.append(step)
        p, entropy, words = PLAN[step]
        outcomes = [int(i < 40 * p) for i in range(40)]
        results = write_run(
            Path(argv[argv.index("--output_path") + 1]),
            {"em_math500": outcomes},
            tokens=[10 + step] * 40,
            entropy=(entropy, entropy, 0.0),
        )
        samples = next(results.parent.glob("samples_*.jsonl"))
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        for row in rows:
            row["resps"] = [[" ".join(["wait"] * words + ["x"] * (10 - words))]]
        samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return 0


def test_sweep_evaluates_each_checkpoint_once_and_raises_the_collapse_alarm(tmp_path) -> None:
    run, fake, logged = _run_dir(tmp_path), FakeEvaluator(), []
    result = run_sweep(run, ["em_math500"], evaluator=fake, log=logged.append)
    assert fake.calls == [5, 10, 15] and result.status == "collapse"
    (series,) = result.series
    assert [p.step for p in series.points] == [5, 10, 15]
    assert [p.accuracy for p in series.points] == [0.5, 0.9, 0.1]
    assert [p.entropy for p in series.points] == [1.0, 0.8, 0.5]
    assert [p.length for p in series.points] == [15, 20, 25]
    assert [p.transitional_rate for p in series.points] == [0, 100, 200]
    assert [v.regression for v in series.steps] == [False, True]  # exact McNemar at alpha 0.05 / 2 pairs
    assert series.steps[1].alpha == pytest.approx(0.025)
    assert [a.step for a in series.alarms] == [15] and series.drops == [15]
    assert series.fit is not None and series.fit.n == 3
    report = json.loads(result.paths["json"].read_text())
    assert report["status"] == "collapse" and report["tasks"][0]["best_step"] == 10
    text = result.paths["markdown"].read_text()
    assert "ALARM: collapse at step 15" in text and "so this is no ceiling" in text  # accuracy rose with entropy
    assert result.paths["plot:em_math500"].stat().st_size > 1000

    again = run_sweep(run, ["em_math500"], evaluator=fake, log=logged.append)  # resumed: nothing re-evaluated
    assert fake.calls == [5, 10, 15] and again.status == "collapse"
    assert sum("already evaluated" in line for line in logged) == 3

    samples = next((run / "sweep" / checkpoint_name(10)).rglob("samples_*.jsonl"))
    samples.write_text("".join(samples.read_text().splitlines(keepends=True)[:-1]))  # killed while logging
    assert finished_results(run / "sweep" / checkpoint_name(10)) is None
    run_sweep(run, ["em_math500"], evaluator=fake, log=logged.append)
    assert fake.calls == [5, 10, 15, 10]
    assert "checkpoint-000010: removing an incomplete evaluation" in " ".join(logged)

    shutil.rmtree(run / checkpoint_name(5))  # keep_last removed it: its evaluation stays in the series
    kept = run_sweep(run, ["em_math500"], evaluator=fake, log=logged.append)
    assert fake.calls == [5, 10, 15, 10] and [p.step for p in kept.series[0].points] == [5, 10, 15]


def test_sweep_cli_exit_codes(tmp_path, monkeypatch, capsys) -> None:
    run, fake = _run_dir(tmp_path), FakeEvaluator()
    monkeypatch.setattr(evaluate, "in_process", fake)
    assert (
        main(
            [
                "sweep",
                str(run),
                "--tasks",
                "em_math500",
                "--same-process",
                "-o",
                str(tmp_path / "s"),
                "--",
                "--limit",
                "40",
            ]
        )
        == 1
    )
    assert "status: collapse" in capsys.readouterr().out
    # an 80-point drop within a tolerated 90-point margin: no alarm
    assert (
        main(
            ["sweep", str(run), "--tasks", "em_math500", "--same-process", "-o", str(tmp_path / "s"), "--margin", "0.9"]
        )
        == 0
    )
    assert main(["sweep", str(tmp_path / "nothing"), "--tasks", "em_math500"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    monkeypatch.setattr(evaluate, "in_process", lambda argv: 3)
    assert main(["sweep", str(run), "--tasks", "em_math500", "--same-process", "-o", str(tmp_path / "t")]) == 1
    assert "lm-eval failed (exit code 3)" in capsys.readouterr().err


def test_lm_eval_arguments_and_targets(tmp_path) -> None:
    run = _run_dir(tmp_path)
    targets = sweep_targets(run, include_base=True)
    assert [(t.step, t.name) for t in targets] == [
        (0, "base"),
        (5, "checkpoint-000005"),
        (10, "checkpoint-000010"),
        (15, "checkpoint-000015"),
    ]
    assert targets[0].model == "tiny-base"
    argv = lm_eval_argv(targets[1], tmp_path / "o", ["a", "b"], "vllm", "dtype=float32", ["--limit", "2"])
    assert argv == [
        "--model",
        "em_inf_vllm",
        "--model_args",
        f"pretrained={run.resolve() / 'checkpoint-000005'},dtype=float32,em_mode=off",
        "--tasks",
        "a,b",
        "--output_path",
        str(tmp_path / "o"),
        "--log_samples",
        "--limit",
        "2",
    ]
    assert "em_mode=em_inf" in lm_eval_argv(targets[1], tmp_path, ["a"], model_args="em_mode=em_inf")[3]
    assert "em_mode=off" not in lm_eval_argv(targets[1], tmp_path, ["a"], model_args="em_mode=em_inf")[3]
    with pytest.raises(SweepError, match="must not set pretrained"):
        lm_eval_argv(targets[1], tmp_path, ["a"], model_args="pretrained=x")
    with pytest.raises(SweepError, match="unknown backend"):
        lm_eval_argv(targets[1], tmp_path, ["a"], "tgi")
    with pytest.raises(SweepError, match="holds no finished checkpoint"):
        sweep_targets(tmp_path)
    with pytest.raises(EvaluationFailed, match="wrote no complete results"):
        run_sweep(run, ["em_math500"], evaluator=lambda argv: 0, log=lambda _: None)
