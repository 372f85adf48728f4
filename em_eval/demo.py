"""``em-eval demo``: the whole workflow offline on the embedded SmolLM2, in a few minutes on a CPU.

1. Evaluate greedy, then plain sampling and EM-INF at the paper's temperature 0.1 and at 0.7,
   with lm-eval on em_smoke and, when the benchmark data is available offline, a slice of
   em_math500 (``--log_samples`` layout). At 0.1 sampling is nearly greedy and EM-INF keeps each
   distribution's most likely token, so their responses tend to agree; at 0.7 EM-INF's sharper
   distributions draw different tokens, so the method's effect on the samples is visible.
2. The lab views (:mod:`em_eval.demo_lab`; ``--no-sweep`` skips them): a two-step EM-FT run (LoRA)
   saving two checkpoints, the checkpoint sweep over them with several samples per problem, and
   the pass@k curves of both checkpoints from those samples.
3. Replay EM-INF token by token on a few of its responses (:mod:`em_eval.em_inf.trace`).
4. Write a leaderboard folder (Markdown, CSV, HTML with "EM-INF at work" and "Analyses" sections, PNG).
5. Gate EM-INF against sampling (t=0.1) with ``em-eval check``'s statistics.
6. Print the results table and where to look.

Seeds are fixed (lm-eval's python/numpy/torch seeds), so a rerun on the same machine gives
the same numbers, and each sampling/EM-INF pair draws from the same random stream. Seconds per
problem count generation only: each method's model is loaded and warmed up (one short
generation) before its clock starts. The gate's verdict is printed, not turned into the exit
code: on a handful of problems it is expected to find nothing significant.
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

from em_eval.demo_lab import SAMPLES

MARKER = ".em-eval-demo"
MATH_TASK = "em_math500"
MATH_FILE = "math500/test.jsonl"


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    em_mode: str
    gen_kwargs: dict[str, Any]


def _sampling(t: float) -> dict[str, Any]:
    return {"do_sample": True, "temperature": t, "top_p": 1.0}


PAPER_T, HOT_T = 0.1, 0.7
METHODS = (
    Method("greedy", "Greedy (t=0)", "off", {"do_sample": False, "temperature": 0.0}),
    Method("sampling", f"Sampling (t={PAPER_T})", "off", _sampling(PAPER_T)),
    Method("em_inf", f"EM-INF (t={PAPER_T})", "em_inf", _sampling(PAPER_T)),
    Method("sampling_hot", f"Sampling (t={HOT_T})", "off", _sampling(HOT_T)),
    Method("em_inf_hot", f"EM-INF (t={HOT_T})", "em_inf", _sampling(HOT_T)),
)
PAIRS = ((PAPER_T, "sampling", "em_inf"), (HOT_T, "sampling_hot", "em_inf_hot"))  # (t, plain, EM-INF)
TRACED_PER_TASK = 3  # EM-INF responses replayed token by token, per temperature and task
VIEWS_PER_TEMPERATURE = 2
SWEEP_PROBLEMS, SWEEP_MAX_GEN_TOKS = 8, 32  # the lab's sweep: em_smoke problems (at most --limit), token limit


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
    for sub in ("runs", "leaderboard", "gate", "lab"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by em-eval demo\n")
    return out


def evaluate(
    method: Method, tasks: list[tuple[str, int, int | None]], args: argparse.Namespace, out: Path, task_manager: Any
) -> None:
    """Run lm-eval for one method on each (task, limit, max_gen_toks); save in the --log_samples layout."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    from em_eval.backends.hf import EmInfLM

    model_args = {"pretrained": args.model, "em_mode": method.em_mode}
    lm = EmInfLM(**model_args, device="cpu", batch_size=args.batch_size)
    warm_up(lm, method)
    for task, limit, max_gen_toks in tasks:
        gen_kwargs = dict(method.gen_kwargs)
        if max_gen_toks:
            gen_kwargs["max_gen_toks"] = max_gen_toks
        tracker = EvaluationTracker(output_path=str(out / "runs" / method.key))
        results = simple_evaluate(
            model=lm,
            model_args=model_args,
            tasks=[task],
            limit=limit,
            apply_chat_template=True,
            log_samples=True,
            gen_kwargs=gen_kwargs,
            task_manager=task_manager,
            evaluation_tracker=tracker,
            verbosity="WARNING",
            random_seed=0,
            numpy_random_seed=args.seed,
            torch_random_seed=args.seed,
            fewshot_random_seed=args.seed,
        )
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for name in results["configs"]:
            tracker.save_results_samples(task_name=name, samples=samples[name])


