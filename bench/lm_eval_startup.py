"""Start-up benchmark: em-eval's task-index cache off and on (``em-eval eval``; the bare ``lm_eval`` runs as off).

Each repeat runs, in a fresh interpreter, first ``TaskManager()`` alone (after ``plugin.activate()``)
and then a whole ``em-eval eval --model em_inf --tasks em_smoke --limit 1`` on the embedded model (one
token), with ``EM_EVAL_TASK_INDEX_CACHE=0`` (lm-eval parses its task YAMLs, as the bare ``lm_eval``
does) and with the cache on, alternating so that machine load hits both alike. One run before timing
fills the cache. Reports median seconds and the ratio off/on.

    python bench/lm_eval_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

INDEX_ONLY = "from em_eval import plugin; plugin.activate(); import lm_eval.tasks as t; t.TaskManager()"


def timed(cmd: list[str], cache: str) -> float:
    env = {**os.environ, "EM_EVAL_TASK_INDEX_CACHE": cache, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from em_eval.models.embedded import embedded_model_dir

    em_eval = shutil.which("em-eval") or sys.exit("the em-eval console script is not installed")
    out = tempfile.mkdtemp(prefix="em-startup-")
    cases = {
        "TaskManager()": [sys.executable, "-c", INDEX_ONLY],
        "em-eval eval em_smoke, 1 problem": [
            em_eval,
            "eval",
            "--model",
            "em_inf",
            "--model_args",
            f"pretrained={embedded_model_dir()}",
            "--tasks",
            "em_smoke",
            "--limit",
            "1",
            "--device",
            "cpu",
            "--gen_kwargs",
            "max_gen_toks=1",
            "--output_path",
            out,
        ],
    }
    timed(cases["TaskManager()"], "1")  # fills the cache
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for name, cmd in cases.items():
            for cache in ("0", "1"):
                times.setdefault((name, cache), []).append(timed(cmd, cache))
    print(f"{'case':32} {'cache off (s)':>14} {'cache on (s)':>13} {'off / on':>9}")
    for name in cases:
        off, on = (statistics.median(times[name, c]) for c in ("0", "1"))
        print(f"{name:32} {off:14.1f} {on:13.1f} {off / on:8.1f}x")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
