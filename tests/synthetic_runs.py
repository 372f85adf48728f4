"""Synthetic lm-eval output folders for the gate and leaderboard tests (same layout and fields as
``lm_eval --output_path OUT --log_samples``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from em_eval.records import graded_responses

STAMP = "2026-01-01T00-00-00.000000"


def bernoulli(n: int, p: float, seed: int) -> list[int]:
    """n independent 0/1 outcomes with success probability p."""
    return [int(x) for x in np.random.default_rng(seed).random(n) < p]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_run(
    out: Path,
    scores: dict[str, Sequence[Any]],
    *,
    model: str = "tiny-model",
    em_mode: str = "off",
    sampling: bool = True,
    grader: str = "grader-1",
    stamp: str = STAMP,
    doc_salt: str = "",
    max_gen_toks: int = 64,
    tokens: int | Sequence[int] = 20,
    math_flags: bool = True,
    decode: dict[str, Any] | None = None,
    entropy: tuple[float, float, float] | None = None,
    metric: str = "exact_match",
    extra: dict[str, Sequence[Any]] | None = None,
    records: Sequence[list[dict[str, Any]]] | None = None,
) -> Path:
    """Write one run: ``scores[task]`` is a list of per-problem outcomes (0/1) or of per-problem
    lists of per-response outcomes (n samples), logged as ``metric``; ``entropy``: the telemetry's
    (entropy before, after, share of tokens adjusted) of every response; ``extra[key][i]``: a further
    field of problem i's sample row (and a mean in the results where numeric); ``records[i]``: problem i's
    per-response grading records (logged where the tasks' filters put them, ``filtered_resps``; with
    ``math_flags``, math records by default). Returns the results file."""
    folder = Path(out) / model
    folder.mkdir(parents=True, exist_ok=True)
    gen_kwargs = {
        "until": [],
        "do_sample": sampling,
        "temperature": 0.1 if sampling else 0.0,
        "max_gen_toks": max_gen_toks,
    }
    results, configs = {}, {}
    for task, per_problem in scores.items():
        rows = []
        for i, outcome in enumerate(per_problem):
            outcomes = list(outcome) if isinstance(outcome, (list, tuple)) else [outcome]
            n_tok = tokens[i] if isinstance(tokens, (list, tuple)) else tokens
            telemetry = [
                {"em_mode": em_mode, "gen_tokens": int(n_tok), "batch_wall_s": 0.4, "batch_size": 4} for _ in outcomes
            ]
            if entropy:
                for record in telemetry:
                    record.update(entropy_before=entropy[0], entropy_after=entropy[1], adjusted_share=entropy[2])
            kwargs = {**gen_kwargs, "em_telemetry": telemetry}
            if decode:
                kwargs["decode"] = decode
            doc = {"id": i, "problem": f"{task} problem {i}{doc_salt}", "answer": str(i)}
            row = {
                "doc_id": i,
                "doc": doc,
                "target": str(i),
                "arguments": {"gen_args_0": {"arg_0": f"<prompt {i}>", "arg_1": kwargs}},
                "resps": [[f"answer {i} \\boxed{{{i if o else -1}}}" for o in outcomes]],
                "filtered_resps": [[f"answer {i}" for _ in outcomes]],
                "filter": "none",
                "metrics": [metric],
                "doc_hash": _sha(json.dumps(doc)),
                "prompt_hash": _sha(f"<prompt {i}>"),
                "target_hash": _sha(str(i)),
                metric: sum(outcomes) / len(outcomes),
            }
            if math_flags:  # math-verify differs from exact_match where graders_disagree
                row.update(
                    no_answer=float(i % 7 == 0),
                    graders_disagree=float(i % 11 == 0),
                    math_verify=abs(row[metric] - float(i % 11 == 0)),
                )
                graded = [{"answer": str(i) if o else "-1", "exact_match": bool(o)} for o in outcomes]
                row["filtered_resps"] = [graded_responses(graded)]
            if records is not None:
                row["filtered_resps"] = [graded_responses(records[i])]
            row.update({key: values[i] for key, values in (extra or {}).items()})
            rows.append(row)
        (folder / f"samples_{task}_{stamp}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        results[task] = {
            "alias": task,
            f"{metric},none": float(np.mean([r[metric] for r in rows])),
            f"{metric}_stderr,none": 0.0,
        }
        results[task].update(
            {
                f"{key},none": float(np.mean(values))
                for key, values in (extra or {}).items()
                if all(isinstance(v, (int, float)) for v in values)
            }
        )
        configs[task] = {
            "task": task,
            "process_results": "def process_results(doc, results): ...",
            "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
            "generation_kwargs": gen_kwargs,
            "repeats": len(per_problem[0]) if isinstance(per_problem[0], (list, tuple)) else 1,
            "metadata": {"version": 1.0, "grader": grader},
        }
    payload = {
        "results": results,
        "configs": configs,
        "versions": {t: 1.0 for t in scores},
        "higher_is_better": {t: {metric: True} for t in scores},
        "n-samples": {t: {"original": len(v), "effective": len(v)} for t, v in scores.items()},
        "config": {"model": "em_inf", "model_args": {"pretrained": model}, "em_settings": {"em_mode": em_mode}},
        "model_name": model,
        "model_name_sanitized": model,
    }
    path = folder / f"results_{stamp}.json"
    path.write_text(json.dumps(payload))
    return path
