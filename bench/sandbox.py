"""Sandbox cost: per-program overhead vs a bare ``subprocess.run``, and batch wall time serial vs parallel.

    python bench/sandbox.py            # overhead + SciCode dev gold (fast problems), serial vs parallel
    python bench/sandbox.py --all      # all 15 dev problems / 50 steps (about 8 CPU-minutes)

Workloads: SciCode dev gold code (regenerate targets, then score the gold code against them;
the score must be 100% sub and main) and LeetCodeDataset's reference solutions when
``$EM_EVAL_DATA_DIR/leetcodedataset/`` holds the file (it must pass >= 99%). Figures are
ratios against baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EM_EVAL_DATA_DIR", str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"))

from em_eval import sandbox  # noqa: E402
from em_eval.data import DataFileError  # noqa: E402
from em_eval.tasks import tests_ran  # noqa: E402
from em_eval.tasks.leetcode import task as code_tasks  # noqa: E402
from em_eval.tasks.scicode.programs import TARGETS_FILE, support_files, target_program  # noqa: E402
from em_eval.tasks.scicode.prompts import is_generated, problems  # noqa: E402
from em_eval.tasks.scicode.task import STEP_LIMITS, gold_codes, step_program  # noqa: E402

FAST_PROBLEMS = {"1", "3", "4", "19", "29", "38", "70", "78"}


def per_program_overhead(repeats: int) -> dict[str, float]:
    """Median wall time of a trivial program: bare subprocess vs each sandbox mode."""

    def bare() -> None:
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True, env={"PATH": "/usr/bin:/bin"})

    timings = {"bare_subprocess": _median(bare, repeats)}
    for mode in ("rlimits", "bwrap"):
        try:
            sandbox.active_isolation(mode)
        except sandbox.SandboxError as exc:
            print(f"  {mode}: unavailable ({exc})")
            continue
        timings[f"sandbox_{mode}"] = _median(lambda m=mode: sandbox.run_program("pass", mode=m), repeats)
    return timings


def _median(fn, repeats: int) -> float:
    fn()  # warm caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def scicode_gold(selected: list[dict], jobs: int) -> dict[str, float]:
    """Regenerate targets and score the gold code of ``selected`` dev problems with ``jobs`` workers."""
    work = [(p, i) for p in selected for i, s in enumerate(p["sub_steps"]) if is_generated(s)]
    start = time.perf_counter()
    made = sandbox.run_programs(
        [
            sandbox.Program(
                target_program(p, i, gold_codes(p)), support_files(), collect=[TARGETS_FILE], limits=STEP_LIMITS
            )
            for p, i in work
        ],
        jobs=jobs,
        desc=f"targets (jobs={jobs})",
    )
    middle = time.perf_counter()
    scored = sandbox.run_programs(
        [
            step_program(
                p, i, gold_codes(p), None, {**support_files(), TARGETS_FILE: m.files[TARGETS_FILE]}, STEP_LIMITS
            )
            for (p, i), m in zip(work, made)
        ],
        jobs=jobs,
        desc=f"scoring (jobs={jobs})",
    )
    end = time.perf_counter()
    passed = {(p["problem_id"], i) for (p, i), r in zip(work, scored) if tests_ran.passed(r)}
    main = sum(all((p["problem_id"], i) in passed for pp, i in work if pp is p) for p in selected)
    failures = [
        (p["sub_steps"][i]["step_number"], tests_ran.status(r)[1])
        for (p, i), r in zip(work, scored)
        if not tests_ran.passed(r)
    ]
    return {
        "steps": len(work),
        "steps_passed": len(passed),
        "problems": len(selected),
        "problems_passed": main,
        "targets_s": middle - start,
        "scoring_s": end - middle,
        "total_s": end - start,
        "failures": failures,
    }


def leetcodedataset_references(jobs: int) -> dict[str, float] | None:
    try:
        docs = [dict(d) for d in code_tasks.load_leetcodedataset()["test"]]
    except DataFileError as exc:
        print(f"  LeetCodeDataset: skipped ({str(exc).split('. ')[0]})")
        return None
    start = time.perf_counter()
    programs = [code_tasks.sandboxed(code_tasks.leetcodedataset_program(d, d["completion"])) for d in docs]
    results = sandbox.run_programs(programs, jobs=jobs, desc=f"leetcodedataset (jobs={jobs})")
    return {
        "problems": len(docs),
        "passed": sum(map(tests_ran.passed, results)),
        "total_s": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="all 15 SciCode dev problems (default: the fast 8)")
    parser.add_argument("--repeats", type=int, default=20, help="trivial programs per overhead measurement")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    report: dict[str, object] = {"cpu_count": cores, "isolation": list(sandbox.active_isolation())}

    print(f"per-program overhead (median of {args.repeats}):")
    overhead = per_program_overhead(args.repeats)
    for name, seconds in overhead.items():
        print(f"  {name:18s} {seconds * 1000:7.1f} ms   x{seconds / overhead['bare_subprocess']:.2f} of bare")
    report["overhead_s"] = overhead

    selected = [p for p in problems("dev") if args.all or p["problem_id"] in FAST_PROBLEMS]
    for label, jobs in (("serial", 1), ("parallel", cores)):
        result = scicode_gold(selected, jobs)
        report[f"scicode_dev_{label}"] = result
        print(
            f"SciCode dev gold, {label} (jobs={jobs}): {result['steps_passed']}/{result['steps']} steps, "
            f"{result['problems_passed']}/{result['problems']} problems, targets {result['targets_s']:.1f} s + "
            f"scoring {result['scoring_s']:.1f} s = {result['total_s']:.1f} s"
        )
        if result["failures"]:
            print("  failures:", result["failures"])
    speedup = report["scicode_dev_serial"]["total_s"] / report["scicode_dev_parallel"]["total_s"]  # type: ignore[index]
    print(f"  parallel speed-up x{speedup:.2f} on {cores} cores")

    for label, jobs in (("serial", 1), ("parallel", cores)):
        lcd = leetcodedataset_references(jobs)
        if lcd is None:
            break
        report[f"leetcodedataset_{label}"] = lcd
        print(f"LeetCodeDataset references, {label}: {lcd['passed']}/{lcd['problems']} pass in {lcd['total_s']:.1f} s")
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
