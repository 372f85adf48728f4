"""Throughput of EM-INF sampling vs plain sampling with the same HF model and prompts.

Every variant generates exactly ``--new-tokens`` tokens per row (end-of-sequence disabled) at
temperature 0.1, runs are interleaved, and the median of ``--repeats`` is reported as
tokens/s and as a ratio to plain sampling at the same batch size. Variants:

- ``plain``: HF sampling, no processor.
- ``em_inf``: our closed-form batched processor as ``--model em_inf`` runs it on CPU (rows below
  the threshold skipped).
- ``em_inf_compiled``: the fused, sync-free path under ``torch.compile`` (``--compile``), what
  ``--model em_inf`` runs on CUDA (``em_compile=auto``).
- ``paper_autograd``: the paper's way, per row autograd + a fresh ``torch.optim.Adam`` (``--paper``).

CPU default: the embedded SmolLM2-135M. GPU: ``--device cuda --dtype bfloat16 --shape qwen2.5-7b``
builds a random-weight model with Qwen2.5-7B's dimensions (speed does not depend on weights).
Targets: em_inf at batch 8 >= 0.9 of plain; em_inf's batch-8 speed-up over batch 1 matches plain's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from bench_prompts import prompts_for
from em_eval.backends.hf_processor import EntropyMinimizationProcessor
from em_eval.em_inf.settings import EmSettings

SHAPES = {
    "qwen2.5-7b": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        max_position_embeddings=32768,
    ),
}


class PaperAutogradProcessor(LogitsProcessor):
    """The reference implementation's per-token loop: one row at a time, autograd, torch.optim.Adam."""

    def __init__(self, s: EmSettings) -> None:
        self.s = s

    def __call__(self, input_ids, scores):
        rows = []
        for row in scores.float():
            p0 = torch.softmax(row, -1).detach()
            z = torch.nn.Parameter(row.detach().clone())
            opt = torch.optim.Adam([z], lr=self.s.lr)
            with torch.enable_grad():
                for _ in range(self.s.steps):
                    logq = torch.log_softmax(z, -1)
                    h = -(logq.exp() * logq).sum()
                    if h.item() < self.s.threshold:
                        break
                    loss = h + self.s.kl_weight * F.kl_div(logq[None], p0[None], reduction="batchmean")
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            rows.append(z.detach())
        return torch.stack(rows).to(scores.dtype)


def load_model(args):
    if args.shape:
        from transformers import Qwen2Config, Qwen2ForCausalLM

        cfg = Qwen2Config(**SHAPES[args.shape])
        with torch.device(args.device):
            model = Qwen2ForCausalLM(cfg).to(getattr(torch, args.dtype))
        from em_eval.models.embedded import embedded_model_dir

        tok = AutoTokenizer.from_pretrained(embedded_model_dir())  # any tokenizer: ids < vocab
        return model.eval(), tok
    from em_eval.models.embedded import embedded_model_dir

    path = args.model or str(embedded_model_dir())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype)).to(args.device).eval()
    return model, AutoTokenizer.from_pretrained(path)


def processors(variant: str, settings: EmSettings, stop_ids: list[int]):
    if variant == "plain":
        return LogitsProcessorList()
    if variant == "em_inf":
        return LogitsProcessorList([EntropyMinimizationProcessor(settings, stop_ids)])
    if variant == "em_inf_compiled":
        return LogitsProcessorList([EntropyMinimizationProcessor(settings, stop_ids, compile=True)])
    return LogitsProcessorList([PaperAutogradProcessor(settings)])


def timed_generate(model, tok, batch: int, variant: str, args, settings: EmSettings) -> float:
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    enc = tok(prompts_for(batch), return_tensors="pt", padding=True).to(args.device)
    stop = [tok.eos_token_id] if tok.eos_token_id is not None else []
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        model.generate(
            **enc,
            do_sample=True,
            temperature=0.1,
            top_p=1.0,
            top_k=0,
            max_new_tokens=args.new_tokens,
            eos_token_id=None,
            logits_processor=processors(variant, settings, stop),
            pad_token_id=tok.pad_token_id,
        )
    sync()
    return batch * args.new_tokens / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--model", help="a model folder (default: the embedded SmolLM2)")
    ap.add_argument("--shape", choices=sorted(SHAPES), help="random-weight model with these dimensions")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time the closed form under torch.compile")
    ap.add_argument("--paper", action="store_true", help="also time the paper's autograd + torch.optim.Adam loop")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model, tok = load_model(args)
    model.generation_config.eos_token_id = None  # fixed-length generations: same token count everywhere
    settings = EmSettings()
    variants = ["plain", "em_inf"] + ["em_inf_compiled"] * args.compile + ["paper_autograd"] * args.paper
    batches = [int(b) for b in args.batches.split(",")]
    for b in batches:  # warm-up (and compilation) outside the timed runs
        for v in variants:
            timed_generate(model, tok, b, v, argparse.Namespace(**{**vars(args), "new_tokens": 4}), settings)
    speeds: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.repeats):
        for b in batches:
            for v in variants:
                speeds.setdefault((b, v), []).append(timed_generate(model, tok, b, v, args, settings))
    table = {f"{v}@{b}": statistics.median(s) for (b, v), s in speeds.items()}
    print(
        f"device={args.device} dtype={args.dtype} model={args.shape or args.model or 'smollm2-135m'} "
        f"new_tokens={args.new_tokens} repeats={args.repeats} (median tokens/s; ratio vs plain at the same batch)"
    )
    print(f"{'variant':<18}" + "".join(f"{'batch ' + str(b):>22}" for b in batches))
    for v in variants:
        cells = "".join(
            f"{table[f'{v}@{b}']:>10.1f} tok/s {table[f'{v}@{b}'] / table[f'plain@{b}']:>5.2f}x" for b in batches
        )
        print(f"{v:<18}{cells}")
    if len(batches) > 1:
        lo, hi = batches[0], batches[-1]
        for v in variants:
            print(f"batching gain {v:<16} {table[f'{v}@{hi}'] / table[f'{v}@{lo}']:.2f}x (batch {hi} over batch {lo})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "tokens_per_s": table}, fh, indent=2)
    return table


if __name__ == "__main__":
    main()
