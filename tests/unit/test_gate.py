"""``em-eval check``: paired tests, power, the decision rule, mismatches and the report files."""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from em_eval.cli import build_parser, main
from em_eval.gate.stats import mcnemar_exact, min_detectable_drop_binary, paired_bootstrap
from em_eval.results import grader_signature
from synthetic_runs import bernoulli, write_run

REPO = Path(__file__).resolve().parents[2]


# ---- statistics ------------------------------------------------------------------------------
def test_exact_mcnemar_matches_the_binomial_test_by_hand() -> None:
    base = [1] * 10 + [0] * 2 + [1] * 30 + [0] * 58  # 10 losses, 2 wins, 88 concordant
    cand = [0] * 10 + [1] * 2 + [1] * 30 + [0] * 58
    c = mcnemar_exact(base, cand)
    assert (c.losses, c.wins, c.n) == (10, 2, 100)
    assert c.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert c.diff == pytest.approx(-0.08) and c.ci_low < c.diff < c.ci_high < 0


@pytest.mark.parametrize("losses,wins", [(lo, w) for lo in range(0, 14, 3) for w in range(0, 14, 4)])
def test_mcnemar_interval_excludes_zero_exactly_when_the_test_rejects(losses: int, wins: int) -> None:
    base = [1] * losses + [0] * wins + [1] * 20
    cand = [0] * losses + [1] * wins + [1] * 20
    c = mcnemar_exact(base, cand, alpha=0.05)
    assert (c.p_value < 0.05) == (c.ci_high < 0 or c.ci_low > 0)


def test_false_alarm_rate_under_the_null_stays_below_alpha() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.1, 0.9, 80)  # per-problem difficulty, same for both runs
    alarms_binary = alarms_boot = 0
    for _ in range(200):
        b, c = (rng.random(80) < p).astype(int), (rng.random(80) < p).astype(int)
        alarms_binary += mcnemar_exact(b, c).ci_high < 0
        b4, c4 = (rng.random((80, 4)) < p[:, None]).mean(1), (rng.random((80, 4)) < p[:, None]).mean(1)
        alarms_boot += paired_bootstrap(b4, c4, resamples=2000, seed=int(rng.integers(1 << 30))).ci_high < 0
    assert alarms_binary / 200 <= 0.05 and alarms_boot / 200 <= 0.06


def test_min_detectable_drop_is_what_the_rule_detects_with_the_stated_power() -> None:
    n, churn = 300, 0.10
    d = min_detectable_drop_binary(n, churn, 0.05, 0.0, 0.8)
    assert 0.02 < d < 0.15
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(400):
        u = rng.random(n)
        base = np.ones(n, dtype=int)
        cand = base.copy()
        cand[u < churn / 2 + d] = 0  # losses
        base[(u >= churn / 2 + d) & (u < churn + d)] = 0  # wins: baseline wrong, candidate right
        hits += mcnemar_exact(base, cand).ci_high < 0
    assert 0.72 <= hits / 400 <= 0.88
    assert min_detectable_drop_binary(4 * n, churn, 0.05, 0.0, 0.8) < d, "more problems detect smaller drops"
    assert min_detectable_drop_binary(n, 0.0, 0.05, 0.0, 0.8) == pytest.approx(0.0265, abs=0.004)  # ~6 lost problems


def test_bootstrap_finds_a_planted_shift_and_not_an_identical_run() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, 200)
    same = paired_bootstrap(base, base)
    assert (same.diff, same.p_value, same.ci_low, same.ci_high) == (0.0, 1.0, 0.0, 0.0)
    worse = paired_bootstrap(base, np.clip(base - 0.15 + rng.normal(0, 0.05, 200), 0, 1))
    assert worse.ci_high < 0 and worse.p_value < 0.001


# ---- the command ------------------------------------------------------------------------------
def run_gate(
    tmp_path: Path, base: dict, cand: dict, *extra: str, base_kw: dict | None = None, cand_kw: dict | None = None
):
    b = write_run(tmp_path / "base", base, **(base_kw or {}))
    c = write_run(tmp_path / "cand", cand, **(cand_kw or {}))
    out = tmp_path / "gate"
    code = main(
        [
            "check",
            "--baseline",
            str(b.parent.parent),
            "--candidate",
            str(c),
            "-o",
            str(out),
            "--annotations",
            "always",
            *extra,
        ]
    )
    report = json.loads((out / "gate.json").read_text()) if (out / "gate.json").exists() else None
    return code, report, out


