"""``em-eval demo``: a reduced end-to-end run on the embedded SmolLM2 (real lm-eval, real model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from em_eval.demo import MARKER, math_data_status, prepare_output


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, smollm2_dir, data_dir) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {**os.environ, "EM_EVAL_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "em_eval", "demo", "-o", str(out), "--limit", "2", "--math-limit", "1",
         "--max-gen-toks", "16", "--batch-size", "4", "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_demo_evaluates_three_methods_and_prints_a_table(demo_run) -> None:
    out, stdout = demo_run
    table = stdout[stdout.index("Results"):stdout.index("Gate,")]
    for method in ("Greedy (t=0)", "Sampling (t=0.1)", "EM-INF"):
        assert f"{method}" in table and table.count(method) == 2, "one row per task"
    assert "em_smoke" in table and "em_math500" in table
    assert "RESULT: no significant regression" in stdout or "RESULT: regression" in stdout
    assert "Where to look:" in stdout and str(out / "leaderboard" / "index.html") in stdout


def test_demo_writes_runs_leaderboard_and_gate(demo_run) -> None:
    out, _ = demo_run
    for method, mode, sampling in (("greedy", "off", False), ("sampling", "off", True), ("em_inf", "em_inf", True)):
        rows = [json.loads(line) for f in (out / "runs" / method).rglob("samples_em_smoke_*.jsonl") for line in f.open()]
        assert len(rows) == 2
        kwargs = rows[0]["arguments"]["gen_args_0"]["arg_1"]
        assert kwargs["do_sample"] is sampling and kwargs["max_gen_toks"] == 16
        assert all(t["em_mode"] == mode and t["gen_tokens"] <= 16 for r in rows for t in r["arguments"]["gen_args_0"]["arg_1"]["em_telemetry"])
    board = out / "leaderboard"
    assert (board / "index.html").stat().st_size > 5000 and (board / "plots" / "accuracy_vs_tokens.png").exists()
    csv_lines = (board / "leaderboard.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 3 * 2
    gate = json.loads((out / "gate" / "gate.json").read_text())
    assert gate["baseline"]["label"] == "Sampling (t=0.1)" and gate["candidate"]["label"] == "EM-INF"
    assert {t["task"] for t in gate["tasks"]} == {"em_smoke", "em_math500"}
    assert (out / "gate" / "gate.junit.xml").exists()


def test_demo_output_folder_is_reused_only_if_the_demo_made_it(tmp_path: Path) -> None:
    mine = prepare_output(tmp_path / "demo")
    (mine / "runs" / "old").mkdir(parents=True)
    prepare_output(mine)
    assert (mine / MARKER).exists() and not (mine / "runs").exists(), "a rerun replaces the old results"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(SystemExit, match="was not made by the demo"):
        prepare_output(foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_math_slice_is_skipped_with_a_reason_when_data_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EM_EVAL_DATA_DIR", str(tmp_path))
    ready, why = math_data_status()
    assert not ready and "math500/test.jsonl" in why and "missing" in why


def test_math_slice_runs_with_the_mirror(data_dir: Path) -> None:
    assert math_data_status() == (True, "math500/test.jsonl found")
