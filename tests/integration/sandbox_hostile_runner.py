"""Runs every hostile program through ``em_eval.sandbox`` and reports what happened, as JSON.

Started by ``test_sandbox_hostile.py`` inside an outer PID namespace that is known to hold, so
that a program signalling every process it can see never reaches the machine even if the
sandbox under test is broken. This process plays the evaluator: it must survive every program
and finish the run, and so must a canary process of the same user started beside it.

    python sandbox_hostile_runner.py MODE [--uid UID --reach JSON] [--play-old] [--via-livecodebench]

``--uid``: run as that normal user (the runner starts as root in its own mount namespace);
``--reach``: ``{dir: [paths]}``, directories that user cannot traverse, to replace (in this
mount namespace only) by a tmpfs holding just the listed paths, so the interpreter is reachable;
``--play-old``: plan as on Ubuntu 22.04 / 24.04 (bubblewrap 0.6.1 without ``--size``, Landlock ABI 4,
hence no signal scoping) whatever this machine has;
``--via-livecodebench``: judge each program as an em_livecodebench stdin/stdout solution instead (the
programs of :func:`programs` only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT_S = 2.0
SECRET = "s3cr3t-token"


def programs(me: int, home: Path, victim: Path) -> dict[str, tuple[str, float]]:
    """name -> (code, timeout_s)."""
    return {
        "benign": ("import numpy\nprint(int(numpy.arange(4).sum()))\n", 30),
        "infinite_loop": ("while True:\n    pass\n", TIMEOUT_S),
        "fork_bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            TIMEOUT_S,
        ),
        "allocate_50gb": ("block = bytearray(50 * 2**30)\n", TIMEOUT_S),
        "allocate_50gb_numpy": ("import numpy as np\nblock = np.ones(50 * 2**30 // 8)\n", TIMEOUT_S),
        "write_10gb": (
            "chunk = b'x' * 2**20\nwith open('big.bin', 'wb') as fh:\n    for _ in range(10 * 1024):\n"
            "        fh.write(chunk)\n",
            30,
        ),
        "fill_the_folder": (
            "chunk = b'x' * 2**20\nfor i in range(10 * 1024):\n"
            "    with open(f'part{i}.bin', 'wb') as fh:\n        fh.write(chunk)\n",
            30,
        ),
        "delete_outside": (
            f"import os, shutil\nos.remove({str(victim)!r})\nshutil.rmtree({str(victim.parent)!r})\n",
            TIMEOUT_S,
        ),
        "kill_parent": (
            f"import os, signal\nfor pid in sorted({{{me}, os.getppid()}} - {{os.getpid()}}):\n"
            "    os.kill(pid, signal.SIGKILL)\nraise SystemExit('the signals were accepted')\n",
            TIMEOUT_S,
        ),
        "kill_everything": (
            "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
            "for pid in set(range(2, 1 << 16)) - {os.getpid()}:\n    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n"
            "raise SystemExit(3)\n",
            30,
        ),
        "read_environment_secrets": (
            "import glob, os\nleaks = [k for k in os.environ if 'S3CR3T' in os.environ[k].upper()]\n"
            f"for path in glob.glob('/proc/*/environ') + ['/proc/{me}/environ']:\n"
            "    try:\n        leaks += [path] if b's3cr3t' in open(path, 'rb').read() else []\n"
            "    except OSError:\n        pass\n"
            "print(sorted(os.environ))\nassert not leaks, leaks\nassert 'HF_TOKEN' in os.environ\n",
            TIMEOUT_S,
        ),
        "read_home_secret": (f"print(open({str(home / '.secret-token')!r}).read())\n", TIMEOUT_S),
        "orphan_left_behind": (
            "import os, time\ntry:\n    child = os.fork()\nexcept OSError:  # no_fork\n"
            "    child = 1\nif child == 0:\n    time.sleep(60)\nprint('left a child')\n",
            TIMEOUT_S,
        ),
        "open_socket": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)\n", TIMEOUT_S),
    }


def more_programs(me: int, canary: int, victim: Path, beside: list[str]) -> dict[str, tuple[str, float, dict]]:
    """name -> (code, timeout_s, other limits): attacks on the host found by a red team (issue 24). The evaluator
    is PID 1 of the outer namespace, which ignores SIGKILL from inside it: the canary is the one that would die."""
    metadata = (
        "import os\nchanged = []\n"
        "calls = {'chmod': lambda p: os.chmod(p, 0o6777), 'utime': lambda p: os.utime(p, (0, 0)),\n"
        "         'setxattr': lambda p: os.setxattr(p, 'user.em', b'1'),\n"
        "         'chown': lambda p: os.chown(p, os.getuid(), os.getgid())}\n"
        f"open('mine.txt', 'w').close()\nfor path in ({str(victim)!r}, 'mine.txt'):\n"
        "    for name, call in calls.items():\n"
        "        try:\n            call(path)\n            changed.append(f'{name} {path}')\n"
        "        except OSError:\n            pass\n"
        "raise SystemExit(f'changed: {changed}' if changed else 'nothing changed')\n"
    )
    parents = f"sorted({{{me}, {canary}, os.getppid()}} - {{os.getpid()}})"
    prlimit = (
        "import os, resource\ndone, errors = [], []\n"
        "calls = [lambda p: resource.prlimit(p, resource.RLIMIT_NOFILE, (3, 3)),\n"
        "         lambda p: os.setpriority(os.PRIO_PROCESS, p, 19), lambda p: os.sched_setaffinity(p, {0})]\n"
        f"for pid in {parents}:\n    for call in calls:\n        try:\n"
        "            call(pid)\n            done.append(pid)\n"
        "        except OSError as exc:\n            errors.append(exc.strerror)\n"
        "raise SystemExit(f'lowered {done}' if done else f'refused: {errors}')\n"
    )
    sigio = (
        "import fcntl, os, signal\ndone, errors = [], []\n"
        f"for pid in {parents}:\n    r, w = os.pipe()\n    try:\n"
        "        fcntl.fcntl(r, fcntl.F_SETOWN, pid)\n        fcntl.fcntl(r, 10, signal.SIGKILL)  # F_SETSIG\n"
        "        fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)\n"
        "        os.write(w, b'x')\n        done.append(pid)\n"
        "    except OSError as exc:\n        errors.append(exc.strerror)\n"
        "raise SystemExit(f'sent to {done}' if done else f'refused: {errors}')\n"
    )
    read_beside = (
        "read = []\n"
        f"for path in {beside!r}:\n    try:\n        read.append(open(path).read()[:40])\n"
        "    except OSError:\n        pass\n"
        "raise SystemExit(f'read {read}' if read else 'nothing beside the evaluator is readable')\n"
    )
    hide = (
        "import os\nos.mkdir('hidden', 0o300)  # writable, not listable (chmod is refused)\n"
        "for i in range(64):\n    with open(f'hidden/{i}.bin', 'wb') as fh:\n        fh.write(b'x' * 2**20)\n"
    )
    empty_files = "i = 0\nwhile True:\n    open(f'e{i}', 'w').close()\n    i += 1\n"
    return {
        "change_metadata": (metadata, TIMEOUT_S, {}),
        "lower_parent_limits": (prlimit, TIMEOUT_S, {}),
        "signal_through_sigio": (sigio, TIMEOUT_S, {}),
        "read_beside_the_evaluator": (read_beside, TIMEOUT_S, {}),
        "hide_a_subfolder": (hide, 30, {"tmpfs_mb": 16}),
        "flood_empty_files": (empty_files, 30, {"max_files": 100}),
    }


def play_old(mode: str) -> None:
    """Plan as bubblewrap 0.6.1 (no ``--size``, no ``--disable-userns``) and Landlock ABI 4 would."""
    from dataclasses import replace

    from em_eval.sandbox import bwrap, choose

    bwrap.features = frozenset
    plan = choose.plan_for(mode)
    choose._plans[mode] = replace(plan, landlock_abi=min(plan.landlock_abi, 4), size_cap=False)


def reach(masks: dict[str, list[str]]) -> None:
    """Hide each directory behind a tmpfs and bind the listed paths back (private mounts only)."""
    stage = Path(tempfile.mkdtemp(prefix="em-hostile-stage-", dir="/dev/shm"))
    staged = []
    for i, path in enumerate(p for keep in masks.values() for p in keep):
        spot = stage / str(i)
        spot.mkdir() if os.path.isdir(path) else spot.touch()
        subprocess.run(["mount", "--bind", path, str(spot)], check=True)
        staged.append((spot, path))
    for top in masks:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", top], check=True)
    for spot, path in staged:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        Path(path).mkdir() if spot.is_dir() else Path(path).touch()
        subprocess.run(["mount", "--move", str(spot), path], check=True)


def directly(todo: dict[str, tuple], mode: str) -> list[dict]:
    """Each program as ``main.py`` of its own sandboxed run."""
    from em_eval import sandbox

    results = sandbox.run_programs(
        [
            sandbox.Program(code, limits=sandbox.Limits(timeout_s=timeout, **(more or [{}])[0]))
            for code, timeout, *more in todo.values()
        ],
        mode=mode,
        jobs=2,
        progress=False,
    )
    return [
        {
            "status": r.status,
            "reason": r.reason,
            "stdout": r.stdout[-2000:],
            "isolation": list(r.isolation),
            "duration_s": round(r.duration_s, 2),
        }
        for r in results
    ]


def as_livecodebench_solutions(todo: dict[str, tuple[str, float]], mode: str) -> list[dict]:
    """Each program as a stdin/stdout solution judged by em_livecodebench (one test, expected "6")."""
    from em_eval.tasks.livecodebench.score import judge

    os.environ["EM_EVAL_SANDBOX"] = mode
    tests = [{"inputs": [""], "outputs": ["6\n"], "fn_name": None}] * len(todo)
    verdicts = judge([code for code, _ in todo.values()], tests, timeout_s=int(TIMEOUT_S), jobs=2)
    return [
        {
            "status": v["status"],
            "reason": v["reason"],
            "stdout": v["reason"],
            "isolation": v["isolation"],
            "duration_s": v["duration_s"],
        }
        for v in verdicts
    ]


def _untouched(victim: Path) -> bool:
    st = victim.lstat()
    return st.st_mode & 0o7777 == 0o666 and st.st_mtime == 1_000_000 and not os.listxattr(victim)


def main() -> None:
    mode = sys.argv[1]
    if "--uid" in sys.argv:
        uid = int(sys.argv[sys.argv.index("--uid") + 1])
        reach(json.loads(sys.argv[sys.argv.index("--reach") + 1]))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.environ.update({"EM_EVAL_TEST_SECRET": SECRET, "HF_TOKEN": "hf_" + SECRET})
    scratch = Path(tempfile.mkdtemp(prefix="em-hostile-"))  # the programs' folders go here, nowhere else
    scratch.chmod(0o711)
    tempfile.tempdir = str(scratch)
    home = Path(tempfile.mkdtemp(prefix="em-hostile-home-", dir="/var/tmp"))
    (home / ".secret-token").write_text(SECRET)
    os.environ["HOME"] = str(home)
    victim_dir = Path(tempfile.mkdtemp(prefix="em-hostile-victim-", dir="/var/tmp"))
    victim = victim_dir / "precious.txt"
    victim.write_text("keep me")
    victim_dir.chmod(0o777)  # world-writable: only the sandbox may stop the program
    victim.chmod(0o666)
    os.utime(victim, (1_000_000, 1_000_000))
    project = home / "project"  # the working folder: `python -m lm_eval` puts it first on sys.path
    project.mkdir()
    (project / ".env").write_text(f"HF_TOKEN={SECRET}\n")
    (project / ".env").chmod(0o644)
    sys.path.insert(0, str(project))
    beside = [str(project / ".env")] + ([str(Path(__file__).resolve())] if mode == "rlimits" else [])
    canary = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    from em_eval.sandbox.execute import SLOTS, UID_BASE, _uid, pids_of_user

    # as root: a process of someone else under the throw-away uid the sandbox would try first; it must pick another
    bystander = (
        subprocess.Popen(["sleep", "600"], user=_uid(SLOTS - 1), group=_uid(SLOTS - 1), extra_groups=[])
        if os.geteuid() == 0
        else canary
    )

    if "--play-old" in sys.argv:
        play_old(mode)
    todo = programs(os.getpid(), home, victim)
    if "--via-livecodebench" not in sys.argv:
        todo |= more_programs(os.getpid(), canary.pid, victim, beside)
    started = time.perf_counter()
    results = (as_livecodebench_solutions if "--via-livecodebench" in sys.argv else directly)(todo, mode)
    elapsed = time.perf_counter() - started
    first = UID_BASE + os.getpid() * SLOTS
    leftover_uids = (
        [p for uid in range(first, first + SLOTS) for p in pids_of_user(uid, zombies=True) if p != bystander.pid]
        if os.geteuid() == 0
        else []
    )
    report = {
        "uid": os.geteuid(),
        "python": sys.executable,
        "elapsed_s": round(elapsed, 2),
        "canary_alive": canary.poll() is None,
        "bystander_alive": bystander.poll() is None,
        "victim_intact": victim.is_file() and victim.read_text() == "keep me" and _untouched(victim),
        "leftover_processes": leftover_uids,
        "leftover_folders": os.listdir(scratch),
        "results": dict(zip(todo, results)),
    }
    canary.kill()
    bystander.kill()
    victim.unlink(missing_ok=True)
    victim_dir.rmdir()
    (home / ".secret-token").unlink()
    shutil.rmtree(home)
    shutil.rmtree(scratch, ignore_errors=True)
    print("HOSTILE-REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
