"""Sandbox mechanics: verdicts, files in and out, parallel batches, isolation reporting."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from em_eval import sandbox
from em_eval.sandbox import bwrap, choose
from em_eval.sandbox.choose import plan_for
from em_eval.sandbox.execute import run_with
from em_eval.sandbox.plan import Plan


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
    code = (
        "import json\ndata = json.load(open('input.json'))\n"
        "open('out.txt', 'w').write(str(sum(data)))\nopen('sub/extra.txt').read()\n"
    )
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
        (
            1,
            "numpy._core._exceptions._ArrayMemoryError: Unable to allocate",
            False,
            ("memory", "numpy._core._exceptions._ArrayMemoryError: Unable to allocate"),
        ),
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
    monkeypatch.setattr(bwrap, "features", frozenset)
    argv = bwrap.argv(
        work=Path("/x/work"), uid=None, env={"A": "1"}, visible=[], tmpfs_mb=16, collect=(), size_cap=False
    )
    assert "--size" not in argv and "--disable-userns" not in argv
    assert argv[argv.index("/x/work") - 1 : argv.index("/x/work") + 2] == ["--bind", "/x/work", "/tmp"]
    plan = replace(plan_for("bwrap"), size_cap=False)
    assert "folder_size_watch" in plan.layers and "tmp_size_cap" not in plan.layers
    result = run_with(
        sandbox.Program(
            "open('out.txt', 'w').write('ok')\nprint(open('in.txt').read())",
            files={"in.txt": "hi"},
            collect=["out.txt"],
        ),
        plan,
    )
    assert result.passed and result.stdout == "hi\n" and result.files == {"out.txt": b"ok"}


# ---- choosing the layers -----------------------------------------------------------------------
@pytest.fixture
def fresh_plans(monkeypatch):
    """Forget the plans this process chose, so a test can decide again under its own conditions."""
    monkeypatch.setattr(choose, "_plans", {})


def test_without_bubblewrap_auto_refuses_code_tasks_before_generation(fresh_plans, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without bwrap
    monkeypatch.delenv(sandbox.ENV_VAR, raising=False)
    with pytest.raises(sandbox.SandboxError) as refused:
        sandbox.run_program("print(1)")
    message = str(refused.value)
    assert "bubblewrap is not installed" in message and "apt-get install bubblewrap" in message
    assert "EM_EVAL_SANDBOX=rlimits" in message and "auto (the default)" in message
    from em_eval.tasks.leetcode import task as code_tasks
    from em_eval.tasks.scicode import task as scicode_task

    for load in (
        code_tasks.load_leetcode,
        code_tasks.load_leetcodedataset,
        lambda: scicode_task.load_dataset(split="dev"),
    ):
        with pytest.raises(sandbox.SandboxError, match="apt-get install bubblewrap"):
            load()


@pytest.mark.parametrize(
    ("stderr", "needle"),
    [
        ("bwrap: setting up uid map: Permission denied", "user namespaces are disabled or restricted"),
        (
            "bwrap: No permission to create new namespace, likely because the kernel does not allow "
            "non-privileged user namespaces.",
            "user namespaces are disabled or restricted",
        ),
        ("bwrap: execvp /tmp/tmp.x/venv/bin/python: No such file or directory", "em-eval bug"),
        ("bwrap: Unknown option --size", "bubblewrap failed: bwrap: Unknown option --size"),
    ],
)
def test_bubblewrap_failures_name_their_cause(stderr, needle):
    assert needle in choose.explain_bwrap_failure(stderr)


def test_rlimits_mode_needs_seccomp(fresh_plans, monkeypatch):
    monkeypatch.setattr(choose, "libseccomp_loads", lambda: False)
    with pytest.raises(sandbox.SandboxError, match="libseccomp.so.2 cannot be loaded.*apt-get install libseccomp2"):
        sandbox.active_isolation("rlimits")


def test_rlimits_warning_names_what_is_missing_and_why(fresh_plans, caplog):
    with caplog.at_level("WARNING", logger="em_eval.sandbox"):
        layers = sandbox.active_isolation("rlimits")
    warning = caplog.text
    assert "WITHOUT bubblewrap" in warning and ", ".join(layers) in warning
    if os.geteuid() == 0 and "throwaway_uid" not in layers:
        assert "which other users cannot traverse" in warning or "throw-away uid cannot start" in warning


def test_seccomp_refuses_signals_to_other_processes_where_landlock_cannot_scope_them():
    """The rule for kernels whose Landlock ABI is below 6; signal 0 only asks for permission."""
    root = os.geteuid() == 0
    plan = Plan(
        bwrap=False, throwaway_uid=False, drop_caps=root, landlock_abi=0, seccomp=True, size_cap=False, root=root
    )
    assert {"seccomp_signals", "seccomp"} <= set(plan.layers) and "landlock_fs" not in plan.layers
    code = "import os\nos.kill(os.getpid(), 0)\nprint('self ok')\nos.kill(os.getppid(), 0)\n"
    result = run_with(sandbox.Program(code), plan)
    assert result.stdout == "self ok\n" and result.status == "error" and "Operation not permitted" in result.reason


def test_the_interpreter_stays_visible_when_it_lives_under_tmp(monkeypatch):
    venv = Path(tempfile.mkdtemp(prefix="em-sandbox-venv-", dir="/tmp"))
    try:
        argv = bwrap.argv(
            work=Path("/tmp/em-sandbox-x/work"),
            uid=None,
            env={},
            size_cap=True,
            tmpfs_mb=16,
            collect=(),
            visible=[str(venv / "lib"), str(venv / "lib" / "site"), "/usr/lib", "/tmp"],
        )
        after_tmpfs = argv[argv.index("--tmpfs", argv.index("--size")) + 2 :]
        lib = str(venv / "lib")  # bound back over the private /tmp, parents made traversable; /tmp itself never
        assert after_tmpfs[:7] == ["--perms", "0755", "--dir", str(venv), "--ro-bind", lib, lib]
        assert argv.count("--ro-bind") == 2
    finally:
        venv.rmdir()


@pytest.mark.parametrize("mode", ["rlimits", None])
def test_a_collected_file_replaced_by_the_program_is_its_verdict_not_the_batchs_end(mode):
    """A FIFO, a link or a folder in place of the file to return used to block the evaluator forever or end the
    whole batch with an exception; now that program's verdict says so and the batch goes on."""
    swaps = {
        "fifo": "import os\nos.remove('verdict.json')\nos.mkfifo('verdict.json')\n",
        "symlink": "import os\nos.remove('verdict.json')\nos.symlink('/etc/passwd', 'verdict.json')\n",
        "directory": "import os\nos.remove('verdict.json')\nos.mkdir('verdict.json')\n",
    }
    programs = [
        sandbox.Program(code, collect=("verdict.json",), limits=sandbox.Limits(timeout_s=10)) for code in swaps.values()
    ]
    programs.append(sandbox.Program("open('verdict.json', 'w').write('{}')\n", collect=("verdict.json",)))
    results = sandbox.run_programs(programs, mode=mode, progress=False)
    last = results.pop()
    assert last.passed and last.files == {"verdict.json": b"{}"}
    for kind, result in zip(swaps, results):
        replaced = "cannot be read back" in result.reason
        refused = mode is None and "Operation not permitted" in result.reason  # bubblewrap binds the file
        assert result.status == "error" and (replaced or refused), (kind, result.reason)
        assert "root:" not in repr(result.files)


