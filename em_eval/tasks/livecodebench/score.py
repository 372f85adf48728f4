"""Judging LiveCodeBench programs: one sandboxed run of the harness per problem, and its verdict.

The harness (:mod:`em_eval.tasks.livecodebench.harness`) is ``main.py``; the extracted program
is ``solution.py`` and the problem's tests ``tests.json``. The wall-clock limit is upstream's
global one, ``(timeout + 1) * tests + 5`` seconds, on top of the harness's per-test alarm.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from em_eval import sandbox

TIMEOUT_S = 6  # the paper's execution timeout per test
HARNESS = Path(__file__).with_name("harness.py").read_text(encoding="utf-8")
VERDICT = "verdict.json"
STATUS_OF_CODE = {-2: "failed", -3: "timeout", -4: "error"}


def program(code: str, tests: dict[str, Any], timeout_s: int = TIMEOUT_S) -> sandbox.Program:
    n = len(tests["inputs"])
    files = {"solution.py": code, "tests.json": json.dumps({**tests, "timeout_s": timeout_s})}
    return sandbox.Program(HARNESS, files, collect=(VERDICT,), limits=sandbox.Limits(timeout_s=(timeout_s + 1) * n + 5))


def verdict(result: sandbox.ProgramResult, n_tests: int) -> dict[str, Any]:
    """``{status, reason, tests_passed, tests_total, isolation, duration_s}`` of one run."""
    out = {"tests_total": n_tests, "isolation": list(result.isolation), "duration_s": round(result.duration_s, 3)}
    raw = result.files.get(VERDICT, b"")
    if not raw.strip():
        status, reason = (
            (result.status, result.reason)
            if result.status != "passed"
            else ("error", "the program ended the judge before the tests finished (no verdict)")
        )
        return {**out, "status": status, "reason": reason, "tests_passed": 0}
    try:
        judged = json.loads(raw)
        results, info = list(judged["results"]), dict(judged["info"])
    except (ValueError, KeyError, TypeError):
        return {**out, "status": "error", "reason": "unreadable verdict (the program wrote over it)", "tests_passed": 0}
    passed = sum(r is True for r in results)
    if passed == n_tests and len(results) == n_tests:
        return {**out, "status": "passed", "reason": "", "tests_passed": passed}
    status = STATUS_OF_CODE.get(info.get("error_code"), "error")
    details = "; ".join(f"{k} {info[k]}" for k in ("error", "inputs", "output", "expected") if k in info)
    reason = f"test {len(results)} of {n_tests}: {info.get('error_message', 'failed')}" + (
        f" ({details})" if details else ""
    )
    return {**out, "status": status, "reason": reason, "tests_passed": passed}


def judge(
    codes: Sequence[str],
    tests: Iterable[dict[str, Any]],
    *,
    timeout_s: int = TIMEOUT_S,
    jobs: int | None = None,
    desc: str = "livecodebench: running tests",
) -> list[dict[str, Any]]:
    """Verdicts of ``codes[i]`` on ``tests[i]``, a few problems in memory at a time (tests are large)."""
    from tqdm.auto import tqdm

    out: list[dict[str, Any]] = []
    batch: list[tuple[sandbox.Program, int]] = []
    chunk = 4 * (jobs or os.cpu_count() or 1)
    with tqdm(total=len(codes), desc=desc, disable=len(codes) < 8) as bar:
        for code, case in zip(codes, tests):
            batch.append((program(code, case, timeout_s), len(case["inputs"])))
            if len(batch) == chunk:
                out += _run(batch, jobs)
                bar.update(len(batch))
                batch = []
        out += _run(batch, jobs)
        bar.update(len(batch))
    return out


def _run(batch: list[tuple[sandbox.Program, int]], jobs: int | None) -> list[dict[str, Any]]:
    results = sandbox.run_programs([p for p, _ in batch], jobs=jobs, progress=False)
    return [verdict(r, n) for r, (_, n) in zip(results, batch)]
