"""The stock ``lm_eval`` CLI runs SciCode's real multi-step protocol through ``--model em_inf``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import lm_eval
import pytest
from lm_eval.api.instance import Instance

from em_eval.asset_paths import asset_dir
from em_eval.tasks.scicode.task import doc_to_text, load_dataset

OUR_TASKS = {
    "em_scicode",
    "em_scicode_no_background",
    "em_scicode_dev",
    "em_scicode_dev_no_background",
    "scicode",
    "em_scicode_raw_prompt",
    "em_leetcode",
    "leetcode",
    "em_leetcodedataset",
}
DEV_SAMPLES = {"em_scicode_dev": [6, 8]}  # problems 19 (2 steps) and 29 (3 steps): fast gold targets


def _lm_eval(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lm_eval")
    assert exe, "the lm_eval console script is not installed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_lm_eval_runs_every_step_of_each_problem(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    proc = _lm_eval(
        "--model",
        "em_inf",
        "--model_args",
        f"pretrained={tiny_llama_dir},em_mode=off,max_length=4096",
        "--tasks",
        "em_scicode_dev",
        "--samples",
        json.dumps(DEV_SAMPLES),
        "--gen_kwargs",
        "max_gen_toks=4",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = [json.loads(line) for f in out.rglob("samples_em_scicode_dev_*.jsonl") for line in f.open()]
    by_problem = {s["doc"]["problem_id"]: s for s in samples}
    assert set(by_problem) == {"19", "29"}
    for pid, n_steps in (("19", 2), ("29", 3)):
        sample = by_problem[pid]
        record = json.loads(sample["resps"][0][0])
        assert record["em_multistep"] == "scicode" and record["protocol"] == "scicode-multistep"
        assert [s["source"] for s in record["steps"]] == ["model"] * n_steps
        assert all(isinstance(s["output"], str) for s in record["steps"])
        args = sample["arguments"]["gen_args_0"]
        assert "<|im_start|>system\nYou are a helpful assistant." in args["arg_0"]
        rounds = [t["step_round"] for t in args["arg_1"]["em_telemetry"]]
        assert rounds == list(range(1, n_steps + 1))  # one generation per step, in order
        assert sample["subproblem_accuracy"] == [0, n_steps] and sample["generated_steps"] == n_steps
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    task = results["results"]["em_scicode_dev"]
    assert task["generated_steps,sandbox"] == 2.5 and task["main_problem_accuracy,sandbox"] == 0.0
    config = results["configs"]["em_scicode_dev"]
    assert config["generation_kwargs"]["em_multistep"] == "scicode"
    assert config["metadata"]["protocol"] == "scicode-multistep" and config["metadata"]["split"] == "dev"


def test_plain_names_resolve_and_the_test_split_checks_its_h5_at_once(monkeypatch):
    from lm_eval.tasks import TaskManager

    from em_eval.data import DataFileError

    monkeypatch.delenv("EM_EVAL_SCICODE_H5", raising=False)
    manager = TaskManager(include_path=str(asset_dir("tasks")), include_defaults=False)
    assert OUR_TASKS <= set(manager.all_tasks)
    with pytest.raises(DataFileError, match="SciCode's test split needs its numeric targets"):
        manager.load(["scicode"])
    leetcode = manager.load(["leetcode"])["tasks"]["leetcode"]
    assert leetcode.config.process_results is not None and len(leetcode.dataset["test"]) == 180


def test_stock_hf_backend_refuses_the_protocol_with_our_error(tiny_llama_dir, tmp_path):
    proc = _lm_eval(
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_llama_dir}",
        "--tasks",
        "em_scicode_dev",
        "--samples",
        json.dumps({"em_scicode_dev": [6]}),
        "--gen_kwargs",
        "max_gen_toks=2",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "lm_eval: error: task em_scicode_dev runs a multi-step protocol" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, "a user error is one line, not lm-eval's chain of frames"
    assert "--model em_inf" in proc.stderr and "model_kwargs" not in proc.stderr


def _request(gen_kwargs: dict) -> Instance:
    doc = dict(load_dataset(split="dev")["test"][6])
    return Instance("generate_until", doc, (doc_to_text(doc), gen_kwargs), 0, metadata=("em_scicode_dev", 0, 1))


def test_guard_refuses_only_multistep_requests_on_backends_without_the_protocol():
    from em_eval.decoding.multistep import MultiStepError
    from em_eval.plugin import guard_multistep

    class Plain:
        def generate_until(self, requests, disable_tqdm=False):
            return ["plain"] * len(requests)

    class Ours(Plain):  # as em-eval's backends: its own generate_until, which runs the protocol
        def generate_until(self, requests, disable_tqdm=False):
            return ["plain"] * len(requests)

    guard_multistep(Plain)
    guarded = Plain.generate_until
    guard_multistep(Plain)
    assert Plain.generate_until is guarded  # idempotent
    multistep, plain = _request({"em_multistep": "scicode", "until": []}), _request({"until": []})
    assert Plain().generate_until([plain]) == ["plain"]
    with pytest.raises(MultiStepError, match="lm-eval's Plain backend cannot run.*--model em_inf"):
        Plain().generate_until([plain, multistep])
    assert Ours().generate_until([multistep]) == ["plain"]


def test_our_task_names_are_ours_alone():
    builtin = Path(lm_eval.__file__).parent / "tasks"
    names = {
        m.group(1).strip("'\"")
        for f in builtin.rglob("*.yaml")
        for m in re.finditer(r"^task:\s*(\S+)\s*$", f.read_text(errors="replace"), re.MULTILINE)
    }
    assert len(names) > 1000 and not names & OUR_TASKS
    ours = {
        m.group(1)
        for kind in ("scicode", "leetcode")
        for f in (asset_dir("tasks") / kind).glob("*.yaml")
        for m in re.finditer(r"^task:\s*(\S+)\s*$", f.read_text(), re.MULTILINE)
    }
    assert ours == OUR_TASKS
