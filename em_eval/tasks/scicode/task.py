"""lm-eval hooks for ``em_scicode*`` / ``scicode``: dataset, prompt, sandboxed scoring, metrics.

One document per main problem. The backend runs the multi-step protocol
(:mod:`em_eval.decoding.multistep`, :mod:`em_eval.tasks.scicode.prompts`) and returns one record of every
step; the ``sandbox`` filter then tests every generated step of every problem in one
parallel batch, and ``process_results`` turns that into SciCode's two metrics:

* ``subproblem_accuracy``: passing generated steps / all generated steps (288 on test);
* ``main_problem_accuracy``: problems whose every generated step passes (/65 on test).

Splits: ``dev`` (15 problems, 50 steps) regenerates its numeric targets by running the gold
code, so it runs offline; ``test`` needs SciCode's ``test_data.h5`` (``--metadata
'{"h5_path": ...}'`` or ``EM_EVAL_SCICODE_H5``), checked when the task loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

from em_eval import sandbox
from em_eval.data import DataFileError
from em_eval.decoding.multistep import parse_record
from em_eval.tasks import tests_ran
from em_eval.tasks.scicode.programs import TARGETS_FILE, scoring_program, support_files, target_program
from em_eval.tasks.scicode.prompts import first_prompt, is_generated, prewritten_code, problems

H5_ENV = "EM_EVAL_SCICODE_H5"
H5_SOURCE = (
    "https://drive.google.com/drive/folders/1W5GZW6_bdiDAiipuFMqdUhvUaHIj6-pR "
    "(linked from https://github.com/scicode-bench/SciCode, README step 3)"
)
STEP_TIMEOUT_S = 300.0  # the paper's per-step limit (upstream legacy scripts: 1800 s)
STEP_LIMITS = sandbox.Limits(timeout_s=STEP_TIMEOUT_S, memory_mb=4096, file_size_mb=256)


# ---- dataset ---------------------------------------------------------------------------------
def load_dataset(
    split: str = "test",
    with_background: bool = True,
    h5_path: str | None = None,
    timeout_s: float = STEP_TIMEOUT_S,
    **_: Any,
):
    """lm-eval ``custom_dataset``: one row per problem; the test split checks its h5 first."""
    import datasets

    sandbox.active_isolation()  # refuse before generation, not after, where code cannot be isolated

    h5 = resolve_h5(h5_path, split) if split == "test" else ""
    rows = [
        {
            "problem_id": p["problem_id"],
            "problem_json": json.dumps(p),
            "split": split,
            "with_background": bool(with_background),
            "h5_path": h5,
            "timeout_s": float(timeout_s),
        }
        for p in problems(split)
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def resolve_h5(h5_path: str | None, split: str = "test") -> str:
    """Path of a readable ``test_data.h5`` holding every test step, or one clear error."""
    path = h5_path or os.environ.get(H5_ENV)
    where = (
        f"Download test_data.h5 from {H5_SOURCE}, then pass "
        f'--metadata \'{{"h5_path": "/path/to/test_data.h5"}}\' or set {H5_ENV}=/path/to/test_data.h5 '
        "(the dev split, em_scicode_dev, needs no file)."
    )
    if not path:
        raise DataFileError(f"SciCode's test split needs its numeric targets (test_data.h5, about 1 GB). {where}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataFileError(f"SciCode test_data.h5 not found at {file}. {where}")
    if os.geteuid() == 0 and not file.stat().st_mode & stat.S_IROTH:
        raise DataFileError(
            f"{file} is not world-readable, but sandboxed test programs run under a throw-away "
            f"uid when em-eval runs as root: chmod o+r {file}"
        )
    try:
        import h5py
    except ImportError as exc:
        raise DataFileError(
            "SciCode's test split reads test_data.h5 with h5py: pip install 'em-eval[scicode]' (or pip install h5py)"
        ) from exc
    try:
        with h5py.File(file, "r") as handle:
            missing = [
                s["step_number"]
                for p in problems(split)
                for s in p["sub_steps"]
                if is_generated(s) and f"{s['step_number']}/test1" not in handle
            ]
    except OSError as exc:
        raise DataFileError(f"{file} is not a readable HDF5 file ({exc}). {where}") from exc
    if missing:
        raise DataFileError(
            f"{file} lacks the targets of {len(missing)} SciCode steps (e.g. {missing[:3]}); "
            f"it is not SciCode's test_data.h5. {where}"
        )
    return str(file.resolve())


def doc_to_text(doc: dict[str, Any]) -> str:
    """The first generated step's prompt; later steps are built by the backend."""
    return first_prompt(doc)


# ---- scoring ---------------------------------------------------------------------------------
_targets_lock = threading.Lock()
_dev_targets: dict[tuple[str, int], bytes] = {}


