"""Hostile programs: each must end fast as a failure with a reason, harming nothing outside.

The default mode here is bubblewrap (CI installs it); the rlimits-only fallback is checked on
the attacks that resource limits alone can stop.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from em_eval import sandbox

TIMEOUT_S = 2.0


def _sandbox_processes() -> list[int]:
    """Live processes owned by this process's throw-away uids."""
    first = sandbox._UID_BASE + os.getpid() * sandbox._SLOTS
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if first <= entry.stat().st_uid < first + sandbox._SLOTS:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _leftover_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("em-sandbox-*")}


@pytest.fixture(autouse=True)
def private_tempdir(monkeypatch):
    """Programs' folders go to a folder of this test's own, so other runs cannot confuse the check."""
    root = Path(tempfile.mkdtemp(prefix="em-sandbox-tests-"))
    root.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    root.rmdir()  # fails if a program's folder was left behind


@pytest.fixture(scope="module")
def bwrap_mode() -> str:
    layers = sandbox.active_isolation("bwrap")  # raises SandboxError when bwrap cannot run
    assert {"bwrap", "pid_ns", "net_ns", "readonly_fs", "task_limit"} <= set(layers)
    return "bwrap"


def _run(code: str, mode: str, timeout_s: float = TIMEOUT_S, **kwargs) -> sandbox.ProgramResult:
    before = _leftover_dirs()
    start = time.perf_counter()
    result = sandbox.run_program(code, timeout_s=timeout_s, mode=mode, **kwargs)
    elapsed = time.perf_counter() - start
    assert elapsed < timeout_s + 5, f"took {elapsed:.1f} s"
    assert result.status != "passed" and result.reason, result
    assert _leftover_dirs() <= before, "the program's temp folder was not removed"
    assert _sandbox_processes() == [], "processes survived the program"
    return result


INFINITE_LOOP = "while True:\n    pass\n"
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
HUGE_ALLOCATION = "block = bytearray(50 * 2**30)\n"
HUGE_NUMPY_ALLOCATION = "import numpy as np\nblock = np.ones(50 * 2**30 // 8)\n"
HUGE_WRITE = "chunk = b'x' * 2**20\nwith open('big.bin', 'wb') as fh:\n    for _ in range(10 * 1024):\n        fh.write(chunk)\n"
MANY_FILES = "chunk = b'x' * 2**20\nfor i in range(10 * 1024):\n    with open(f'part{i}.bin', 'wb') as fh:\n        fh.write(chunk)\n"


def test_infinite_loop_times_out(bwrap_mode):
    result = _run(INFINITE_LOOP, bwrap_mode)
    assert result.status == "timeout" and "limit" in result.reason


def test_fork_bomb_is_contained(bwrap_mode):
    result = _run(FORK_BOMB, bwrap_mode)
    assert result.status == "timeout"
    assert os.fork is not None  # we are alive and can still spawn processes
    assert sandbox.run_program("print(1)", mode=bwrap_mode).passed


@pytest.mark.parametrize("code", [HUGE_ALLOCATION, HUGE_NUMPY_ALLOCATION], ids=["bytearray", "numpy"])
def test_50gb_allocation_is_a_memory_failure(bwrap_mode, code):
    result = _run(code, bwrap_mode)
    assert result.status == "memory" and "MemoryError" in result.reason


def test_10gb_write_stops_at_the_file_size_limit(bwrap_mode):
    result = _run(HUGE_WRITE, bwrap_mode, timeout_s=30)
    assert result.status == "error" and "File too large" in result.reason


def test_many_files_fill_only_the_private_tmpfs(bwrap_mode):
    result = _run(MANY_FILES, bwrap_mode, timeout_s=30)
    assert result.status == "error" and "No space left on device" in result.reason


def test_deleting_files_outside_its_folder_fails(bwrap_mode):
    victim_dir = Path(tempfile.mkdtemp(prefix="em-sandbox-victim-", dir="/var/tmp"))
    victim = victim_dir / "precious.txt"
    victim.write_text("keep me")
    victim_dir.chmod(0o777)  # world-writable: only the read-only mount may stop the program
    victim.chmod(0o666)
    try:
        code = (f"import os, shutil\nos.remove({str(victim)!r})\n"
                f"shutil.rmtree({str(victim_dir)!r})\n")
        result = _run(code, bwrap_mode)
        assert result.status == "error" and "Read-only file system" in result.reason
        assert victim.read_text() == "keep me"
    finally:
        victim.unlink()
        victim_dir.rmdir()


def test_killing_its_parent_fails(bwrap_mode):
    code = (f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)\n"
            "os.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n")
    result = _run(code, bwrap_mode)
    assert result.status == "error"
    assert any(e in result.reason for e in ("ProcessLookupError", "PermissionError", "killed by"))


def test_environment_secrets_are_not_inherited(bwrap_mode, monkeypatch):
    monkeypatch.setenv("EM_EVAL_TEST_SECRET", "s3cr3t-token")
    monkeypatch.setenv("HF_TOKEN", "hf_s3cr3t")
    code = ("import os, glob\nleaks = [k for k in os.environ if 'S3CR3T' in os.environ[k].upper()]\n"
            "for path in glob.glob('/proc/*/environ'):\n"
            "    try:\n        leaks += [path] if b's3cr3t' in open(path, 'rb').read() else []\n"
            "    except OSError:\n        pass\n"
            "print(sorted(os.environ))\nassert not leaks, leaks\nassert 'HF_TOKEN' in os.environ\n")
    result = _run(code, bwrap_mode)
    assert result.status == "failed" and "HF_TOKEN" not in result.stdout
    assert "s3cr3t" not in result.stdout + result.stderr


def test_home_directory_is_masked(bwrap_mode):
    home = os.path.expanduser("~")
    result = _run(f"import os\nprint(os.listdir({home!r}))\nassert False, 'listed'\n", bwrap_mode)
    assert result.status == "failed"
    listed = eval(result.stdout.strip())  # noqa: S307 - a printed list of names
    assert set(listed) < set(os.listdir(home)) or not os.listdir(home)


def test_opening_a_socket_fails(bwrap_mode):
    code = "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)\n"
    result = _run(code, bwrap_mode)
    assert result.status == "error" and "unreachable" in result.reason.lower()


# ---- rlimits-only fallback --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "needle"),
    [(INFINITE_LOOP, "timeout", "limit"), (HUGE_ALLOCATION, "memory", "MemoryError"),
     (HUGE_WRITE, "error", "File too large")],
    ids=["loop", "allocation", "write"],
)
def test_rlimits_fallback_stops_resource_attacks(code, status, needle):
    result = _run(code, "rlimits", timeout_s=TIMEOUT_S if code == INFINITE_LOOP else 30)
    assert "bwrap" not in result.isolation and "rlimits" in result.isolation
    # the fork-bomb guard needs a uid other than 0; without bwrap it is only there for non-root users
    assert ("task_limit" in result.isolation) == (os.geteuid() != 0 or "throwaway_uid" in result.isolation)
    assert result.status == status and needle in result.reason


def test_rlimits_fallback_does_not_inherit_secrets(monkeypatch):
    monkeypatch.setenv("EM_EVAL_TEST_SECRET", "s3cr3t-token")
    result = _run("import os\nassert 'EM_EVAL_TEST_SECRET' in os.environ\n", "rlimits")
    assert result.status == "failed"


def test_signal_names_in_reasons():
    status, reason = sandbox.classify(-signal.SIGSEGV, "", wall_timeout=False, timeout_s=1)
    assert (status, reason) == ("error", "killed by SIGSEGV")
