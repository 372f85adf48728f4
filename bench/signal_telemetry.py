"""Cost of the per-sample confidence signals: the HF processor with them vs today's telemetry.

Times the :class:`EntropyMinimizationProcessor` over ``--steps`` decoding steps of random
``[rows, vocab]`` logits (no model: the ratio isolates the telemetry), including the end-of-batch
``row_telemetry``, against the processor of ``--baseline-rev`` (the commit before the signals,
loaded from git), for plain decoding (``off``, where telemetry is all the processor does) and
EM-INF. On the CPU it times this process's CPU time (``time.process_time``: other processes on a
shared machine do not count; run it with ``OMP_NUM_THREADS=1``), on CUDA the wall time. Prints the
best of ``--repeats`` in ms per step
and the ratio new/baseline; ``--json`` writes them. ``--generate`` also times whole generations
with the embedded SmolLM2 (``--new-tokens`` per row, end-of-sequence off): what the signals cost
against a decoding step, not only against the old telemetry.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python bench/signal_telemetry.py [--generate] [--device cuda]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from bench_prompts import prompts_for
from em_eval.backends.hf_processor import EntropyMinimizationProcessor
from em_eval.em_inf.settings import EmSettings

BASELINE_REV = "1f2ce00"  # the last commit before the signals


def baseline_processor(rev: str) -> type:
    """``EntropyMinimizationProcessor`` as it was at ``rev``."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:em_eval/backends/hf_processor.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_hf_processor.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_hf_processor", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.EntropyMinimizationProcessor


def clock(device: str) -> float:
    return time.perf_counter() if device.startswith("cuda") else time.process_time()


def run_once(cls: type, settings: EmSettings, logits: list[torch.Tensor], device: str) -> float:
    """Seconds per step of one response batch (processor calls plus ``row_telemetry``)."""
    proc = cls(settings, stop_token_ids=[0], compile=device.startswith("cuda") and settings.mode != "off")
    ids = torch.ones(logits[0].shape[0], 1, dtype=torch.long, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = clock(device)
    for z in logits:
        proc(ids, z.clone())
    proc.row_telemetry(1.0)
    sync()
    return (clock(device) - start) / len(logits)


def generate_once(cls: type, settings: EmSettings, model, tok, rows: int, new_tokens: int) -> float:
    """Seconds per decoding step of one ``generate`` call with the processor ``cls``."""
    enc = tok(prompts_for(rows), return_tensors="pt", padding=True).to(model.device)
    proc = cls(settings, stop_token_ids=[tok.eos_token_id], compile=False)
    start = clock(str(model.device))
    with torch.no_grad():
        model.generate(
            **enc,
            do_sample=True,
            temperature=0.1,
            top_p=1.0,
            top_k=0,
            max_new_tokens=new_tokens,
            eos_token_id=None,
            pad_token_id=tok.pad_token_id,
            logits_processor=LogitsProcessorList([proc]),
        )
    proc.row_telemetry(1.0)
    return (clock(str(model.device)) - start) / new_tokens


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vocab", type=int, default=49152, help="49152: SmolLM2; 151936: Qwen2.5")
    ap.add_argument("--rows", default="1,8")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-rev", default=BASELINE_REV)
    ap.add_argument("--generate", action="store_true", help="also time generate() with the embedded model")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    old = baseline_processor(args.baseline_rev)
    g = torch.Generator().manual_seed(0)
    model = tok = None
    if args.generate:
        from em_eval.models.embedded import embedded_model_dir

        model = AutoModelForCausalLM.from_pretrained(embedded_model_dir()).to(args.device).eval()
        tok = AutoTokenizer.from_pretrained(embedded_model_dir(), padding_side="left")
        tok.pad_token = tok.pad_token or tok.eos_token
        model.generation_config.eos_token_id = None
    table: dict[str, dict[str, float]] = {}
    for rows in (int(r) for r in args.rows.split(",")):
        logits = [(torch.randn(rows, args.vocab, generator=g) * s).to(args.device) for s in (0.5, 2, 8) * 4]
        logits = (logits * (args.steps // len(logits) + 1))[: args.steps]
        for mode in ("off", "em_inf"):
            settings = EmSettings(mode=mode)
            runs = {"": lambda cls: run_once(cls, settings, logits, args.device)}
            if model is not None:
                runs["generate "] = lambda cls: generate_once(cls, settings, model, tok, rows, args.new_tokens)
            for prefix, timed in runs.items():
                times: dict[str, list[float]] = {"baseline": [], "signals": []}
                for _ in range(args.repeats + 1):  # the first round warms up (and compiles)
                    for name, cls in (("baseline", old), ("signals", EntropyMinimizationProcessor)):
                        times[name].append(timed(cls))
                base, new = (min(times[k][1:]) * 1e3 for k in ("baseline", "signals"))
                table[f"{prefix}{mode}@{rows}"] = {
                    "baseline_ms": round(base, 4),
                    "signals_ms": round(new, 4),
                    "ratio": round(new / base, 3),
                }
    print(
        f"device={args.device} vocab={args.vocab} steps={args.steps} repeats={args.repeats} "
        f"baseline={args.baseline_rev} (best ms per step; ratio signals/baseline; generate: whole decoding steps)"
    )
    for key, row in table.items():
        print(f"{key:<20} {row['baseline_ms']:>9.3f} ms {row['signals_ms']:>9.3f} ms {row['ratio']:>6.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "per_step": table}, indent=2))
    return table


if __name__ == "__main__":
    main()
