"""Training throughput and memory: one EM-FT / EM-RL step on SmolLM2-135M, full vs LoRA.

Each case runs in its own process through the trainer's own functions (``generate_rollouts``
+ ``em_ft_update`` / ``em_rl_update``); every case samples 4 responses per prompt (EM-FT's
"N = 4" variant) so the steps see the same number of sequences. The baseline is rollout
generation alone, measured in the same run: every figure is also given as a ratio to it.
tokens/s counts sampled response tokens per second of a whole step; peak memory is the
process's peak resident set during the steps (the counter is reset after loading, Linux).

``--vllm`` adds the same rollouts from a vLLM engine in the process (``rollout_engine=vllm``):
``generate-vllm`` (rollouts alone, against HF ``generate``) and ``em_rl-full-vllm`` (a whole
EM-RL step, the weight sync into the engine included).

    python bench/training.py                      # defaults: 4 prompts, 32 new tokens, 2 timed steps
    python bench/training.py --prompts 2 --max-new-tokens 16 --steps 1   # a short run
    VLLM_CPU_KVCACHE_SPACE=2 python bench/training.py --vllm --cases generate,generate-vllm,em_rl-full,em_rl-full-vllm
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = ("generate", "em_ft-full", "em_ft-lora", "em_rl-full", "em_rl-lora")
VLLM_CASES = ("generate-vllm", "em_rl-full-vllm")
BASELINE = "generate"
SAMPLES = 4  # responses per prompt, every case


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def run_case(case: str, args: argparse.Namespace) -> dict:
    """Warm up, then time ``args.steps`` steps of one case in this process."""
    import torch
    from accelerate import Accelerator

    from em_eval.training.run.loop import em_ft_update, em_rl_update
    from em_eval.training.run.rollout import generate_rollouts
    from em_eval.training.run.vllm_rollout import VllmRolloutEngine
    from em_eval.training.setup.config import load_recipe
    from em_eval.training.setup.model import load_policy, load_reference, load_tokenizer
    from em_eval.training.setup.prompts import load_prompt_set

    if args.threads:
        torch.set_num_threads(args.threads)
    method, *rest = case.split("-")
    finetune = next((r for r in rest if r in ("full", "lora")), "full")
    vllm = rest[-1:] == ["vllm"]
    recipe = "em_rl_token" if method == "em_rl" else "em_ft"
    config = load_recipe(
        recipe,
        {
            "finetune": finetune,
            "prompts_per_step": args.prompts,
            "max_new_tokens": args.max_new_tokens,
            "micro_batch_size": args.micro_batch,
            "rollout_engine": "vllm" if vllm else "hf",
            "vllm_enforce_eager": args.vllm_eager,
        },
    )
    tokenizer = load_tokenizer(config.model)
    prompts = load_prompt_set(
        config.prompts, tokenizer, system_prompt=config.system_prompt, user_template=config.user_template
    ).token_ids
    accelerator = Accelerator()
    model = load_policy(config)
    optimizer = torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=config.lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    reference = load_reference(config) if method == "em_rl" else None
    engine = VllmRolloutEngine(config, tokenizer, model, rank=0, world=1, device=accelerator.device) if vllm else None
    loaded = _status_mib("VmRSS")
    _reset_peak_rss()
    timings, tokens = [], []
    torch.manual_seed(0)
    for step in range(args.warmup + args.steps):
        batch_prompts = [prompts[(step * args.prompts + i) % len(prompts)] for i in range(args.prompts)]
        start = time.perf_counter()
        if engine is not None:
            batch = engine.generate(batch_prompts, samples=SAMPLES, step=step)
        else:
            batch = generate_rollouts(
                accelerator.unwrap_model(model),
                tokenizer,
                batch_prompts,
                samples=SAMPLES,
                max_new_tokens=config.max_new_tokens,
            )
        if method == "em_ft":
            em_ft_update(accelerator, model, reference, optimizer, batch, config)
        elif method == "em_rl":
            em_rl_update(accelerator, model, reference, optimizer, batch, config, step=step)
        if engine is not None and method != "generate":
            engine.sync(model)
        if step >= args.warmup:
            timings.append(time.perf_counter() - start)
            tokens.append(int(batch.response_mask.sum()))
    peak = _status_mib("VmHWM")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "case": case,
        "tokens_per_s": sum(tokens) / sum(timings),
        "s_per_step": sum(timings) / len(timings),
        "sequences_per_step": args.prompts * SAMPLES,
        "peak_rss_mib": peak,
        "step_extra_mib": peak - loaded,
        "trainable_params": trainable,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=CASES + VLLM_CASES, help="run one case in this process and print its JSON")
    parser.add_argument(
        "--cases",
        help=f"comma-separated subset of {', '.join(CASES + VLLM_CASES)} (default: all "
        "HF cases, plus the vLLM ones with --vllm)",
    )
    parser.add_argument("--vllm", action="store_true", help="add the vLLM rollout cases (needs vLLM)")
    parser.add_argument("--vllm-eager", action="store_true", help="vLLM without torch.compile / CUDA graphs")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (4 responses sampled for each)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return 0

    passthrough = [
        f"--prompts={args.prompts}",
        f"--max-new-tokens={args.max_new_tokens}",
        f"--steps={args.steps}",
        f"--micro-batch={args.micro_batch}",
        f"--warmup={args.warmup}",
        f"--threads={args.threads}",
        *(["--vllm-eager"] if args.vllm_eager else []),
    ]
    cases = args.cases.split(",") if args.cases else [*CASES, *(VLLM_CASES if args.vllm else ())]
    if BASELINE not in cases:
        cases.insert(0, BASELINE)
    rows = []
    for case in cases:
        done = subprocess.run([sys.executable, __file__, "--case", case, *passthrough], capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{case}: done", file=sys.stderr)
    base = next(r for r in rows if r["case"] == BASELINE)
    print(
        f"SmolLM2-135M, CPU ({rows[0]['threads']} threads), {args.prompts} prompts/step, {args.max_new_tokens} new "
        f"tokens, {args.steps} timed step(s) after {args.warmup} warm-up; baseline = rollout generation alone\n"
    )
    print(
        "| case | sequences/step | tokens/s | s/step | tokens/s vs baseline | peak RSS in steps, MiB "
        "| peak vs baseline "
        "| step memory over the loaded model, MiB | trainable params |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['sequences_per_step']} | {r['tokens_per_s']:.1f} | {r['s_per_step']:.2f} | "
            f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['peak_rss_mib']:.0f} | "
            f"{r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x | {r['step_extra_mib']:.0f} | "
            f"{r['trainable_params']:,} |"
        )
    found = {r["case"]: r for r in rows}
    for method in ("em_ft", "em_rl"):
        if f"{method}-full" in found and f"{method}-lora" in found:
            full, lora = found[f"{method}-full"], found[f"{method}-lora"]
            print(
                f"\n{method}: LoRA / full = {lora['tokens_per_s'] / full['tokens_per_s']:.2f}x tokens/s, "
                f"{lora['peak_rss_mib'] / full['peak_rss_mib']:.2f}x peak memory",
                end="",
            )
    for hf, vllm in (("generate", "generate-vllm"), ("em_rl-full", "em_rl-full-vllm")):
        if hf in found and vllm in found:
            print(f"\n{vllm} / {hf} = {found[vllm]['tokens_per_s'] / found[hf]['tokens_per_s']:.2f}x tokens/s", end="")
    print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
