"""``em-eval sweep`` end to end: a two-checkpoint EM-FT run of the tiny llama, each checkpoint
through lm-eval (em_smoke, in this process), the report, then the same command resumed."""

from __future__ import annotations

import json

import torch

from em_eval.cli import main
from training_runs import tiny_args


def test_sweep_two_checkpoints_then_resume(tiny_llama_dir, tmp_path, capsys) -> None:
    run, out = tmp_path / "run", tmp_path / "sweep"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, run, "max_steps=2", "save_every=1", "lr=1e-3")]) == 0
        command = [
            "sweep",
            str(run),
            "--tasks",
            "em_smoke",
            "--same-process",
            "-o",
            str(out),
            "--",
            "--limit",
            "3",
            "--device",
            "cpu",
            "--batch_size",
            "3",
            "--gen_kwargs",
            "max_gen_toks=6",
        ]
        capsys.readouterr()
        assert main(command) == 0
        first = capsys.readouterr().out
        assert "checkpoint-000001: evaluating step 1" in first and "checkpoint-000002: evaluating step 2" in first
        report = json.loads((out / "sweep.json").read_text())
        (task,) = report["tasks"]
        points = task["points"]
        assert [p["step"] for p in points] == [1, 2] and all(p["problems"] == 3 for p in points)
        assert all(p["entropy"] > 0 and 0 < p["length"] <= 6 for p in points)  # em_mode=off still measures entropy
        assert points[0]["entropy"] != points[1]["entropy"]  # lr 1e-3 moved the weights
        assert len(task["consecutive"]) == 1 and task["consecutive"][0]["n"] == 3
        assert task["entropy_law"]["n"] == 2 and report["status"] == "pass"
        assert (out / "plots" / "sweep_em_smoke.png").stat().st_size > 0, "where the leaderboard page looks"
        results = {p["results"]: (out / p["results"]).stat().st_mtime_ns for p in points}

        assert main(command) == 0  # resumed: both checkpoints are complete, nothing runs again
        assert capsys.readouterr().out.count("already evaluated") == 2
        assert {p: (out / p).stat().st_mtime_ns for p in results} == results
    finally:
        torch.set_num_threads(threads)