def warm_up(lm: Any, method: Method) -> None:
    """One short generation through the method's own path, so its first timed batch does not pay
    for one-time set-up (kernel selection, allocator growth)."""
    import torch

    ids = torch.tensor([lm.tok_encode("Hello", add_special_tokens=False)], device=lm.device)
    lm._model_generate(ids, ids.shape[1] + 4, [], **dict(method.gen_kwargs))


def logged_pairs(folder: Path, task: str) -> dict[int, tuple[str, str]]:
    """``doc_id -> (prompt, first response)`` from one method's ``samples_<task>_*.jsonl``."""
    from em_eval.local_files import jsonl_rows
    from em_eval.results import ResultsError

    pairs = {}
    for path in sorted(folder.rglob(f"samples_{task}_*.jsonl")):
        for _, row in jsonl_rows(path, ResultsError, "rerun the demo"):
            args = next(iter(row["arguments"].values()))
            pairs[int(row["doc_id"])] = (args["arg_0"], row["resps"][0][0])
    return pairs


def em_inf_story(out: Path, runs: dict[str, Any], model: str) -> Any:
    """Compare each EM-INF run with plain sampling at its temperature, and replay EM-INF token
    by token on a few of its responses (the embedded model, loaded once)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from em_eval.em_inf.settings import EmSettings
    from em_eval.em_inf.trace import trace_response
    from em_eval.leaderboard.story import Story, TokenView, compare
    from em_eval.models.presets import resolve_model_args

    path = resolve_model_args({"pretrained": model})["pretrained"]
    tokenizer = AutoTokenizer.from_pretrained(path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    comparisons, views = [], []
    for t, plain_key, em_key in PAIRS:
        plain, em = runs[plain_key], runs[em_key]
        traced: dict[str, list] = {}
        candidates = []
        for task in em.tasks:
            plain_text = {p.doc_id: p.response for p in plain.tasks[task].problems}
            pairs = logged_pairs(out / "runs" / em_key, task)
            for doc_id in sorted(pairs)[:TRACED_PER_TASK]:
                steps = trace_response(lm, tokenizer, *pairs[doc_id], EmSettings(), t)
                traced.setdefault(task, []).append(steps)
                same = plain_text.get(doc_id) == pairs[doc_id][1]
                title = (
                    f"{em.label}, {task} problem {doc_id}: "
                    f"{'the same response as' if same else 'a different response from'} plain sampling at t={t}"
                )
                candidates.append((same, TokenView(title, t, tuple(steps), None if same else plain_text.get(doc_id))))
        # responses that differ from plain sampling first: they show where EM-INF changed the sample
        views += [view for _, view in sorted(candidates, key=lambda c: c[0]) if view.steps][:VIEWS_PER_TEMPERATURE]
        comparisons += compare(plain, em, t, traced)
    changed_cold = sum(c.changed for c in comparisons if c.temperature == PAPER_T)
    notes = (
        f"EM-INF lowers the entropy of every next-token distribution above its threshold (a few Adam steps on "
        f"the logits) and keeps its most likely token. At the paper's temperature {PAPER_T} sampling is already "
        f"nearly greedy, so the sharper distributions seldom draw a different token: here {changed_cold} "
        f"response(s) differ from plain sampling. Its effect shows in the entropy it removes (above).",
        f"The demo adds t={HOT_T}: sampling there reaches into each distribution's tail, and EM-INF's sharpening "
        f"changes which tokens are drawn, so responses (and possibly scores) change. The pairs share seeds, so "
        f"every difference comes from EM-INF.",
        "Seconds per problem count generation only: each method's model is loaded and warmed up (one short "
        "generation) before its clock starts. On a shared machine other load still shows; compare methods "
        "within one run.",
    )
    return Story(notes, tuple(comparisons), tuple(views))


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
    body = [
        (
            r.label,
            r.task,
            str(r.n),
            pct(r.score),
            f"{pct(r.ci_low)}–{pct(r.ci_high)}",
            num(r.tokens_per_problem, 0),
            num(r.wall_s_per_problem, 2),
            pct(r.hit_token_limit, 0),
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, body)])


def run_lab_step(args: argparse.Namespace, out: Path, step: str) -> Any:
    """Train two EM-FT checkpoints, sweep them, draw their pass@k curves (into the leaderboard folder)."""
    from em_eval.demo_lab import run_lab

    problems = min(args.limit, SWEEP_PROBLEMS)
    print(
        f"{step} training two EM-FT checkpoints (LoRA), sweeping them on {problems} em_smoke problems x {SAMPLES} "
        "samples ...",
        flush=True,
    )
    t0 = time.perf_counter()
    lab = run_lab(
        out,
        out / "leaderboard",
        args.model,
        problems,
        args.max_gen_toks or SWEEP_MAX_GEN_TOKS,
        args.batch_size,
        args.seed,
    )
    print(f"      done in {time.perf_counter() - t0:.0f} s", flush=True)
    return lab


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
    print(
        f"em-eval demo: {args.model} on {', '.join(f'{t} ({n} problems)' for t, n, _ in tasks)}; "
        f"methods: {', '.join(m.label for m in METHODS)}; output: {out}",
        flush=True,
    )

    from lm_eval.tasks import TaskManager

    from em_eval import plugin

    plugin.activate()
    task_manager = TaskManager(include_path=str(plugin.tasks_dir()))
    total = len(METHODS) + 2 + args.sweep
    for i, method in enumerate(METHODS, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{total}] evaluating {method.label} ...", flush=True)
        evaluate(method, tasks, args, out, task_manager)
        print(f"      done in {time.perf_counter() - t0:.0f} s", flush=True)
    lab = run_lab_step(args, out, f"[{len(METHODS) + 1}/{total}]") if args.sweep else None

    from em_eval.gate.compare import GateSettings, gate
    from em_eval.gate.report import report_dict, text_report, write_outputs
    from em_eval.leaderboard.write import write_leaderboard

    print(f"[{total - 1}/{total}] replaying EM-INF token by token, writing the leaderboard ...", flush=True)
    runs = {m.key: merged_run(out / "runs" / m.key, m.label) for m in METHODS}
    story = em_inf_story(out, runs, args.model)
    rows, paths = write_leaderboard(
        list(runs.values()), out / "leaderboard", title="em-eval demo: SmolLM2-135M, offline", story=story
    )
    print(f"[{total}/{total}] gating EM-INF against sampling ...", flush=True)
    settings = GateSettings()
    verdicts = gate(runs["sampling"], runs["em_inf"], settings)
    report = report_dict(runs["sampling"], runs["em_inf"], verdicts, settings)
    gate_paths = write_outputs(out / "gate", report, verdicts)

    print("\nResults (score = per-problem mean; 95% CI; tokens and seconds per problem):\n")
    print(terminal_table(rows))
    print("\nEM-INF against plain sampling (same seeds):\n")
    for c in story.comparisons:
        print(
            f"  t={c.temperature}  {c.task}: {c.changed} of {c.total} responses differ; "
            f"{100 * (c.adjusted_share or 0):.0f}% of tokens adjusted"
        )
    print(f"\nGate, {runs['em_inf'].label} (candidate) vs {runs['sampling'].label} (baseline):\n")
    print(text_report(runs["sampling"], runs["em_inf"], verdicts))
    if lab is not None:
        print(f"\nCheckpoint sweep of a two-step EM-FT run ({lab.train_command}):\n")
        print(lab.paths["markdown"].read_text().split("\n", 2)[2].strip())
    board = out / "leaderboard"
    lab_lines = (
        ""
        if lab is None
        else f"""
  {lab.paths["json"]}    the checkpoint sweep ({lab.paths["markdown"].name}; its plot and the pass@k curves in plots/)
  {board / "passk.csv"}    pass@k of both checkpoints, every k up to {SAMPLES}
  {out / "lab"}/    the EM-FT run (checkpoint-000001, -000002), the task variant, logs"""
    )
    print(f"""
Where to look:
  {paths["html"]}    the leaderboard page (sortable table, charts, EM-INF at work, Analyses, per-sample drill-down)
  {paths["markdown"]}    the same table in Markdown ({paths["csv"].name} for spreadsheets)
  {board / "plots"}/    accuracy vs generated tokens, per-task bars{", sweep, pass@k" if lab else ""}
  {gate_paths["json"]}    the gate's decision ({gate_paths["junit"].name} for CI){lab_lines}
  {out / "runs"}/    raw lm-eval results and per-sample logs, one folder per method
Finished in {time.perf_counter() - start:.0f} s.""")
    sys.stdout.flush()
    return 0