def step_program(
    problem: dict[str, Any],
    index: int,
    codes: list[str],
    h5_path: str | None,
    files: dict[str, str | bytes],
    limits: sandbox.Limits,
) -> sandbox.Program:
    """Step ``index``'s test program as the judge runs it: it hands back the marker of its tests' end
    (:mod:`em_eval.tasks.tests_ran`), and ``h5_path``, if given, stays readable."""
    return sandbox.Program(
        scoring_program(problem, index, codes, h5_path),
        files,
        collect=(tests_ran.DONE_FILE,),
        readable_paths=(h5_path,) if h5_path else (),
        limits=limits,
    )


def execute(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """lm-eval ``custom`` filter: test every generated step of every problem in the sandbox."""
    jobs: list[tuple[int, int]] = []
    programs: list[sandbox.Program] = []
    records = [parse_record(r[0]) for r in resps]
    problem_of = {d["problem_id"]: json.loads(d["problem_json"]) for d in docs}
    dev = [problem_of[d["problem_id"]] for d in docs if d["split"] == "dev"]
    targets = dev_targets(dev) if dev else {}
    for n, (doc, record) in enumerate(zip(docs, records)):
        problem = problem_of[doc["problem_id"]]
        codes = _step_codes(problem, record)
        limits = dataclasses.replace(STEP_LIMITS, timeout_s=doc["timeout_s"])
        for index, step in enumerate(problem["sub_steps"]):
            if not is_generated(step):
                continue
            files = support_files()
            if doc["split"] == "dev":
                files[TARGETS_FILE] = targets[(problem["problem_id"], index)]
            programs.append(step_program(problem, index, codes, doc["h5_path"] or None, files, limits))
            jobs.append((n, index))
    results = sandbox.run_programs(programs, desc="scicode: testing steps")
    outcomes = [
        {
            "protocol": r["protocol"],
            "problem_id": d["problem_id"],
            "with_background": r["with_background"],
            "isolation": list(sandbox.active_isolation()),
            "steps": [],
            "passed": 0,
            "total": 0,
        }
        for d, r in zip(docs, records)
    ]
    for (n, index), result in zip(jobs, results):
        outcome = outcomes[n]
        step = problem_of[docs[n]["problem_id"]]["sub_steps"][index]["step_number"]
        summary = {k: v for k, v in tests_ran.summary(result).items() if k != "isolation"}
        outcome["steps"].append({"step": step, **summary})
        outcome["passed"] += int(tests_ran.passed(result))
        outcome["total"] += 1
    return outcomes


def _step_codes(problem: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """Every step's code as the protocol produced it (model steps extracted, pre-written as given)."""
    from em_eval.tasks.scicode.extract import extract_scicode_code

    steps = record["steps"]
    expected = [s["step_number"] for s in problem["sub_steps"]]
    if [s["step"] for s in steps] != expected:
        raise ValueError(
            f"SciCode problem {problem['problem_id']}: the multi-step record covers steps "
            f"{[s['step'] for s in steps]}, expected {expected}"
        )
    return [extract_scicode_code(s["output"]) if s["source"] == "model" else prewritten_code(s["step"]) for s in steps]


def gold_codes(problem: dict[str, Any]) -> list[str]:
    """The dev split's gold code of every step."""
    return [
        s["ground_truth_code"] if is_generated(s) else prewritten_code(s["step_number"]) for s in problem["sub_steps"]
    ]


def dev_targets(dev_problems: list[dict[str, Any]]) -> dict[tuple[str, int], bytes]:
    """Pickled targets of every generated dev step, from running the gold code (once per process)."""
    with _targets_lock:
        todo = [
            (p, i)
            for p in dev_problems
            for i, s in enumerate(p["sub_steps"])
            if is_generated(s) and (p["problem_id"], i) not in _dev_targets
        ]
        programs = [
            sandbox.Program(
                target_program(p, i, gold_codes(p)), support_files(), collect=[TARGETS_FILE], limits=STEP_LIMITS
            )
            for p, i in todo
        ]
        for (problem, index), result in zip(todo, sandbox.run_programs(programs, desc="scicode: gold targets")):
            step = problem["sub_steps"][index]["step_number"]
            if not result.passed or not result.files.get(TARGETS_FILE):
                raise RuntimeError(
                    f"SciCode dev step {step}: the gold code did not produce targets ({result.status}: {result.reason})"
                )
            _dev_targets[(problem["problem_id"], index)] = result.files[TARGETS_FILE]
        return dict(_dev_targets)


def process_results(doc: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-problem metrics from the filter's outcome."""
    outcome = results[0]
    return {
        "subproblem_accuracy": (outcome["passed"], outcome["total"]),
        "main_problem_accuracy": int(outcome["total"] > 0 and outcome["passed"] == outcome["total"]),
        "generated_steps": outcome["total"],
    }


def subproblem_accuracy(items: list[tuple[int, int]]) -> float:
    """Passing steps over all generated steps (not a mean of per-problem rates)."""
    total = sum(t for _, t in items)
    return sum(p for p, _ in items) / total if total else 0.0
