"""em_livecodebench's judge against upstream LiveCodeBench's verdicts, recorded as data.

``tests/data/livecodebench_judge_oracle.json`` holds hand-written programs (every stdin idiom, the
output comparison rules, failures; functional programs) in the upstream record schema, each with the
verdict upstream's ``testing_util`` gave it (commit, files and command in the file). Our harness must
give the same verdict (status and tests passed), except where upstream is wrong: those programs are
correct, pass here and are listed in :data:`UPSTREAM_WRONG` and in the card.

The bank runs inside the sandbox in two sandboxed processes, not one per program (about 0.1 s each):
each forks once per program and runs the harness's unchanged ``main`` in that program's folder, as
the sandbox runs it as ``main.py``. A few programs also go the production way (one process each).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from em_eval import sandbox
from em_eval.tasks.livecodebench import score
from em_eval.tasks.livecodebench.problems import cases_of

REPO = Path(__file__).resolve().parents[2]
BANK = json.loads((REPO / "tests/data/livecodebench_judge_oracle.json").read_text(encoding="utf-8"))
TIMEOUT_S = 1  # per test; upstream's 6 s only makes the endless loops slower
_READLINES = "upstream's readlines() returns input.split('\\n'): no newlines, and a last '' line"
_OPEN = (
    "the judge's `from builtins import *` / `from io import *` prelude binds the real open() before "
    "builtins.open is patched, and descriptor 0 is /dev/null in check_correctness's process"
)
_BUFFER_LINE = "upstream's sys.stdin.buffer.readline() returns the first line on every call"
_READ_ALL = "upstream's sys.stdin.read() returns the whole input on every call, whatever was read before"
_FD0 = "upstream never feeds descriptor 0 (it is /dev/null): os.read(0, ...) reads nothing"
_IMPORTED = (
    "a top-level `from sys import ...` runs before upstream patches sys.stdin/sys.stdout, so it binds "
    "the real (empty) stdin or the uncaptured stdout"
)
UPSTREAM_WRONG = {  # correct programs that upstream fails, and why
    "readlines_each_line_unpacked": _READLINES,
    "readlines_joined": _READLINES,
    "readlines_keep_newlines": _READLINES,
    "readline_then_readlines": _READLINES + ", from the first line",
    "iterate_stdin": "upstream's mock stdin has no __iter__ (TypeError)",
    "iterate_stdin_skip_first": "upstream's mock stdin has no __iter__ (TypeError)",
    "open0_read": _OPEN,
    "open0_readlines": _OPEN,
    "open0_iterate": _OPEN,
    "open0_binary": _OPEN,
    "open0_with_block": _OPEN,
    "open_dev_stdin": _OPEN,
    "buffer_readline_many_lines": _BUFFER_LINE,
    "buffer_readline_decode": _BUFFER_LINE,
    "buffer_readline_then_read": _BUFFER_LINE + ", and buffer.read() the whole input",
    "buffer_readlines": "upstream's mock sys.stdin.buffer has no readlines()",
    "readline_then_read": _READ_ALL,
    "input_then_read": _READ_ALL,
    "eof_read_chunks": _READ_ALL + " (never '')",
    "fast_io_template": _FD0,
    "fileno_read": _FD0 + "; its mock stdin's fileno() raises",
    "from_sys_import_stdin_iterate": _IMPORTED,
    "from_sys_import_stdin_buffer": _IMPORTED,
    "from_sys_import_stdout": _IMPORTED,
    "quit_builtin": "upstream's reliability_guard sets builtins.quit = None (exit() it leaves alone)",
    "stdout_buffer_write": "upstream captures stdout in a StringIO, which has no .buffer",
    "os_write_fd1": "upstream captures sys.stdout only, not descriptor 1",
}
_STATUS = {-2: "failed", -3: "timeout", -4: "error", -5: "error"}  # -5: upstream's own runner failed
DRIVER = """
import json, os, signal, time
harness = {"__name__": "lcb_harness"}
exec(compile(open("harness.py", encoding="utf-8").read(), "harness.py", "exec"), harness)
root, out = os.getcwd(), {}
for name, case in json.load(open("bank.json", encoding="utf-8")).items():
    folder = os.path.join(root, "cases", name)
    os.makedirs(folder)
    for file in ("solution.py", "tests.json"):
        with open(os.path.join(folder, file), "w", encoding="utf-8") as fh:
            fh.write(case[file])
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(folder)
            harness["main"]()
            code = 0
        finally:
            os._exit(code)
    deadline, killed = time.monotonic() + case["limit_s"], False
    while not (done := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            done, killed = os.waitpid(pid, 0), True
        time.sleep(0.002)
    verdict = os.path.join(folder, "verdict.json")
    out[name] = {"exit": os.waitstatus_to_exitcode(done[1]), "killed": killed,
                 "verdict": open(verdict).read() if os.path.exists(verdict) else ""}
with open(os.path.join(root, "results.json"), "w") as fh:
    json.dump(out, fh)
"""


def upstream_verdict(case: dict, n_tests: int) -> tuple[str, int]:
    """(status, tests passed) as upstream's pass@1 reads its results: passed only when every test is True."""
    graded, meta = case["upstream"]["graded"], case["upstream"]["metadata"]
    if len(graded) == n_tests and all(r is True for r in graded):
        return "passed", n_tests
    fallback = "timeout" if graded and graded[-1] == -1 else "error"  # -1: check_correctness's global timeout
    return _STATUS.get(meta.get("error_code"), fallback), sum(r is True for r in graded)


def _batch(cases: list[dict]) -> sandbox.Program:
    bank = {}
    for case in cases:
        tests = cases_of(case["record"])
        bank[case["name"]] = {
            "solution.py": case["code"],
            "tests.json": json.dumps({**tests, "timeout_s": TIMEOUT_S}),
            "limit_s": (TIMEOUT_S + 1) * len(tests["inputs"]) + 5,
        }  # as score.program
    total = 5 + sum(c["limit_s"] for c in bank.values())
    return sandbox.Program(
        DRIVER,
        {"harness.py": score.HARNESS, "bank.json": json.dumps(bank)},
        collect=("results.json",),
        limits=sandbox.Limits(timeout_s=total),
    )


@pytest.fixture(scope="module")
def ours() -> dict[str, dict]:
    """Our verdict on every bank program, read by ``score.verdict`` as in production."""
    halves = [BANK["cases"][0::2], BANK["cases"][1::2]]
    runs = sandbox.run_programs([_batch(h) for h in halves], jobs=2, progress=False)
    out = {}
    for run, half in zip(runs, halves):
        assert run.status == "passed" and "results.json" in run.files, (run.status, run.reason, run.stderr[-2000:])
        results = json.loads(run.files["results.json"])
        for case in half:
            got = results[case["name"]]
            status = "timeout" if got["killed"] else "passed" if got["exit"] == 0 else "error"
            one = sandbox.ProgramResult(
                status,
                f"exit {got['exit']}",
                "",
                "",
                0.0,
                got["exit"],
                run.isolation,
                {score.VERDICT: got["verdict"].encode()},
            )
            out[case["name"]] = score.verdict(one, len(cases_of(case["record"])["inputs"]))
    return out


def test_the_bank_is_upstreams_record_and_covers_both_kinds():
    assert BANK["upstream"]["commit"].startswith("28fef95") and "testing_util" in BANK["upstream"]["files"][0]
    kinds = [cases_of(c["record"])["fn_name"] is None for c in BANK["cases"]]
    assert len(kinds) >= 60 and sum(kinds) >= 60 and len(kinds) - sum(kinds) >= 15
    assert set(UPSTREAM_WRONG) <= {c["name"] for c in BANK["cases"]}


def test_our_judge_agrees_with_upstream_wherever_upstream_is_right(ours):
    differ = {}
    for case in BANK["cases"]:
        want = upstream_verdict(case, len(cases_of(case["record"])["inputs"]))
        got = ours[case["name"]]
        if (got["status"], got["tests_passed"]) != want:
            differ[case["name"]] = (want, got["status"], got["reason"])
    assert set(differ) == set(UPSTREAM_WRONG), {k: v for k, v in differ.items() if k not in UPSTREAM_WRONG}


def test_where_upstream_is_wrong_the_program_passes_here(ours):
    for name in UPSTREAM_WRONG:
        assert ours[name]["status"] == "passed" and ours[name]["tests_passed"] == ours[name]["tests_total"], name


def test_the_production_path_gives_the_same_verdicts(ours):
    """One sandboxed process per program, as ``score.judge`` runs a model's answers."""
    picked = [
        c
        for c in BANK["cases"]
        if c["name"]
        in (
            "buffer_readline_many_lines",
            "iterate_stdin",
            "open0_read",
            "quit_builtin",
            "decimal_signaling_nan",
            "method_sys_exit",
        )
    ]
    got = score.judge([c["code"] for c in picked], [cases_of(c["record"]) for c in picked], timeout_s=TIMEOUT_S)
    assert [(g["status"], g["tests_passed"]) for g in got] == [
        (ours[c["name"]]["status"], ours[c["name"]]["tests_passed"]) for c in picked
    ]


def test_the_card_states_the_agreement():
    total = len(BANK["cases"])
    figure = f"{total - len(UPSTREAM_WRONG)} of {total}"
    card = (REPO / "tasks/livecodebench/README.md").read_text(encoding="utf-8")
    stated = re.findall(rf"\b(\d+) of {total}\b", card)  # the summary and the Judge section; none stale
    assert len(stated) >= 2 and set(stated) == {str(total - len(UPSTREAM_WRONG))}, (figure, stated)
    listed = set(re.findall(r"`([a-z0-9_]+)`", card.split("## Judge", 1)[1].split("\n## ", 1)[0]))
    assert set(UPSTREAM_WRONG) <= listed, set(UPSTREAM_WRONG) - listed
