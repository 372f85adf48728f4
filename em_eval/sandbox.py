"""Run model-written Python programs in isolation: one process each, hard limits, a verdict.

Model code is hostile until proven otherwise. Every program runs as a separate
``python -I`` process with a minimal environment (no inherited tokens), a fresh directory as
cwd/HOME/TMPDIR and resource limits (CPU time, address space, file size, open files, number
of tasks) that are set *before* its first instruction, plus a wall-clock timeout that kills
the whole process tree. On top of that, where it works, bubblewrap (``bwrap``):

* the whole filesystem read-only (and ``nosuid``), the home directories masked;
* the only writable place is a private, size-capped tmpfs at ``/tmp`` (the cwd);
* new PID, network, IPC and UTS namespaces, ``--die-with-parent``;
* as root, the program runs under a throw-away uid (Linux exempts uid 0 from
  ``RLIMIT_NPROC``, so a fork bomb is only bounded under another uid); otherwise in a user
  namespace, with the task limit set inside it.

Where ``bwrap`` cannot run (some clusters forbid user namespaces), programs run with the
rlimits only, after one loud warning. ``EM_EVAL_SANDBOX`` chooses: ``auto`` (default: bwrap
when it works), ``bwrap`` (required; an error otherwise) or ``rlimits`` (opt out of bwrap).
Every :class:`ProgramResult` lists the isolation layers that were actually active.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

ENV_VAR = "EM_EVAL_SANDBOX"
MODES = ("auto", "bwrap", "rlimits")
STATUSES = ("passed", "failed", "timeout", "memory", "error")
SANDBOX_CWD = "/tmp"
MAIN = "main.py"
_UID_BASE = 3_000_000  # throw-away uids: _UID_BASE + pid * _SLOTS + slot (unique per live run)
_SLOTS = 256

# Runs first inside the sandbox: limits, no_new_privs, uid drop, then exec the real program.
_LAUNCHER = """\
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
for name, value in cfg["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value if name != "RLIMIT_CPU" else value + 1))
if ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:
    raise SystemExit("sandbox: PR_SET_NO_NEW_PRIVS failed")
if cfg["uid"] is not None:
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
os.execv(sys.executable, [sys.executable, "-I", cfg["main"]])
"""


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (not the program's fault)."""


@dataclass(frozen=True)
class Limits:
    """Per-program limits. Total memory is bounded by ``memory_mb * max_tasks``."""

    timeout_s: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 64
    tmpfs_mb: int = 256
    max_tasks: int = 8
    max_open_files: int = 256
    output_bytes: int = 65536


@dataclass(frozen=True)
class Program:
    """Source of ``main.py``, extra files beside it, files to return, paths to keep visible."""

    code: str
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    collect: Sequence[str] = ()
    readable_paths: Sequence[str] = ()
    limits: Limits = Limits()


@dataclass(frozen=True)
class ProgramResult:
    """Verdict of one run. ``status`` is one of :data:`STATUSES`; ``reason`` says why."""

    status: str
    reason: str
    stdout: str
    stderr: str
    duration_s: float
    returncode: int | None
    isolation: tuple[str, ...]
    files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def summary(self) -> dict[str, object]:
        """JSON-able digest for logs (no file contents)."""
        return {"status": self.status, "reason": self.reason, "duration_s": round(self.duration_s, 3),
                "isolation": list(self.isolation)}


# ---- verdicts ------------------------------------------------------------------------------
def classify(returncode: int | None, stderr: str, *, wall_timeout: bool, timeout_s: float) -> tuple[str, str]:
    """(status, reason) from how the program ended; pure."""
    if wall_timeout:
        return "timeout", f"wall-clock limit of {timeout_s:g} s exceeded"
    if returncode == 0:
        return "passed", ""
    last = _last_error_line(stderr)
    if returncode is not None and returncode < 0:
        sig = -returncode
        name = _signal_name(sig)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and "CPU" in last):
            return "timeout", f"CPU time limit exceeded ({name})"
        if sig == signal.SIGKILL:
            return "memory", "killed by SIGKILL (out of memory or task limit)"
        return "error", f"killed by {name}"
    if "MemoryError" in last:
        return "memory", last
    if last.startswith("AssertionError"):
        return "failed", last
    return "error", last or f"exit status {returncode}"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


# ---- isolation plan --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    use_bwrap: bool
    drop_uid: bool
    layers: tuple[str, ...]


