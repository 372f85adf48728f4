"""Running one program under a :class:`~em_eval.sandbox.plan.Plan` and judging how it ended."""

from __future__ import annotations

import functools
import grp
import json
import os
import pwd
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import em_eval.sandbox.bwrap as bwrap
from em_eval.sandbox.launcher import FAILED as LAUNCHER_FAILED
from em_eval.sandbox.paths import SANDBOX_CWD, interpreter_paths, readable_paths
from em_eval.sandbox.plan import Plan, SandboxError

STATUSES = ("passed", "failed", "timeout", "memory", "error")
MAIN = "main.py"
UID_BASE = 3_000_000  # throw-away uids: UID_BASE + pid * SLOTS + slot (unique per live run), if unused
SLOTS = 256
WATCH_INTERVAL_S = 0.1
_LAUNCHER_SOURCE = (Path(__file__).with_name("launcher.py")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Limits:
    """Per-program limits. Total memory is bounded by ``memory_mb * max_tasks``; ``tmpfs_mb``
    caps what the program may write into its folder, ``max_files`` the files and folders it may
    leave there (empty ones cost inodes, kernel memory outside every other limit)."""

    timeout_s: float = 10.0
    memory_mb: int = 4096
    file_size_mb: int = 64
    tmpfs_mb: int = 256
    max_tasks: int = 8
    max_open_files: int = 256
    output_bytes: int = 65536
    max_files: int = 10_000


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
        return {
            "status": self.status,
            "reason": self.reason,
            "duration_s": round(self.duration_s, 3),
            "isolation": list(self.isolation),
        }


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


# ---- running ---------------------------------------------------------------------------------
_slot_lock = threading.Lock()
_free_slots = list(range(SLOTS))


def run_with(program: Program, plan: Plan) -> ProgramResult:
    """Run ``program`` under ``plan`` in a fresh folder that is removed afterwards."""
    slot = _take_slot() if plan.throwaway_uid else None
    uid = _uid(slot) if slot is not None else None
    base = Path(tempfile.mkdtemp(prefix="em-sandbox-"))
    try:
        return _run_in(program, plan, base, uid)
    finally:
        if slot is not None:
            _release_slot(slot)
        remove_tree(base)


def _run_in(program: Program, plan: Plan, base: Path, uid: int | None) -> ProgramResult:
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
    cwd = SANDBOX_CWD if plan.bwrap else str(work)
    config = json.dumps(_launcher_config(program, plan, uid, cwd))
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER_SOURCE, config]
    env = _clean_env(cwd)
    if plan.bwrap:
        argv = (
            bwrap.argv(
                work=work,
                uid=uid,
                env=env,
                visible=interpreter_paths(program.readable_paths),
                tmpfs_mb=lim.tmpfs_mb,
                collect=program.collect,
                size_cap=plan.size_cap,
            )
            + launcher
        )
    else:
        argv = launcher
    with open(base / "stdout", "w+b") as out, open(base / "stderr", "w+b") as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=None if plan.bwrap else work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start {argv[0]}: {exc}") from exc
        if plan.size_cap:  # bubblewrap's tmpfs caps bytes, not files: empty ones cost kernel memory
            full = functools.partial(_tmpfs_inodes_over, proc.pid, lim.max_files, os.stat(SANDBOX_CWD).st_dev)
        else:
            full = functools.partial(_disk_usage_over, work, lim.tmpfs_mb << 20, lim.max_files)
        ended = _wait(proc, lim, full)
        inner = _namespace_init(proc.pid) if plan.bwrap else None
        _kill_group(proc.pid)
        proc.wait()
        _end_group(proc.pid)
        if inner:
            _await_namespace_end(*inner)
        duration = time.perf_counter() - start
        # read through the files this process opened: a program may replace the paths (with a FIFO, a link)
        stdout = _head(out, lim.output_bytes)
        stderr = _tail(err, lim.output_bytes)
    returncode = proc.returncode
    if plan.bwrap and returncode is not None and 128 < returncode < 128 + 65:
        returncode = 128 - returncode  # bwrap reports a child killed by signal N as exit status 128 + N
    status, reason = classify(returncode, stderr, wall_timeout=ended == "timeout", timeout_s=lim.timeout_s)
    if ended == "folder_full":
        status, reason = (
            "error",
            (f"wrote more than {lim.tmpfs_mb} MB or {lim.max_files} files into its folder (killed)"),
        )
    elif (plan.bwrap and proc.returncode == 1 and stderr.startswith("bwrap:")) or (
        proc.returncode == LAUNCHER_FAILED and stderr.startswith("sandbox:")
    ):
        status, reason = "error", f"sandbox failure: {stderr.strip()[:300]}"
    files = {}
    for name in program.collect:
        try:
            files[name] = read_collected(work, name, lim.file_size_mb << 20)
        except OSError as exc:  # the program replaced it: its verdict, not the batch's end
            status, reason = "error", f"its file {name} cannot be read back ({exc.strerror or exc})"
    return ProgramResult(status, reason, stdout, stderr, duration, returncode, plan.layers, files)


