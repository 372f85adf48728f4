"""Hostile programs, each in both modes (bubblewrap and the rlimits opt-in), with the interpreter
under /tmp and under a 0700 directory, as root and as a normal user. With the interpreter under
/tmp the plan is played as on an older machine (bubblewrap 0.6.1 without ``--size``, Landlock
ABI 4 without signal scoping: Ubuntu 22.04 / 24.04), whatever this one has.

Every combination runs ``sandbox_hostile_runner.py`` (the evaluator) inside an outer PID
namespace built by the test itself, not by the sandbox under test: a program that signals
every process it can see then cannot reach this machine even if the sandbox is broken. The
evaluator must survive every program and finish the run, and so must a canary process of the
same user. Each program must end as a failure with the right reason.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import em_eval

HERE = Path(__file__).resolve().parent
REPO = Path(em_eval.__file__).resolve().parents[1]  # the runner imports the em_eval under test, not another install
RUNNER = HERE / "sandbox_hostile_runner.py"
TEST_UID = 2_900_000 + os.getpid() % 50_000  # a normal user with no other processes
ROOT = os.geteuid() == 0
MODES = ("bwrap", "rlimits")
LOCATIONS = ("tmp", "private")  # interpreter under /tmp, or under a 0700 directory outside it
USERS = ("root", "user") if ROOT else ("user",)
COMBOS = [(m, loc, u) for m in MODES for loc in LOCATIONS for u in USERS]

FS_REFUSED = {"bwrap": "Read-only file system", "rlimits": "Permission denied"}
FOLDER_FULL = {"bwrap": "No space left on device", "rlimits": "into its folder"}
EXPECTED = {  # program -> (status, any of these in the reason), per mode where it differs
    "benign": ("passed", ("",)),
    "infinite_loop": ("timeout", ("limit",)),
    "fork_bomb": ("timeout", ("limit",)),
    "allocate_50gb": ("memory", ("MemoryError",)),
    "allocate_50gb_numpy": ("memory", ("MemoryError",)),
    "write_10gb": ("error", ("File too large",)),
    "fill_the_folder": ("error", FOLDER_FULL),
    "delete_outside": ("error", FS_REFUSED),
    "kill_parent": ("error", ("ProcessLookupError", "PermissionError")),
    "kill_everything": ("error", ("exit status 3",)),
    "read_environment_secrets": ("failed", ("AssertionError",)),
    "read_home_secret": ("error", ("FileNotFoundError", "PermissionError")),
    "orphan_left_behind": ("passed", ("",)),  # its child is killed and reaped: no leftover, no zombie
    "open_socket": ("error", ("Operation not permitted", "unreachable")),
}
MORE = {  # run directly only, not as LiveCodeBench solutions (issue 24)
    "change_metadata": ("error", ("nothing changed",)),
    "lower_parent_limits": ("error", ("Operation not permitted",)),
    "signal_through_sigio": ("error", ("refused", "sent to")),  # sent: Landlock scopes (drops) the signal
    "read_beside_the_evaluator": ("error", ("nothing beside the evaluator is readable",)),
    "hide_a_subfolder": ("error", FOLDER_FULL),  # a subfolder it cannot list is still counted
    "flood_empty_files": ("error", ("into its folder",)),
}
PLAYED_OLD = {  # no Landlock signal scope: seccomp refuses; no --size: the folder on disk is watched
    "signal_through_sigio": ("error", ("Operation not permitted",)),
    "fill_the_folder": ("error", ("into its folder",)),
    "hide_a_subfolder": ("error", ("into its folder",)),
}


def _traversable(path: str, uid: int) -> bool:
    st = os.stat(path)
    return bool(st.st_mode & stat.S_IXOTH or (st.st_uid == uid and st.st_mode & stat.S_IXUSR) or uid == 0)


def _interpreter(location: str, owner: int) -> Path:
    """A fresh venv (no pip) at ``location`` whose site-packages chain to this environment's.

    Under /tmp it is made from the system's Python of the same version where there is one (as a
    CI job's venv would be), so that every path of it is reachable by other users."""
    if location == "tmp":
        top = Path(tempfile.mkdtemp(prefix="em-hostile-py-", dir="/tmp"))
        top.chmod(0o755)
        system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
        base = str(system) if system.is_file() else sys.executable
    else:
        top = Path(tempfile.mkdtemp(prefix="em-hostile-py-", dir="/var/tmp"))  # mkdtemp makes it 0700
        base = sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(top / "venv")], check=True)
    python = top / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    chain = "".join(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages())
    Path(purelib, "em_eval_chain.pth").write_text(chain)
    for path in [top, *top.rglob("*")]:
        os.lchown(path, owner, owner)
    return python