_plan_lock = threading.Lock()
_plans: dict[str, _Plan] = {}


def isolation_mode() -> str:
    """The requested mode from ``EM_EVAL_SANDBOX`` (default ``auto``)."""
    mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise SandboxError(f"{ENV_VAR}={mode!r} is not one of {', '.join(MODES)}")
    return mode


def active_isolation(mode: str | None = None) -> tuple[str, ...]:
    """Layers programs get in this process (probes bwrap once)."""
    return _plan(mode or isolation_mode()).layers


def _plan(mode: str) -> _Plan:
    with _plan_lock:
        if mode not in _plans:
            _plans[mode] = _decide(mode)
        return _plans[mode]


def _decide(mode: str) -> _Plan:
    root = os.geteuid() == 0
    if mode != "rlimits":
        problem = _probe(_Plan(True, root, ()))
        if problem is None:
            return _Plan(True, root, _layers(True, root))
        if mode == "bwrap":
            raise SandboxError(f"{ENV_VAR}=bwrap but bubblewrap cannot run here: {problem}")
        log.warning(
            "\n" + "!" * 78 + "\n"
            "em_eval.sandbox: bubblewrap is unavailable (%s).\n"
            "Model-written code now runs with resource limits ONLY: it can read your files, open\n"
            "network connections and signal your processes. Install bubblewrap (Debian/Ubuntu:\n"
            "apt-get install bubblewrap) and allow user namespaces, or set %s=rlimits to accept\n"
            "this explicitly.\n" + "!" * 78, problem, ENV_VAR)
    drop = root and _probe(_Plan(False, True, ())) is None
    if root and not drop:
        log.warning("em_eval.sandbox: running as root without a usable throw-away uid: "
                    "RLIMIT_NPROC does not bind root, so the number of processes is unbounded")
    return _Plan(False, drop, _layers(False, drop))


def _layers(bwrap: bool, drop_uid: bool) -> tuple[str, ...]:
    layers = ["process_group", "clean_env", "rlimits", "no_new_privs"]
    if drop_uid:
        layers.append("throwaway_uid")
    if drop_uid or os.geteuid() != 0:  # Linux never applies RLIMIT_NPROC to uid 0
        layers.append("task_limit")
    if bwrap:
        layers += ["bwrap", "readonly_fs", "private_tmp", "pid_ns", "net_ns", "masked_home"]
        if "--size" in _bwrap_features():
            layers.append("tmp_size_cap")
    return tuple(layers)


_features: set[str] | None = None


def _bwrap_features() -> set[str]:
    """Options this bwrap knows among those added late (0.8.0): ``--size``, ``--disable-userns``."""
    global _features
    if _features is None:
        try:
            text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        _features = {opt for opt in ("--size", "--disable-userns") if opt in text}
    return _features


def _probe(plan: _Plan) -> str | None:
    """None when a trivial program runs under ``plan``; else what went wrong."""
    if plan.use_bwrap and not shutil.which("bwrap"):
        return "the bwrap executable is not on PATH"
    probe = "import sys\ntry:\n    import numpy\nexcept ImportError:\n    pass\nprint('sandbox-ok')\n"
    try:
        result = _run(Program(probe, limits=Limits(timeout_s=30)), plan)
    except (OSError, SandboxError) as exc:
        return str(exc)
    if result.stdout.strip() != "sandbox-ok":
        return (result.stderr.strip() or result.reason or "no output")[-400:]
    return None


# ---- running ---------------------------------------------------------------------------------
_slot_lock = threading.Lock()
_free_slots = list(range(_SLOTS))


def run_program(code: str, *, timeout_s: float = 10.0, memory_mb: int = 4096, mode: str | None = None,
                files: Mapping[str, str | bytes] | None = None, collect: Sequence[str] = (),
                readable_paths: Sequence[str] = (), **limits: int) -> ProgramResult:
    """Run ``code`` as ``main.py`` in the sandbox and return its verdict."""
    program = Program(code, dict(files or {}), tuple(collect), tuple(readable_paths),
                      Limits(timeout_s=timeout_s, memory_mb=memory_mb, **limits))
    return _run(program, _plan(mode or isolation_mode()))