def _wait(proc: subprocess.Popen, lim: Limits, full: Callable[[], bool]) -> str:
    """ "exited", "timeout", or "folder_full" when ``full()`` says so (asked every :data:`WATCH_INTERVAL_S`)."""
    deadline = time.monotonic() + lim.timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        try:
            proc.wait(timeout=min(left, WATCH_INTERVAL_S))
            return "folder_full" if full() else "exited"  # it may have filled the folder since the last look
        except subprocess.TimeoutExpired:
            if full():
                return "folder_full"


def _disk_usage_over(folder: Path, limit: int, max_entries: int) -> bool:
    return _disk_usage(folder, max_entries) > limit


def _tmpfs_inodes_over(bwrap_pid: int, limit: int, host_tmp_dev: int) -> bool:
    """Whether the program's private /tmp (bubblewrap's tmpfs, seen through /proc from a process inside its mount
    namespace) holds more than ``limit`` inodes; False until bubblewrap has mounted it."""
    try:
        path = f"/proc/{_child(bwrap_pid)}/root{SANDBOX_CWD}"
        if os.stat(path).st_dev == host_tmp_dev:
            return False
        vfs = os.statvfs(path)
    except (OSError, LookupError):
        return False
    return vfs.f_files - vfs.f_ffree > limit