def _visible(python: Path) -> list[str]:
    """What ``python`` needs to run the runner: its prefixes, sys.path and this checkout."""
    out = subprocess.run(
        [
            python,
            "-c",
            "import json, sys; print(json.dumps([sys.executable, sys.prefix, "
            "sys.base_prefix, *[p for p in sys.path if p]]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = {os.path.realpath(p) for p in json.loads(out) if os.path.exists(p)} | {str(REPO), str(python.parent.parent)}
    return sorted(paths)


def _outer_layer() -> list[str] | None:
    """util-linux ``unshare``: new PID and mount namespaces around the runner, /proc of its own."""
    if not shutil.which("unshare"):
        return None
    args = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if not ROOT:
        args[1:1] = ["--user", "--map-current-user"]
    return args if subprocess.run(args + ["true"], capture_output=True).returncode == 0 else None


def _reach(uid: int, visible: list[str]) -> dict[str, list[str]]:
    """Directories ``uid`` cannot traverse, each with the visible paths inside it (made reachable
    in the outer mount namespace only)."""
    masked = sorted({a for p in visible for a in _ancestors(p) if not _traversable(a, uid)})
    masked = [m for m in masked if not any(m != o and m.startswith(o + "/") for o in masked)]
    outermost = [p for p in visible if not any(q != p and p.startswith(q + "/") for q in visible)]
    return {m: [p for p in outermost if p.startswith(m + "/")] for m in masked}


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts
    return [str(Path(*parts[:i])) for i in range(2, len(parts) + 1) if os.path.isdir(Path(*parts[:i]))]


@pytest.fixture(scope="module", params=COMBOS, ids=["-".join(c) for c in COMBOS])
def report(request) -> dict:
    mode, location, user = request.param
    uid = 0 if user == "root" else (TEST_UID if ROOT else os.geteuid())
    python = _interpreter(location, uid)
    try:
        outer = _outer_layer()
        if outer is None:
            pytest.skip(
                "!!! NOT RUN: util-linux unshare cannot make an outer PID namespace here, which must hold "
                "hostile programs if the sandbox under test broke"
            )
        argv = outer + [str(python), str(RUNNER), mode] + (["--play-old"] if location == "tmp" else [])
        if ROOT and uid:
            argv += ["--uid", str(uid), "--reach", json.dumps(_reach(uid, _visible(python)))]
        env = {k: v for k, v in os.environ.items() if k != "EM_EVAL_SANDBOX"} | {"PYTHONPATH": str(REPO)}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        lines = [line for line in done.stdout.splitlines() if line.startswith("HOSTILE-REPORT ")]
        assert done.returncode == 0 and lines, f"the evaluator did not finish the run:\n{done.stdout}\n{done.stderr}"
        result = json.loads(lines[-1].removeprefix("HOSTILE-REPORT "))
        result["combo"], result["visible"] = request.param, _visible(python)
        return result
    finally:
        shutil.rmtree(python.parent.parent.parent, ignore_errors=True)


def test_the_evaluator_and_its_neighbours_survive(report):
    mode, location, user = report["combo"]
    assert report["canary_alive"], "a process of the evaluator's user was killed"
    assert report["bystander_alive"], "a process under a throw-away uid the sandbox did not start was killed"
    assert report["victim_intact"], "a file outside the program's folder was changed"
    assert report["leftover_processes"] == [] and report["leftover_folders"] == []
    assert report["uid"] == (0 if user == "root" else (TEST_UID if ROOT else os.geteuid()))
    assert ("/tmp/" if location == "tmp" else "/var/tmp/") in report["python"]
    layers = set(report["results"]["benign"]["isolation"])
    if location == "tmp":  # played old
        assert "seccomp_signals" in layers and "landlock_signal_scope" not in layers and "tmp_size_cap" not in layers
    if mode == "bwrap":
        assert {"bwrap", "pid_ns", "net_ns", "readonly_fs", "task_limit"} <= layers
        assert ("tmp_size_cap" in layers) == (location == "private")
        assert ("throwaway_uid" in layers) == (user == "root")
    else:
        assert "bwrap" not in layers and {"seccomp", "landlock_fs", "rlimits"} <= layers
        needed = [p for p in report["visible"] if not p.startswith(str(REPO))]  # programs see no checkout
        reachable = not any(not os.stat(a).st_mode & stat.S_IXOTH for p in needed for a in _ancestors(p)[:-1])
        assert ("throwaway_uid" in layers) == (user == "root" and reachable)
        assert ("no_fork" in layers) == (user == "root" and not reachable)


@pytest.mark.parametrize("name", sorted(EXPECTED | MORE))
def test_hostile_program_is_contained(report, name):
    mode, location, _ = report["combo"]
    result = report["results"][name]
    status, needles = (PLAYED_OLD if location == "tmp" else {}).get(name) or (EXPECTED | MORE)[name]
    needles = needles[mode] if isinstance(needles, dict) else needles
    assert result["status"] == status and any(n in result["reason"] for n in needles), result
    if name == "benign":
        assert result["stdout"].strip() == "6"
    if name.startswith("read_"):
        assert "s3cr3t" not in result["stdout"] + result["reason"] and "HF_TOKEN" not in result["stdout"]
