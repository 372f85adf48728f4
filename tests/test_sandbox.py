"""Sandbox mechanics: verdicts, files in and out, parallel batches, isolation reporting."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

from em_eval import sandbox


def test_passing_program_reports_output_and_isolation():
    result = sandbox.run_program("import os\nprint('hello', os.getcwd() == os.environ['HOME'])")
    assert result.status == "passed" and result.passed and result.reason == ""
    assert result.stdout == "hello True\n" and result.returncode == 0
    assert result.isolation == sandbox.active_isolation() and "rlimits" in result.isolation
    assert 0 < result.duration_s < 10


def test_failed_assertion_and_crash_are_told_apart():
    assert sandbox.run_program("assert 1 + 1 == 3, 'arith'").reason == "AssertionError: arith"
    assert sandbox.run_program("assert False").status == "failed"
    crash = sandbox.run_program("raise KeyError('k')")
    assert (crash.status, crash.reason) == ("error", "KeyError: 'k'")
    syntax = sandbox.run_program("def broken(:\n")
    assert syntax.status == "error" and syntax.reason.startswith("SyntaxError")


def test_files_go_in_and_collected_files_come_back():
    code = ("import json\ndata = json.load(open('input.json'))\n"
            "open('out.txt', 'w').write(str(sum(data)))\nopen('sub/extra.txt').read()\n")
    result = sandbox.run_program(code, files={"input.json": "[1, 2, 3]", "sub/extra.txt": b"x"}, collect=["out.txt"])
    assert result.passed, result
    assert result.files == {"out.txt": b"6"}


def test_given_files_are_read_only_in_bwrap_mode():
    if "bwrap" not in sandbox.active_isolation():
        pytest.fail("bubblewrap is expected in this environment (apt-get install bubblewrap)")
    result = sandbox.run_program("open('data.txt', 'w').write('changed')", files={"data.txt": "orig"})
    assert result.status == "error" and "Read-only file system" in result.reason


def test_readable_paths_stay_visible_under_a_masked_home():
    home = Path(os.path.expanduser("~"))
    hidden = Path(tempfile.mkdtemp(dir=home, prefix=".em-sandbox-test-"))
    try:
        target = hidden / "targets.txt"
        target.write_text("42")
        target.chmod(0o644)
        hidden.chmod(0o755)
        code = f"print(open({str(target)!r}).read())"
        assert sandbox.run_program(code).status == "error"  # masked by default
        shown = sandbox.run_program(code, readable_paths=[str(target)])
        assert shown.passed and shown.stdout.strip() == "42"
    finally:
        target.unlink()
        hidden.rmdir()


def test_file_names_must_stay_inside_the_program_folder():
    with pytest.raises(ValueError, match="relative path inside"):
        sandbox.run_program("pass", files={"../escape.py": "x"})


def test_batch_keeps_input_order_and_runs_in_parallel():
    programs = [sandbox.Program(f"import time\ntime.sleep(0.5)\nprint({i})") for i in range(4)]
    results = sandbox.run_programs(programs, jobs=4, progress=False)
    assert [r.stdout.strip() for r in results] == ["0", "1", "2", "3"]
    assert all(r.passed for r in results)
    assert sandbox.run_programs([]) == []


def test_bad_mode_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(sandbox.ENV_VAR, "docker")
    with pytest.raises(sandbox.SandboxError, match="EM_EVAL_SANDBOX='docker' is not one of auto, bwrap, rlimits"):
        sandbox.run_program("pass")


def test_rlimits_mode_is_recorded(monkeypatch):
    monkeypatch.setenv(sandbox.ENV_VAR, "rlimits")
    result = sandbox.run_program("print(1)")
    assert result.passed and "bwrap" not in result.isolation and "rlimits" in result.isolation


@pytest.mark.parametrize(
    ("returncode", "stderr", "wall", "expected"),
    [
        (0, "", False, ("passed", "")),
        (1, "Traceback...\nAssertionError", False, ("failed", "AssertionError")),
        (1, "Traceback...\nMemoryError\n", False, ("memory", "MemoryError")),
        (1, "numpy._core._exceptions._ArrayMemoryError: Unable to allocate", False,
         ("memory", "numpy._core._exceptions._ArrayMemoryError: Unable to allocate")),
        (-signal.SIGXCPU, "", False, ("timeout", "CPU time limit exceeded (SIGXCPU)")),
        (-signal.SIGKILL, "", False, ("memory", "killed by SIGKILL (out of memory or task limit)")),
        (None, "", True, ("timeout", "wall-clock limit of 3 s exceeded")),
        (3, "", False, ("error", "exit status 3")),
    ],
)
def test_classify(returncode, stderr, wall, expected):
    assert sandbox.classify(returncode, stderr, wall_timeout=wall, timeout_s=3) == expected


def test_cpu_limit_is_a_timeout():
    result = sandbox.run_program("import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)")
    assert result.status == "timeout" and "SIGXCPU" in result.reason


def test_bwrap_without_tmpfs_size_uses_the_program_folder(monkeypatch):
    """bubblewrap < 0.8 (Ubuntu 22.04 ships 0.6) lacks --size and --disable-userns."""
    monkeypatch.setattr(sandbox, "_features", set())
    argv = sandbox._bwrap_argv(sandbox.Program("pass"), Path("/x/work"), None, {"A": "1"})
    assert "--size" not in argv and "--disable-userns" not in argv
    assert argv[argv.index("/x/work") - 1: argv.index("/x/work") + 2] == ["--bind", "/x/work", "/tmp"]
    result = sandbox._run(sandbox.Program("open('out.txt', 'w').write('ok')\nprint(open('in.txt').read())",
                                          files={"in.txt": "hi"}, collect=["out.txt"]),
                          sandbox._Plan(True, os.geteuid() == 0, ("bwrap",)))
    assert result.passed and result.stdout == "hi\n" and result.files == {"out.txt": b"ok"}