def _disk_usage(folder: Path, max_entries: int = Limits.max_files) -> int:
    """Bytes the folder holds; past ``max_entries`` entries (empty files and folders cost inodes too),
    or with a part that cannot be read even after giving its owner the rights back, infinite: the program is
    stopped either way. A subfolder the program made unlistable (``mkdir(name, 0o300)``) is counted like any
    other."""
    total, entries_seen = 0, 0
    stack = [str(folder)]
    while stack:
        path = stack.pop()
        try:
            entries = _scan(path)
        except PermissionError:
            if not _give_rights_back_at(folder, path):
                return 1 << 62
            try:
                entries = _scan(path)
            except OSError:
                return 1 << 62
        except OSError:
            return 1 << 62
        entries_seen += len(entries)
        if entries_seen > max_entries:
            return 1 << 62
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def _scan(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as entries:
        return list(entries)


def _give_rights_back_at(top: Path, path: str) -> bool:
    try:
        fd = os.open(top, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return give_rights_back(fd, Path(path).relative_to(top).parts)
    finally:
        os.close(fd)


def give_rights_back(dir_fd: int, parts: Sequence[str] = ()) -> bool:
    """Make the folder ``parts`` below ``dir_fd`` (or ``dir_fd`` itself) 0700 again, so its owner may list, enter
    and empty it, reaching it without following a link in any component (a running program may swap one in).
    Folders on the way that cannot be entered get the same. False when that fails."""
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.dup(dir_fd)
    except OSError:
        return False
    try:
        for part in parts:
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except PermissionError:
                _chmod_fd(fd)
                inner = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = inner
        _chmod_fd(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _chmod_fd(fd: int) -> None:
    os.chmod(f"/proc/self/fd/{fd}", 0o700)  # also for an O_PATH descriptor, which fchmod refuses


def _launcher_config(program: Program, plan: Plan, uid: int | None, cwd: str) -> dict[str, object]:
    return {
        "rlimits": _rlimits(program.limits, plan, uid),
        "uid": uid,
        "drop_caps": plan.drop_caps,
        "landlock": {**readable_paths(program.readable_paths, cwd), "abi": plan.landlock_abi}
        if plan.landlock_abi >= 1
        else None,
        "seccomp": {"signals": plan.seccomp_signals, "no_fork": plan.no_fork} if plan.seccomp else None,
        "main": f"{cwd}/{MAIN}",
    }


def _rlimits(lim: Limits, plan: Plan, uid: int | None) -> dict[str, int]:
    # Tasks already counted against the limit when the program starts: with bwrap as non-root,
    # bwrap's init and the program share the namespace's count; as a throw-away uid, only the
    # program; as a plain user without bwrap, every task that user already runs.
    if uid is not None:
        baseline = 1
    elif plan.bwrap:
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


def _clean_env(cwd: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": cwd,
        "TMPDIR": cwd,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": cwd,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
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


def read_collected(work: Path, name: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``work/name``, read as hostile data: no link is followed
    (in any component), nothing blocks (a FIFO, a device), anything but a regular file is an ``OSError``."""
    parts = Path(name).parts
    if not parts or any(part in ("", ".", "..") for part in parts) or Path(name).is_absolute():
        raise OSError(f"{name!r} is not a plain relative name")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(work, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        inner = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
        os.close(fd)
        fd = inner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{name} is not a regular file")
        chunks, left = [], limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it; never raises, never follows a link, and holds one folder open
    at a time, so any depth works (``shutil.rmtree`` recurses: 2500 nested folders raised RecursionError).
    Folders the program made unreadable or read-only get their owner's rights back first; what still cannot be
    removed is left."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    names: list[str] = []
    stuck: set[tuple[int, int]] = set()
    try:
        while True:
            entry = _next_removable(fd, stuck)
            if entry is None:
                if not names:
                    break
                parent = os.open("..", flags, dir_fd=fd)
                os.close(fd)
                fd = parent
                name = names.pop()
                if not _writable_retry(fd, lambda: os.rmdir(name, dir_fd=fd)):
                    stuck.add(_identity(fd, name))
                continue
            if entry.is_dir(follow_symlinks=False):
                child = _open_dir(fd, entry.name, flags)
                if child is None:
                    stuck.add(_identity(fd, entry.name))
                    continue
                os.close(fd)
                fd = child
                names.append(entry.name)
                continue
            if not _writable_retry(fd, lambda: os.unlink(entry.name, dir_fd=fd)):
                stuck.add(_identity(fd, entry.name))
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _next_removable(fd: int, stuck: set[tuple[int, int]]) -> os.DirEntry | None:
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if (entry.inode(), entry.stat(follow_symlinks=False).st_dev) not in stuck:
                    return entry
            except OSError:
                continue
    return None


def _identity(dir_fd: int, name: str) -> tuple[int, int]:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return st.st_ino, st.st_dev
    except OSError:
        return -1, -1


def _open_dir(dir_fd: int, name: str, flags: int) -> int | None:
    """Open a subfolder, first giving its owner the rights back if the program took them away."""
    for attempt in range(2):
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except PermissionError:
            if attempt or not give_rights_back(dir_fd, [name]):
                return None
        except OSError:
            return None
    return None


def _writable_retry(fd: int, remove) -> bool:
    """``remove()`` (an entry of the folder ``fd``), once more after making the folder 0700 if it was refused."""
    for attempt in range(2):
        try:
            remove()
            return True
        except PermissionError:
            if attempt or not give_rights_back(fd):
                return False
        except OSError:
            return False
    return False


def _head(fh, limit: int) -> str:
    fh.seek(0)
    return fh.read(limit).decode("utf-8", errors="replace")


def _tail(fh, limit: int) -> str:
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - limit))
    return fh.read().decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _end_group(pgid: int, deadline_s: float = 5.0) -> None:
    """SIGKILL the program's process group until no live process is left in it, and reap the members that were
    re-parented to this process (it is PID 1 in a container without an init, or a subreaper), one pid at a time,
    so no one else's exit status is taken.

    Only the program's own processes are ever signalled: the launcher leads a new session, and seccomp refuses
    ``setsid`` and ``setpgid``, so none of them leaves the group and no other process joins it (under bubblewrap
    the group is bubblewrap itself, and the PID namespace ends with it). A uid is never signalled as a whole:
    another process may share it (a container beside this one that picked the same throw-away uid)."""
    me = os.getpid()
    end = time.monotonic() + deadline_s
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:  # no member left, not even a zombie
            return
        except PermissionError:
            pass
        live = False
        for pid, (state, parent, group) in _processes().items():
            if group != pgid:
                continue
            if state != "Z":
                live = True
            elif parent == me:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if not live or time.monotonic() > end:
            return
        time.sleep(0.005)


def _namespace_init(bwrap_pid: int) -> tuple[int, int] | None:
    """(pid, pidfd) of bubblewrap's child, the init of the program's PID namespace, while bubblewrap runs."""
    try:
        pid = _child(bwrap_pid)
        pidfd = os.pidfd_open(pid)
    except (OSError, LookupError):
        return None
    if (_stat_fields(pid) or ("", 0, 0))[1] != bwrap_pid:  # the pid was reused in between: not ours
        os.close(pidfd)
        return None
    return pid, pidfd


def _await_namespace_end(pid: int, pidfd: int, deadline_s: float = 5.0) -> None:
    """Wait until the namespace's init has exited (the kernel ends it only once every other process in the
    namespace is gone), and reap it if it was re-parented to this process; it is never signalled here."""
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(deadline_s * 1000) and (_stat_fields(pid) or ("", 0, 0))[1] == os.getpid():
            os.waitpid(pid, os.WNOHANG)
    except (OSError, ChildProcessError):
        pass
    finally:
        os.close(pidfd)


def _child(pid: int) -> int:
    """The first child of ``pid`` (bubblewrap has one); LookupError when there is none."""
    try:
        return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
    except FileNotFoundError:  # gone, or a kernel without CONFIG_PROC_CHILDREN
        if not os.path.exists(f"/proc/{pid}"):
            raise LookupError(pid) from None
        found = [child for child, (_, parent, _) in _processes().items() if parent == pid]
        if not found:
            raise LookupError(pid) from None
        return found[0]


def _processes() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) of every process visible in /proc."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            found[int(entry.name)] = fields
    return found


def _stat_fields(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2])


def pids_of_user(uid: int, zombies: bool = False) -> list[int]:
    """Processes whose owner is ``uid``; zombies (dead, waiting to be reaped) only when asked."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid != uid:
                    continue
            except OSError:
                continue
            pid = int(entry.name)
            state = _stat_fields(pid)
            if state and (zombies or state[0] != "Z"):
                found.append(pid)
    return found


def _tasks_of_user(uid: int) -> int:
    """Tasks (threads included) the user runs now: what RLIMIT_NPROC counts without a namespace."""
    total = 0
    for pid in pids_of_user(uid, zombies=True):  # zombies count against RLIMIT_NPROC
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total


def _uid(slot: int) -> int:
    return UID_BASE + os.getpid() * SLOTS + slot


def _take_slot() -> int:
    """A free slot whose uid is provably unused here (:func:`uid_in_use`): nobody's files or processes are within
    a program's reach through it."""
    with _slot_lock:
        if not _free_slots:
            raise SandboxError(f"more than {SLOTS} concurrent sandboxed programs")
        for slot in reversed(_free_slots):
            if uid_in_use(_uid(slot)) is None:
                _free_slots.remove(slot)
                return slot
        raise SandboxError(
            f"every throw-away uid {_uid(0)}..{_uid(SLOTS - 1)} is in use here ("
            f"{uid_in_use(_uid(_free_slots[0]))}); run as a normal user instead of root"
        )


def uid_in_use(uid: int) -> str | None:
    """Why ``uid`` (also taken as a gid) is not provably unused, or None: a user or group the system knows (NSS:
    /etc/passwd, LDAP, SSSD), a subordinate id range (/etc/subuid, /etc/subgid), or a process (zombies too)."""
    if known := _known_id(uid):
        return known
    return f"a process of uid {uid} is running" if pids_of_user(uid, zombies=True) else None


@functools.cache
def _known_id(uid: int) -> str | None:
    for name, lookup in (("user", pwd.getpwuid), ("group", grp.getgrgid)):
        try:
            lookup(uid)
            return f"a {name} with id {uid} exists"
        except KeyError:
            pass
    for table in ("/etc/subuid", "/etc/subgid"):
        try:
            text = Path(table).read_text(errors="replace")
        except OSError:
            continue
        if any(start <= uid < start + count for start, count in subordinate_ranges(text)):
            return f"{uid} lies in a range of {table}"
    return None


def subordinate_ranges(text: str) -> list[tuple[int, int]]:
    """(first id, count) of every ``name:first:count`` line of /etc/subuid or /etc/subgid; pure."""
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def _release_slot(slot: int) -> None:
    with _slot_lock:
        _free_slots.append(slot)