def test_planted_regression_fails_with_all_reports(tmp_path: Path, capsys) -> None:
    base = bernoulli(300, 0.6, seed=0)
    cand = [0 if (x and i % 4 == 0) else x for i, x in enumerate(base)]  # loses a quarter of its right answers
    code, report, out = run_gate(tmp_path, {"em_math500": base}, {"em_math500": cand})
    assert code == 1 and report["status"] == "fail"
    task = report["tasks"][0]
    assert task["test"] == "exact McNemar" and task["ci_high"] < 0 and task["p_value"] < 1e-6 and task["wins"] == 0
    suite = ET.parse(out / "gate.junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None
    printed = capsys.readouterr().out
    assert "::error title=em-eval check em_math500::" in printed and "[FAIL]" in printed
    assert (out / "annotations.txt").read_text().startswith("::error")


def test_identical_runs_pass(tmp_path: Path) -> None:
    base = bernoulli(100, 0.5, seed=1)
    code, report, _ = run_gate(tmp_path, {"a": base, "b": base}, {"a": base, "b": base})
    assert code == 0 and [t["status"] for t in report["tasks"]] == ["pass", "pass"]
    assert all(t["diff"] == 0 and t["min_detectable_drop"] > 0 for t in report["tasks"])


def test_noise_level_differences_pass(tmp_path: Path) -> None:
    base = bernoulli(200, 0.55, seed=2)
    ones, zeros = [i for i, x in enumerate(base) if x], [i for i, x in enumerate(base) if not x]
    cand = list(base)
    for i in ones[:5] + zeros[:3]:  # 5 problems lost, 3 gained: sampling noise
        cand[i] = 1 - cand[i]
    code, report, _ = run_gate(tmp_path, {"t": base}, {"t": cand})
    task = report["tasks"][0]
    assert code == 0 and task["status"] == "pass" and (task["losses"], task["wins"]) == (5, 3)
    assert task["ci_low"] < task["diff"] < 0 < task["ci_high"] and task["p_value"] > 0.5


def test_n_samples_per_problem_use_the_paired_bootstrap(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.2, 0.9, 120)
    base = [[int(x) for x in rng.random(4) < q] for q in p]
    noise = [[int(x) for x in rng.random(4) < q] for q in p]
    worse = [[int(x) for x in rng.random(4) < q - 0.2] for q in p]
    code, report, _ = run_gate(tmp_path, {"aime": base}, {"aime": noise})
    assert code == 0 and report["tasks"][0]["test"] == "paired bootstrap"
    code, report, _ = run_gate(tmp_path / "2", {"aime": base}, {"aime": worse})
    assert code == 1 and report["tasks"][0]["diff"] < -0.1


def test_a_drop_within_the_margin_passes(tmp_path: Path) -> None:
    base = bernoulli(400, 0.6, seed=5)
    cand = [0 if (x and i % 12 == 0) else x for i, x in enumerate(base)]  # about -5 points, clearly significant
    assert run_gate(tmp_path / "strict", {"t": base}, {"t": cand})[0] == 1
    code, report, _ = run_gate(tmp_path / "lenient", {"t": base}, {"t": cand}, "--margin", "0.10")
    assert code == 0 and report["tasks"][0]["ci_high"] < 0


def test_suspicious_gain_is_flagged_but_passes(tmp_path: Path, capsys) -> None:
    base = bernoulli(200, 0.3, seed=6)
    cand = [1 if i % 3 else x for i, x in enumerate(base)]
    code, report, _ = run_gate(tmp_path, {"t": base}, {"t": cand})
    assert code == 0 and report["tasks"][0]["status"] == "warn"
    assert "suspiciously large gain" in report["tasks"][0]["warnings"][0]
    assert "::warning title=em-eval check t::suspiciously" in capsys.readouterr().out


def test_only_the_selected_tasks_are_gated(tmp_path: Path) -> None:
    base = bernoulli(200, 0.6, seed=7)
    broken = [0] * 200
    code, report, _ = run_gate(tmp_path, {"ok": base, "bad": base}, {"ok": base, "bad": broken}, "--tasks", "ok")
    assert code == 0 and [t["task"] for t in report["tasks"]] == ["ok"]


@pytest.mark.parametrize(
    "cand_scores,cand_kw,extra,message",
    [
        ({"t": [1, 0] * 20}, {}, (), "problem sets differ"),
        ({"t": [1, 0] * 25}, {"doc_salt": "!"}, (), "problem 0 differs"),
        ({"t": [1, 0] * 25}, {"grader": "grader-2"}, (), "graders differ in grader"),
        ({"u": [1, 0] * 25}, {}, (), "cover different tasks"),
        ({"t": [1, 0] * 25}, {}, ("--tasks", "t,zz"), "zz (not in baseline)"),
        ({"t": [[1, 0]] * 50}, {}, (), "samples per problem differ"),
    ],
)
def test_mismatched_runs_are_an_error(tmp_path: Path, capsys, cand_scores, cand_kw, extra, message) -> None:
    code, report, _ = run_gate(tmp_path, {"t": [1, 0] * 25}, cand_scores, *extra, cand_kw=cand_kw)
    err = capsys.readouterr()
    assert code == 2 and report is None
    assert message in err.err and "::error title=em-eval check::" in err.out


def test_the_grader_signature_names_a_filter_function_not_its_address() -> None:
    """lm-eval logs a task's filter function as its repr, address included; runs made by two processes compare."""

    def signature(filter_fn: str, aggregation: str) -> dict:
        config = {
            "filter_list": [{"name": "none", "filter": [{"function": "custom", "filter_fn": filter_fn}]}],
            "metric_list": [{"metric": "acc_en", "aggregation": aggregation}],
        }
        return grader_signature("t", {"configs": {"t": config}, "versions": {"t": 1.0}})

    one = signature("<function grade_responses at 0x7f3e75283ce0>", "<function mean_of_members at 0x7f3e7528>")
    other = signature("<function grade_responses at 0x7f3410f4bce0>", "<function mean_of_members at 0x7f34aa00>")
    assert one == other and one["filter_list"][0]["filter"][0]["filter_fn"] == "<function grade_responses>"
    assert signature("<function keep_all_responses at 0x7f3410f4bce0>", "<function mean_of_members at 0x1>") != one
    assert signature("<function grade_responses at 0x1>", "mean") != one


def _rewrite_sample(results_file: Path, task: str, doc_id: int, edit) -> str:
    """Apply ``edit`` to one logged sample of ``task``; returns the samples file's name."""
    samples = next(results_file.parent.glob(f"samples_{task}_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    edit(rows[doc_id])
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))  # json writes NaN as a bare NaN, as lm-eval would
    return samples.name


def test_a_non_finite_score_is_unusable_input_not_a_pass(tmp_path: Path, capsys) -> None:
    """A candidate that falls from 100% to 0% with one NaN sample must not pass (it did: exit 0)."""
    b = write_run(tmp_path / "base", {"t": [1] * 40})
    c = write_run(tmp_path / "cand", {"t": [0] * 40})
    name = _rewrite_sample(c, "t", 3, lambda row: row.update(exact_match=float("nan")))
    code = main(["check", "--baseline", str(b), "--candidate", str(c), "-o", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "g" / "gate.json").exists()
    assert f"{name}:4: doc_id 3: exact_match is nan, not a finite number" in err


def test_a_sample_without_doc_id_is_unusable_input_exit_2(tmp_path: Path, capsys) -> None:
    b = write_run(tmp_path / "base", {"t": [1, 0] * 10})
    c = write_run(tmp_path / "cand", {"t": [1, 0] * 10})
    name = _rewrite_sample(c, "t", 5, lambda row: row.pop("doc_id"))
    assert main(["check", "--baseline", str(b), "--candidate", str(c), "-o", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert f"{name}:6: the sample has no integer doc_id" in err and "Traceback" not in err


def test_folders_with_several_runs_or_none_are_an_error(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "b", {"t": [1, 0]}, stamp="2026-01-01T00-00-00.1")
    write_run(tmp_path / "b", {"t": [1, 0]}, stamp="2026-01-02T00-00-00.1")
    assert (
        main(
            ["check", "--baseline", str(tmp_path / "b"), "--candidate", str(tmp_path / "b"), "-o", str(tmp_path / "g")]
        )
        == 2
    )
    assert "holds 2 runs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "check",
                "--baseline",
                str(tmp_path / "empty"),
                "--candidate",
                str(tmp_path / "b"),
                "-o",
                str(tmp_path / "g"),
            ]
        )
        == 2
    )
    assert "--log_samples" in capsys.readouterr().err


def test_example_ci_workflow_uses_valid_gate_options() -> None:
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "em-eval-gate.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = [s.get("run", "") for s in steps]
    gate_cmd = next(r for r in runs if r.startswith("em-eval check"))
    parsed = build_parser().parse_args(shlex.split(gate_cmd)[1:])
    assert parsed.candidate == "runs/candidate" and parsed.margin == 0.01
    eval_cmd = next(r for r in runs if r.startswith("em-eval eval"))
    assert "--log_samples" in eval_cmd and "--output_path runs/candidate" in eval_cmd, "the gate needs per-sample logs"
    assert any(s.get("with", {}).get("report_paths") == "gate/gate.junit.xml" for s in steps), "JUnit report published"


def test_power_accounts_for_what_the_baseline_can_lose() -> None:
    few = [1] * 4 + [0] * 12
    assert mcnemar_exact(few, few).min_detectable_drop is None, "16 problems at 25% cannot show 6 losses' worth"
    many = [1] * 100 + [0] * 100
    assert 0 < mcnemar_exact(many, many).min_detectable_drop < 0.5
