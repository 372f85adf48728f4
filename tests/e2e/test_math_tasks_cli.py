"""``em-eval eval`` (lm-eval's CLI with the task-index cache and quiet logs) runs two em_math tasks end to end
on the embedded model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from em_eval.data import FILES
from em_eval.records import response_records
from em_eval.tasks.math.task import (
    BENCHMARKS,
    SYSTEM_PROMPT,
    sample_status,
)


def test_em_eval_eval_runs_two_math_tasks_on_the_embedded_model(tmp_path: Path, data_dir: Path) -> None:
    em_eval = shutil.which("em-eval")
    assert em_eval, "the em-eval console script must be installed"
    cmd = [
        em_eval,
        "eval",
        "--model",
        "em_inf",
        "--model_args",
        "pretrained=smollm2-135m,em_mode=off",
        "--tasks",
        "em_math500,em_aime24",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--batch_size",
        "4",
        "--gen_kwargs",
        "max_gen_toks=16,do_sample=false",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(tmp_path),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EM_EVAL_DATA_DIR": str(data_dir)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)  # not a git checkout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(next(tmp_path.rglob("results_*.json")).read_text())
    table = proc.stdout[proc.stdout.index("|Version|") :]
    shown = {cells[5].strip() for line in table.splitlines()[2:] if len(cells := line.split("|")) > 5}
    assert shown == {"exact_match", "math_verify", "no_answer", "unfinished", "graders_disagree"}, (
        "the table shows the metrics and no bookkeeping (n, grading)"
    )
    assert "Custom kwargs" not in proc.stderr and "Ensure 'do_sample=True'" not in proc.stderr
    assert "generation flags are not valid" not in proc.stderr, "greedy runs drop the task's sampling knobs"
    assert "not a git repository" not in proc.stderr, "lm-eval's git probe stays quiet outside a checkout"
    for task in ("em_math500", "em_aime24"):
        res = results["results"][task]
        assert {"exact_match,none", "math_verify,none", "no_answer,none", "graders_disagree,none"} <= set(res)
        metrics = {k.partition(",")[0].removesuffix("_stderr") for k in res if "," in k}
        assert metrics == {"exact_match", "math_verify", "no_answer", "unfinished", "graders_disagree"}, (
            "results.json holds only numeric metrics: no n, no grading"
        )
        assert all(isinstance(v, (int, float)) for k, v in res.items() if "," in k and "_stderr," not in k)
        assert results["n-samples"][task]["effective"] == 2
        assert BENCHMARKS[results["configs"][task]["dataset_kwargs"]["benchmark"]].file in FILES  # pinned, one home
    rows = [
        json.loads(line) for f in tmp_path.rglob("samples_em_aime24_*.jsonl") for line in f.read_text().splitlines()
    ]
    assert len(rows) == 2 and not {"n", "grading"} & {k for r in rows for k in r}
    assert all(len(response_records(r)) == 1 and r["filtered_resps"][0][0].startswith('{"answer"') for r in rows)
    prompt = next(iter(rows[0]["arguments"].values()))["arg_0"]
    assert prompt.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
    assert rows[0]["doc"]["problem"] in prompt
    status = sample_status(rows[0])
    assert len(status) == 1 and status[0]["hit_token_limit"] in (True, False)
    assert set(status[0]) >= {"answer", "exact_match", "math_verify", "disagree", "no_answer", "unfinished"}
