"""Hostile programs judged as em_livecodebench solutions are contained.

The same programs and evaluator as ``test_sandbox_hostile.py`` (``sandbox_hostile_runner.py``, inside
an outer PID namespace built by the test, with a canary process and a file to protect), here each
handed to LiveCodeBench's judge as a stdin/stdout solution: the judge runs them inside its harness,
in the process it shares with them, so this checks that the harness adds no way out. One mode
(bubblewrap) and this interpreter; the matrix of modes, users and interpreter locations is the
sandbox's own test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_sandbox_hostile import EXPECTED, RUNNER, _outer_layer

JUDGED = {  # program -> (status, in the reason): what LiveCodeBench's judge makes of it under bubblewrap
    "benign": ("passed", ""),
    "infinite_loop": ("timeout", "Time Limit Exceeded"),
    "fork_bomb": ("timeout", "Time Limit Exceeded"),
    "allocate_50gb": ("error", "MemoryError"),
    "allocate_50gb_numpy": ("error", "MemoryError"),
    "write_10gb": ("error", "File too large"),
    "fill_the_folder": ("error", "No space left on device"),
    "delete_outside": ("error", "Read-only file system"),
    "kill_parent": ("error", "Operation not permitted"),
    "kill_everything": ("failed", "Wrong answer at line 0:  != 6"),  # its SystemExit(3) ends the run quietly
    "read_environment_secrets": ("error", "AssertionError"),
    "read_home_secret": ("error", "FileNotFoundError"),
    "orphan_left_behind": ("failed", "Wrong answer at line 0: left a child != 6"),
    "open_socket": ("error", "Operation not permitted"),
}


@pytest.fixture(scope="module")
def report() -> dict:
    outer = _outer_layer()
    if outer is None:
        pytest.skip(
            "!!! NOT RUN: util-linux unshare cannot make an outer PID namespace here, which must hold "
            "hostile programs if the sandbox under test broke"
        )
    env = {k: v for k, v in os.environ.items() if k != "EM_EVAL_SANDBOX"}
    done = subprocess.run(
        outer + [sys.executable, str(RUNNER), "bwrap", "--via-livecodebench"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("HOSTILE-REPORT ")]
    assert done.returncode == 0 and lines, f"the evaluator did not finish the run:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1].removeprefix("HOSTILE-REPORT "))


def test_the_evaluator_and_its_neighbours_survive(report):
    assert report["canary_alive"], "a process of the evaluator's user was killed"
    assert report["victim_intact"], "a file outside the program's folder was changed"
    assert report["leftover_processes"] == [] and report["leftover_folders"] == []
    assert {"bwrap", "pid_ns", "net_ns", "readonly_fs", "seccomp"} <= set(report["results"]["benign"]["isolation"])


def test_every_hostile_program_of_the_sandbox_test_is_judged():
    assert set(JUDGED) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(JUDGED))
def test_hostile_solution_is_scored_with_the_reason(report, name):
    result = report["results"][name]
    status, needle = JUDGED[name]
    assert result["status"] == status and needle in result["reason"], result
    assert "s3cr3t" not in result["reason"].lower()
