"""``em-eval demo``: the whole workflow offline on the embedded SmolLM2, in a few minutes on a CPU.

1. Evaluate greedy, sampling (t=0.1) and EM-INF (t=0.1) with lm-eval on em_smoke and, when the
   benchmark data is available offline, a slice of em_math500 (``--log_samples`` layout).
2. Write a leaderboard folder (Markdown, CSV, HTML, PNG).
3. Gate EM-INF against sampling with ``em-eval check``'s statistics.
4. Print the results table and where to look.

Seeds are fixed (lm-eval's python/numpy/torch seeds), so a rerun on the same machine gives
the same numbers. The gate's verdict is printed, not turned into the exit code: on a handful
of problems it is expected to find nothing significant.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

MARKER = ".em-eval-demo"
MATH_TASK = "em_math500"
MATH_FILE = "math500/test.jsonl"


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    em_mode: str
    gen_kwargs: dict[str, Any]


METHODS = (
    Method("greedy", "Greedy (t=0)", "off", {"do_sample": False, "temperature": 0.0}),
    Method("sampling", "Sampling (t=0.1)", "off", {"do_sample": True, "temperature": 0.1, "top_p": 1.0}),
    Method("em_inf", "EM-INF", "em_inf", {"do_sample": True, "temperature": 0.1, "top_p": 1.0}),
)


def math_data_status() -> tuple[bool, str]:
    """Whether the math slice can run offline, and why not."""
    from em_eval.asset_paths import asset_dir
    from em_eval.data import ENV_VAR, FILES, DataFileError, data_file
    from em_eval.local_files import cache_root

    if not any(asset_dir("tasks").rglob(f"{MATH_TASK}.yaml")):
        return False, f"task {MATH_TASK} is not installed"
    if not os.environ.get(ENV_VAR) and not (cache_root() / "data" / FILES[MATH_FILE].path).is_file():
        return False, f"{ENV_VAR} is not set and {MATH_FILE} is not cached (point {ENV_VAR} at the data mirror)"
    try:
        data_file(MATH_FILE)
    except DataFileError as exc:
        return False, str(exc)
    return True, f"{MATH_FILE} found"


def prepare_output(out: Path) -> Path:
    """Create ``out`` (or reuse one made by an earlier demo, replacing its results)."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SystemExit(f"em-eval demo: {out} exists and was not made by the demo; pass another --output")
    for sub in ("runs", "leaderboard", "gate"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by em-eval demo\n")
    return out


def evaluate(method: Method, tasks: list[tuple[str, int, int | None]], args: argparse.Namespace, out: Path,
             task_manager: Any) -> None:
    """Run lm-eval for one method on each (task, limit, max_gen_toks); save in the --log_samples layout."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    from em_eval.backends.hf import EmInfLM

    model_args = {"pretrained": args.model, "em_mode": method.em_mode}
    lm = EmInfLM(**model_args, device="cpu", batch_size=args.batch_size)
    for task, limit, max_gen_toks in tasks:
        gen_kwargs = dict(method.gen_kwargs)
        if max_gen_toks:
            gen_kwargs["max_gen_toks"] = max_gen_toks
        tracker = EvaluationTracker(output_path=str(out / "runs" / method.key))
        results = simple_evaluate(
            model=lm, model_args=model_args, tasks=[task], limit=limit, apply_chat_template=True, log_samples=True,
            gen_kwargs=gen_kwargs, task_manager=task_manager, evaluation_tracker=tracker, verbosity="WARNING",
            random_seed=0, numpy_random_seed=args.seed, torch_random_seed=args.seed, fewshot_random_seed=args.seed,
        )
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for name in results["configs"]:
            tracker.save_results_samples(task_name=name, samples=samples[name])


def merged_run(folder: Path, label: str):
    """All results files of one method (one per task) as a single run."""
    from em_eval.results import load_runs

    runs = load_runs([str(folder)])
    tasks = {name: task for run in runs for name, task in run.tasks.items()}
    return replace(runs[0], label=label, tasks=tasks)


def terminal_table(rows) -> str:
    """A compact results table for the terminal."""
    from em_eval.leaderboard.table import num, pct

    head = ("method", "task", "n", "score %", "95% CI", "tokens/problem", "s/problem", "hit limit %")
    body = [(r.label, r.task, str(r.n), pct(r.score), f"{pct(r.ci_low)}–{pct(r.ci_high)}", num(r.tokens_per_problem, 0),
             num(r.wall_s_per_problem, 2), pct(r.hit_token_limit, 0)) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, body)])


def run_demo(args: argparse.Namespace) -> int:
    """The whole demo with ``em-eval demo``'s arguments; returns the exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = prepare_output(args.output)
    tasks: list[tuple[str, int, int | None]] = [("em_smoke", args.limit, args.max_gen_toks)]
    if args.math_limit > 0:
        ready, why = math_data_status()
        if ready:
            tasks.append((MATH_TASK, args.math_limit, args.max_gen_toks or args.math_max_gen_toks))
        else:
            print(f"note: skipping {MATH_TASK}: {why}. The demo continues on em_smoke only.")
    print(f"em-eval demo: {args.model} on {', '.join(f'{t} ({n} problems)' for t, n, _ in tasks)}; "
          f"methods: {', '.join(m.label for m in METHODS)}; output: {out}", flush=True)

    from lm_eval.tasks import TaskManager

    from em_eval import plugin

    plugin.activate()
    task_manager = TaskManager()
    for i, method in enumerate(METHODS, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(METHODS) + 2}] evaluating {method.label} ...", flush=True)
        evaluate(method, tasks, args, out, task_manager)
        print(f"      done in {time.perf_counter() - t0:.0f} s", flush=True)

    from em_eval.gate.compare import GateSettings, gate
    from em_eval.gate.report import report_dict, text_report, write_outputs
    from em_eval.leaderboard.write import write_leaderboard

    print(f"[{len(METHODS) + 1}/{len(METHODS) + 2}] writing the leaderboard ...", flush=True)
    runs = {m.key: merged_run(out / "runs" / m.key, m.label) for m in METHODS}
    rows, paths = write_leaderboard(list(runs.values()), out / "leaderboard", title="em-eval demo: SmolLM2-135M, offline")
    print(f"[{len(METHODS) + 2}/{len(METHODS) + 2}] gating EM-INF against sampling ...", flush=True)
    settings = GateSettings()
    verdicts = gate(runs["sampling"], runs["em_inf"], settings)
    report = report_dict(runs["sampling"], runs["em_inf"], verdicts, settings)
    gate_paths = write_outputs(out / "gate", report, verdicts)

    print("\nResults (score = per-problem mean; 95% CI; tokens and seconds per problem):\n")
    print(terminal_table(rows))
    print("\nGate, EM-INF (candidate) vs sampling (baseline):\n")
    print(text_report(runs["sampling"], runs["em_inf"], verdicts))
    print(f"""
Where to look:
  {paths['html']}    the leaderboard page (sortable table, charts, per-sample drill-down)
  {paths['markdown']}    the same table in Markdown ({paths['csv'].name} for spreadsheets)
  {out / 'leaderboard' / 'plots'}/    accuracy vs generated tokens, per-task bars
  {gate_paths['json']}    the gate's decision ({gate_paths['junit'].name} for CI)
  {out / 'runs'}/    raw lm-eval results and per-sample logs, one folder per method
Finished in {time.perf_counter() - start:.0f} s.""")
    sys.stdout.flush()
    return 0