def run_programs(programs: Sequence[Program], *, jobs: int | None = None, mode: str | None = None,
                 progress: bool = True, desc: str = "sandbox") -> list[ProgramResult]:
    """Run many programs, at most ``jobs`` (default: CPU count) at a time, in input order."""
    if not programs:
        return []
    plan = _plan(mode or isolation_mode())
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(programs), _SLOTS))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(lambda p: _run(p, plan), programs)
        return list(_progress(results, len(programs), desc) if progress else results)


def _progress(items: Iterable[ProgramResult], total: int, desc: str) -> Iterable[ProgramResult]:
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, disable=total < 8)


def _run(program: Program, plan: _Plan) -> ProgramResult:
    slot = _take_slot() if plan.drop_uid else None
    uid = _UID_BASE + os.getpid() * _SLOTS + slot if slot is not None else None
    base = Path(tempfile.mkdtemp(prefix="em-sandbox-"))
    try:
        return _run_in(program, plan, base, uid)
    finally:
        if uid is not None:
            _kill_uid(uid)
            _release_slot(slot)
        shutil.rmtree(base, ignore_errors=True)


def _run_in(program: Program, plan: _Plan, base: Path, uid: int | None) -> ProgramResult:
    lim = program.limits
    work = base / "work"
    work.mkdir()
    _write_files(work, {MAIN: program.code, **program.files})
    for name in program.collect:
        _safe_path(work, name).touch()
    if uid is not None:
        os.chmod(base, 0o711)
        for path in [work, *work.rglob("*")]:
            os.chown(path, uid, uid)
    cwd = SANDBOX_CWD if plan.use_bwrap else str(work)
    config = {"rlimits": _rlimits(lim, plan, uid), "uid": uid, "main": f"{cwd}/{MAIN}"}
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(config)]
    env = _clean_env(cwd)
    argv = _bwrap_argv(program, work, uid, env) + launcher if plan.use_bwrap else launcher
    with open(base / "stdout", "wb") as out, open(base / "stderr", "wb") as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=None if plan.use_bwrap else work, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True, close_fds=True)
        except OSError as exc:
            raise SandboxError(f"cannot start {argv[0]}: {exc}") from exc
        wall_timeout = False
        try:
            proc.wait(timeout=lim.timeout_s)
        except subprocess.TimeoutExpired:
            wall_timeout = True
        _kill_group(proc.pid)
        proc.wait()
        duration = time.perf_counter() - start
    stdout = _read_head(base / "stdout", lim.output_bytes)
    stderr = _read_tail(base / "stderr", lim.output_bytes)
    returncode = proc.returncode
    if plan.use_bwrap and returncode is not None and 128 < returncode < 128 + 65:
        returncode = 128 - returncode  # bwrap reports a child killed by signal N as exit status 128 + N
    status, reason = classify(returncode, stderr, wall_timeout=wall_timeout, timeout_s=lim.timeout_s)
    if plan.use_bwrap and proc.returncode == 1 and stderr.startswith("bwrap:"):
        status, reason = "error", f"sandbox failure: {stderr.strip()[:300]}"
    files = {name: _read_head_bytes(_safe_path(work, name), lim.file_size_mb << 20) for name in program.collect}
    return ProgramResult(status, reason, stdout, stderr, duration, returncode, plan.layers, files)


def _rlimits(lim: Limits, plan: _Plan, uid: int | None) -> dict[str, int]:
    # Tasks already counted against the limit when the program starts: with bwrap as non-root,
    # bwrap's init and the program share the namespace's count; as a throw-away uid, only the
    # program; as a plain user without bwrap, every task that user already runs.
    if uid is not None:
        baseline = 1
    elif plan.use_bwrap:
        baseline = 2
    else:
        baseline = _tasks_of_user(os.getuid()) + 1
    return {
        "RLIMIT_CPU": max(1, int(lim.timeout_s + 0.999) + 1),
        "RLIMIT_AS": lim.memory_mb << 20,
        "RLIMIT_FSIZE": lim.file_size_mb << 20,
        "RLIMIT_NOFILE": lim.max_open_files,
        "RLIMIT_NPROC": baseline + lim.max_tasks,
        "RLIMIT_CORE": 0,
    }


