"""``em-eval demo``: a reduced end-to-end run on the embedded SmolLM2 (real lm-eval, real model)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from em_eval.demo import MARKER, math_data_status, prepare_output
from em_eval.demo_lab import SAMPLES
from em_eval.records import response_records


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, smollm2_dir, data_dir) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {**os.environ, "EM_EVAL_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "em_eval",
            "demo",
            "-o",
            str(out),
            "--limit",
            "2",
            "--math-limit",
            "1",
            "--max-gen-toks",
            "16",
            "--batch-size",
            "4",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


LABELS = ("Greedy (t=0)", "Sampling (t=0.1)", "EM-INF (t=0.1)", "Sampling (t=0.7)", "EM-INF (t=0.7)")


def test_demo_evaluates_five_methods_and_prints_a_table(demo_run) -> None:
    out, stdout = demo_run
    table = stdout[stdout.index("Results") : stdout.index("EM-INF against plain sampling")]
    for method in LABELS:
        assert table.count(method) == 2, f"{method}: one row per task"
    assert "em_smoke" in table and "em_math500" in table
    against = stdout[stdout.index("EM-INF against plain sampling") : stdout.index("Gate,")]
    assert re.search(r"t=0\.1  em_smoke: \d of 2 responses differ; \d+% of tokens adjusted", against)
    assert re.search(r"t=0\.7  em_math500: \d of 1 responses differ", against)
    assert "Gate, EM-INF (t=0.1) (candidate) vs Sampling (t=0.1) (baseline)" in stdout
    assert "RESULT: no significant regression" in stdout or "RESULT: regression" in stdout
    assert "Where to look:" in stdout and str(out / "leaderboard" / "index.html") in stdout
    assert "Checkpoint sweep of a two-step EM-FT run (em-eval train em_ft " in stdout
    assert re.search(r"\| 2 \| checkpoint-000002 \| [\d.]+ \| [\d.]+ \|", stdout), "the sweep's table, printed"


def test_demo_writes_runs_leaderboard_and_gate(demo_run) -> None:
    out, _ = demo_run
    for method, mode, sampling in (
        ("greedy", "off", False),
        ("sampling", "off", True),
        ("em_inf", "em_inf", True),
        ("sampling_hot", "off", True),
        ("em_inf_hot", "em_inf", True),
    ):
        rows = [
            json.loads(line) for f in (out / "runs" / method).rglob("samples_em_smoke_*.jsonl") for line in f.open()
        ]
        assert len(rows) == 2
        kwargs = rows[0]["arguments"]["gen_args_0"]["arg_1"]
        assert kwargs["do_sample"] is sampling and kwargs["max_gen_toks"] == 16
        assert all(
            t["em_mode"] == mode and t["gen_tokens"] <= 16
            for r in rows
            for t in r["arguments"]["gen_args_0"]["arg_1"]["em_telemetry"]
        )
    board = out / "leaderboard"
    assert (board / "index.html").stat().st_size > 5000 and (board / "plots" / "accuracy_vs_tokens.png").exists()
    csv_lines = (board / "leaderboard.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 5 * 2
    gate = json.loads((out / "gate" / "gate.json").read_text())
    assert gate["baseline"]["label"] == "Sampling (t=0.1)" and gate["candidate"]["label"] == "EM-INF (t=0.1)"
    assert {t["task"] for t in gate["tasks"]} == {"em_smoke", "em_math500"}
    assert (out / "gate" / "gate.junit.xml").exists()


def test_demo_sweeps_two_em_ft_checkpoints_and_draws_pass_at_k(demo_run) -> None:
    out, _ = demo_run
    board = out / "leaderboard"
    assert sorted(p.name for p in (out / "lab" / "em_ft").glob("checkpoint-*")) == [
        "checkpoint-000001",
        "checkpoint-000002",
    ]
    report = json.loads((board / "sweep.json").read_text())
    (task,) = report["tasks"]
    assert task["task"] == f"em_smoke_n{SAMPLES}" and [p["step"] for p in task["points"]] == [1, 2]
    for point in task["points"]:
        assert point["problems"] == 2 and 0 <= point["accuracy"] <= 1 and point["entropy"] > 0
        assert 0 < point["length"] <= 16, "the quick run's --max-gen-toks reaches the sweep"
        samples = next(Path(point["results"]).parent.glob("samples_*.jsonl"))
        rows = [json.loads(line) for line in samples.open()]
        assert all(len(response_records(r)) == SAMPLES for r in rows), "every sample graded"
        assert not any("grading" in r for r in rows), "the records are the filtered responses, not a metric"
    assert task["points"][0]["entropy"] != task["points"][1]["entropy"], "the second step moved the model"
    passk = list(csv.DictReader((board / "passk.csv").open()))
    assert {(r["run"], int(r["k"])) for r in passk} == {
        (f"EM-FT step {s}", k) for s in (1, 2) for k in range(1, SAMPLES + 1)
    }
    for run in ("EM-FT step 1", "EM-FT step 2"):
        curve = [float(r["pass_at_k"]) for r in passk if r["run"] == run]
        assert curve == sorted(curve) and 0 <= curve[0] <= curve[-1] <= 1, "pass@k rises with k"
    for point in task["points"]:
        (k1,) = [r for r in passk if r["run"] == f"EM-FT step {point['step']}" and r["k"] == "1"]
        assert float(k1["pass_at_k"]) == pytest.approx(point["accuracy"]), "pass@1 is the sweep's avg@n"
    html = (board / "index.html").read_text()
    section = html[html.index('id="analyses"') :]
    for name in (f"sweep_em_smoke_n{SAMPLES}", f"passk_em_smoke_n{SAMPLES}"):
        assert f'id="analysis-{name}"' in section and (board / "plots" / f"{name}.png").stat().st_size > 10_000


def test_demo_output_folder_is_reused_only_if_the_demo_made_it(tmp_path: Path) -> None:
    mine = prepare_output(tmp_path / "demo")
    (mine / "runs" / "old").mkdir(parents=True)
    (mine / "lab" / "em_ft").mkdir(parents=True)
    prepare_output(mine)
    assert (mine / MARKER).exists() and not (mine / "runs").exists(), "a rerun replaces the old results"
    assert not (mine / "lab").exists(), "and the old training run (its checkpoints would be swept again)"
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


def test_the_page_shows_what_em_inf_did(demo_run) -> None:
    out, _ = demo_run
    rows = {r["label"] + "|" + r["task"]: r for r in csv.DictReader((out / "leaderboard" / "leaderboard.csv").open())}
    for t in ("0.1", "0.7"):
        em, plain = rows[f"EM-INF (t={t})|em_smoke"], rows[f"Sampling (t={t})|em_smoke"]
        assert float(em["entropy_after"]) < float(em["entropy_before"]) and 0 < float(em["adjusted_share"]) <= 1
        assert float(plain["entropy_after"]) == float(plain["entropy_before"])
    html = (out / "leaderboard" / "index.html").read_text()
    section = html[html.index('id="em-inf-at-work"') : html.index('id="paper"')]
    assert section.count('class="token-view"') == 4 and section.count('class="tok') >= 4 * 2
    assert "temperature 0.1" in section and "t=0.7" in section and "warmed up" in section
    assert html.count('class="trace"') == 4
    from em_eval.demo import merged_run

    smoke = merged_run(out / "runs" / "greedy", "greedy").tasks["em_smoke"].problems
    assert all(p.answer is None or p.answer.lstrip("-").isdigit() for p in smoke)
    assert any(p.answer is not None for p in smoke), "the drill-down shows the number em_smoke read"


def _pixels_near(image, rgb, tol: int = 12) -> int:
    import numpy as np

    return int((np.abs(image[..., :3].astype(int) - np.array(rgb)).max(-1) <= tol).sum())


def test_the_demo_page_looks_right_in_chromium(demo_run, tmp_path) -> None:
    """Looked at, not only parsed: a real browser's screenshot of the page and of its charts."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    from headless_browser import open_page

    out, _ = demo_run
    with open_page(out / "leaderboard" / "index.html") as (page, errors):
        widths = page.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 1 + 2 + 4 + 2 and min(widths) > 200, (
            "scatter, two bar charts, four token traces, the sweep and the pass@k curves decode"
        )
        view = page.locator(".token-view").first
        view.scroll_into_view_if_needed()
        view.screenshot(path=str(tmp_path / "view.png"))
        scatter = page.locator("img[alt='accuracy vs generated tokens']")
        scatter.screenshot(path=str(tmp_path / "scatter.png"))
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert not errors, errors
    shot = np.asarray(Image.open(tmp_path / "view.png").convert("RGB"))
    reds = np.sum((shot[..., 0] > shot[..., 2] + 40) & (shot[..., 1] < 230))
    blues = np.sum((shot[..., 2] > shot[..., 0] + 40) & (shot[..., 2] > 150))
    assert reds > 500 and blues > 500, "tokens are shaded by entropy (red) and by entropy removed (blue)"
    plot = np.asarray(Image.open(tmp_path / "scatter.png").convert("RGB"))
    plot = plot[:, : int(plot.shape[1] * (1 - 1.8 / (4.2 * 2 + 1.8)))]  # the panels only: the legend has every colour
    tab10 = colormaps["tab10"]
    for i, label in enumerate(LABELS):
        rgb = [round(255 * c) for c in tab10(i)[:3]]
        assert _pixels_near(plot, rgb) > 40, f"the point of {label} is visible in the scatter (not hidden by another)"