@pytest.mark.skipif(os.geteuid() != 0, reason="throw-away uids exist only when the evaluator runs as root")
def test_a_throwaway_uid_in_use_is_skipped_and_no_process_the_run_did_not_start_is_signalled(monkeypatch):
    """Its clean-up used to SIGKILL every process of the uid: a process of another container that picked the same
    uid (invisible here, so the in-use check cannot see it) must survive the run beside it."""
    from em_eval.sandbox import execute

    plan = plan_for("bwrap")
    assert plan.throwaway_uid
    code = "import os\nprint(os.getuid())\n"
    first = execute._uid(execute._free_slots[-1])  # the uid the next run tries first
    seen = subprocess.Popen(["sleep", "60"], user=first, group=first, extra_groups=[])
    unseen = None
    try:
        assert execute.uid_in_use(first) == f"a process of uid {first} is running"
        assert int(run_with(sandbox.Program(code), plan).stdout) != first  # a uid in use is skipped
        monkeypatch.setattr(execute, "uid_in_use", lambda uid: None)  # as if the process lived in another container
        shared = execute._uid(execute._free_slots[-1])
        unseen = subprocess.Popen(["sleep", "60"], user=shared, group=shared, extra_groups=[])
        result = run_with(sandbox.Program(code + "import time\ntime.sleep(0.2)\n"), plan)
        assert int(result.stdout) == shared and unseen.poll() is None and seen.poll() is None
    finally:
        for proc in (seen, unseen):
            if proc:
                proc.kill()
                proc.wait()