def _bwrap_argv(program: Program, work: Path, uid: int | None, env: Mapping[str, str]) -> list[str]:
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if uid is not None:  # privileged bwrap: keep only what the launcher needs to switch uid
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"] + [opt for opt in ["--disable-userns"] if opt in _bwrap_features()]
    for masked, keep in _masks(program.readable_paths):
        argv += ["--tmpfs", masked]
        for path in keep:
            for parent in _between(masked, path):
                argv += ["--perms", "0755", "--dir", parent]
            argv += ["--ro-bind", path, path]
    sized = "--size" in _bwrap_features()
    if sized:  # a RAM-backed /tmp capped at tmpfs_mb, the program's files bound into it
        argv += ["--perms", "1777", "--size", str(program.limits.tmpfs_mb << 20), "--tmpfs", SANDBOX_CWD]
    else:  # bwrap < 0.8 cannot cap a tmpfs: use the program's own folder on disk as /tmp
        argv += ["--bind", str(work), SANDBOX_CWD]
    for path in map(os.path.realpath, program.readable_paths):  # those the private /tmp would hide
        if path.startswith(SANDBOX_CWD + "/"):
            for parent in _between(SANDBOX_CWD, path):
                argv += ["--perms", "0755", "--dir", parent]
            argv += ["--ro-bind", path, path]
    for path in sorted(work.rglob("*")) if sized else ():
        rel = path.relative_to(work).as_posix()
        if path.is_dir():
            argv += ["--perms", "0755", "--dir", f"{SANDBOX_CWD}/{rel}"]
        else:
            argv += ["--bind" if rel in program.collect else "--ro-bind", str(path), f"{SANDBOX_CWD}/{rel}"]
    argv += ["--chdir", SANDBOX_CWD, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


def _masks(readable_paths: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Directories to hide behind an empty tmpfs, each with the paths to bind back inside it.

    Home directories are hidden (tokens, keys); so is any directory other users cannot
    traverse. The interpreter, its libraries and ``readable_paths`` stay visible."""
    needed = {os.path.realpath(p) for p in (sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix,
                                            *[p for p in sys.path if p], *readable_paths) if os.path.exists(p)}
    candidates = {os.path.realpath(os.path.expanduser("~")), "/root", "/home"}
    for path in needed:
        parts = Path(path).parts
        for depth in range(2, len(parts)):
            ancestor = str(Path(*parts[:depth]))
            try:
                if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                    candidates.add(ancestor)
                    break
            except OSError:
                break
    masks = [m for m in sorted(candidates) if os.path.isdir(m) and m != "/"]
    masks = [m for m in masks if not any(m.startswith(o + "/") for o in masks)]
    return [(m, sorted(p for p in needed if p.startswith(m + "/") and not any(
        p.startswith(q + "/") for q in needed if q.startswith(m + "/")))) for m in masks]


def _between(top: str, path: str) -> list[str]:
    """Directories strictly between ``top`` and ``path`` (created world-traversable)."""
    parts = Path(path).relative_to(top).parts[:-1]
    return [str(Path(top, *parts[: i + 1])) for i in range(len(parts))]


def _clean_env(cwd: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": cwd,
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
    }


def _write_files(work: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        path = _safe_path(work, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def _safe_path(work: Path, name: str) -> Path:
    path = (work / name).resolve()
    if not path.is_relative_to(work.resolve()) or path == work.resolve():
        raise ValueError(f"sandbox file name {name!r} must be a relative path inside the program folder")
    return path


def _read_head_bytes(path: Path, limit: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(limit)


def _read_head(path: Path, limit: int) -> str:
    return _read_head_bytes(path, limit).decode("utf-8", errors="replace")


def _read_tail(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - limit))
        return fh.read().decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_uid(uid: int, deadline_s: float = 5.0) -> None:
    """SIGKILL every process of a throw-away uid (also those that left the group) until none is left."""
    kill = shutil.which("kill")
    end = time.monotonic() + deadline_s
    while _pids_of_user(uid) and time.monotonic() < end:
        if kill:
            subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        time.sleep(0.005)


def _pids_of_user(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _tasks_of_user(uid: int) -> int:
    """Tasks (threads included) the user runs now: what RLIMIT_NPROC counts without a namespace."""
    total = 0
    for pid in _pids_of_user(uid):
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total


def _take_slot() -> int:
    with _slot_lock:
        if not _free_slots:
            raise SandboxError(f"more than {_SLOTS} concurrent sandboxed programs")
        return _free_slots.pop()


def _release_slot(slot: int) -> None:
    with _slot_lock:
        _free_slots.append(slot)

