"""The stock ``lm_eval`` console script finds ``--model em_inf`` and our tasks after install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from em_eval.records import response_records, sample_telemetry


def run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def results_of(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = [json.loads(line) for f in out.rglob("samples_*.jsonl") for line in f.read_text().splitlines()]
    return results, samples


def lm_eval_args(model: str, model_args: str, out: Path) -> list[str]:
    return [
        "--model",
        model,
        "--model_args",
        model_args,
        "--tasks",
        "em_smoke",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--batch_size",
        "2",
        "--gen_kwargs",
        "max_gen_toks=4",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(out),
    ]


def test_stock_lm_eval_runs_em_inf_with_our_task(tiny_llama_dir, tmp_path) -> None:
    lm_eval = shutil.which("lm_eval")
    assert lm_eval, "the lm_eval console script must be installed"
    proc = run([lm_eval, *lm_eval_args("em_inf", f"pretrained={tiny_llama_dir},em_steps=2,em_threshold=0.1", tmp_path)])
    results, samples = results_of(tmp_path)
    assert {k for k in results["results"]["em_smoke"] if "," in k} == {"exact_match,none", "exact_match_stderr,none"}
    assert "|grading" not in proc.stdout and "|exact_match" in proc.stdout, "only the metric, in results and table"
    assert [len(response_records(s)) for s in samples] == [1, 1], "each response's record: its filtered response"
    assert results["config"]["em_settings"]["em_steps"] == 2
    assert results["config"]["em_settings"]["em_threshold"] == 0.1
    assert len(samples) == 2
    telemetry = sample_telemetry(samples[0])  # read back from lm-eval's on-disk JSONL form
    assert len(telemetry) == 1
    assert telemetry[0]["em_mode"] == "em_inf" and telemetry[0]["gen_tokens"] <= 4


def test_builtin_hf_backend_still_works(tiny_llama_dir, tmp_path) -> None:
    run([shutil.which("lm_eval"), *lm_eval_args("hf", f"pretrained={tiny_llama_dir}", tmp_path)])
    results, _ = results_of(tmp_path)
    assert "em_smoke" in results["results"] and "em_settings" not in results["config"]


@pytest.mark.parametrize("launcher", ["console", "module"])
def test_explicit_em_eval_eval_without_startup_hook(tiny_llama_dir, tmp_path, launcher: str) -> None:
    cmd = [shutil.which("em-eval")] if launcher == "console" else [sys.executable, "-m", "em_eval"]
    run([*cmd, "eval", *lm_eval_args("em_inf", f"pretrained={tiny_llama_dir}", tmp_path)], EM_EVAL_DISABLE_HOOK="1")
    results, _ = results_of(tmp_path)
    assert results["config"]["em_settings"]["em_mode"] == "em_inf"


def test_startup_hook_is_installed_cheap_and_idempotent() -> None:
    pth = Path(sysconfig.get_paths()["purelib"]) / "em_eval_startup.pth"
    assert pth.is_file(), "pip install must put em_eval_startup.pth in site-packages"
    state = (
        "print(sorted(m for m in ('torch', 'lm_eval', 'transformers') if m in sys.modules), "
        "'em_eval' in sys.modules, sum(type(f).__name__ == '_AfterImport' for f in sys.meta_path), "
        "sys.excepthook is sys.__excepthook__)"
    )
    plain = run([sys.executable, "-c", "import sys; " + state]).stdout.split()
    assert plain == ["[]", "False", "0", "True"], "outside lm-eval the .pth must import nothing heavy, leave nothing"
    line = pth.read_text()
    as_lm_eval = f"import sys; sys.argv[0] = 'lm_eval'; exec({line!r}); exec({line!r}); " + state
    assert run([sys.executable, "-c", as_lm_eval]).stdout.split() == ["[]", "True", "1", "False"]
    off = run([sys.executable, "-c", as_lm_eval], EM_EVAL_DISABLE_HOOK="1").stdout.split()
    assert off == ["[]", "False", "0", "True"], "EM_EVAL_DISABLE_HOOK=1 turns the hook off"
    explicit = run([sys.executable, "-c", "import sys, em_eval, em_eval.plugin; " + state]).stdout.split()
    assert explicit == ["[]", "True", "0", "True"], "import em_eval (or em_eval.plugin) changes nothing, imports little"


@pytest.mark.parametrize("way", ["activate", "include_path"])
def test_python_api_after_the_documented_call(tiny_llama_dir, tmp_path, way: str) -> None:
    setup, manager = {
        "activate": ("import em_eval.plugin, lm_eval\nem_eval.plugin.activate(task_path=True)\n", "None"),
        "include_path": (
            "import lm_eval, lm_eval.models, em_eval.plugin\nem_eval.plugin.register_models()\n"
            "from lm_eval.tasks import TaskManager\n",
            "TaskManager(include_path=str(em_eval.plugin.tasks_dir()))",
        ),
    }[way]
    code = (
        setup + "out = lm_eval.simple_evaluate(model='em_inf', model_args={'pretrained': %r}, tasks=['em_smoke'],\n"
        "                              limit=2, apply_chat_template=True, gen_kwargs='max_gen_toks=4',\n"
        "                              device='cpu',\n"
        "                              task_manager=%s)\n"
        "print('SCORE', out['results']['em_smoke']['exact_match,none'], out['config']['em_settings']['em_mode'])\n"
        % (str(tiny_llama_dir), manager)
    )
    proc = run([sys.executable, "-c", code], EM_EVAL_DISABLE_HOOK="1")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SCORE"))
    assert line.split()[2] == "em_inf" and 0.0 <= float(line.split()[1]) <= 1.0


@pytest.mark.parametrize(
    ("model_args", "says"),
    [
        ("pretrained={tiny},em_treshold=0.3", "unknown EM argument 'em_treshold' (did you mean 'em_threshold'?)"),
        ("pretrained={tiny},dtpye=float32", "unknown model argument 'dtpye' (did you mean 'dtype'?)"),
        ("pretrained=no_runs_here/em_nope", "pretrained=no_runs_here/em_nope: there is no such file or folder here"),
    ],
)
def test_a_user_mistake_under_lm_eval_is_one_short_error(tiny_llama_dir, tmp_path, model_args: str, says: str) -> None:
    cmd = [shutil.which("lm_eval"), *lm_eval_args("em_inf", model_args.format(tiny=tiny_llama_dir), tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 1
    assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.rstrip().endswith("(the full traceback: EM_EVAL_TRACEBACK=1)")
    if "em_treshold" in model_args:  # once is enough: the variable restores the traceback
        full = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "EM_EVAL_TRACEBACK": "1"},
        )
        assert full.returncode == 1 and "Traceback" in full.stderr and says.split(" (")[0] in full.stderr


def test_bare_hook_registers_and_adds_the_task_path_and_nothing_else() -> None:
    """In the bare CLI the hook registers our models, adds our task folder and guards the stock backends;
    lm-eval's task index, results table, log records and git probe stay as lm-eval has them."""
    line = (Path(sysconfig.get_paths()["purelib"]) / "em_eval_startup.pth").read_text()
    probe = (
        "import logging, sys; sys.argv[0] = 'lm_eval'; exec(%r)\n"
        "import lm_eval.models, lm_eval.tasks.manager, lm_eval.utils, lm_eval.loggers.utils, lm_eval.evaluator\n"
        "from lm_eval.api.registry import model_registry\n"
        "from lm_eval.models.huggingface import HFLM\n"
        "from lm_eval.tasks._index import TaskIndex\n"
        "print('em_inf' in model_registry, hasattr(lm_eval.tasks.manager.TaskManager.__init__, '_em_eval_task_path'),"
        " hasattr(HFLM.generate_until, '_em_eval_multistep_guard'),"
        " 'em_eval' in TaskIndex.build.__module__, 'em_eval' in lm_eval.utils.make_table.__module__,"
        " 'em_eval' in lm_eval.loggers.utils.get_git_commit_hash.__module__,"
        " any(logging.getLogger(n).filters for n in ('lm_eval.api.task', 'lm_eval.evaluator')))" % line
    )
    assert run([sys.executable, "-c", probe]).stdout.split()[-7:] == ["True"] * 3 + ["False"] * 4
