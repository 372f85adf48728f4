"""The bubblewrap command line: read-only root, private size-capped /tmp, new namespaces.

Home directories and any directory other users cannot traverse are hidden behind an empty
tmpfs; the interpreter, its prefixes, the ``sys.path`` entries imports need and the program's
readable paths are bound back read-only at their own paths, also when they sit under ``/tmp``,
which the private /tmp would otherwise hide.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from em_eval.sandbox.paths import SANDBOX_CWD, between, inside, untraversable_ancestor


@functools.cache
def features() -> frozenset[str]:
    """Options this bwrap knows among those added late (0.8.0): ``--size``, ``--disable-userns``."""
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    return frozenset(opt for opt in ("--size", "--disable-userns") if opt in text)


def argv(
    *,
    work: Path,
    uid: int | None,
    env: Mapping[str, str],
    visible: Sequence[str],
    tmpfs_mb: int,
    collect: Sequence[str],
    size_cap: bool,
) -> list[str]:
    """bwrap's arguments up to (not including) the command it runs."""
    args = [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    if uid is not None:  # privileged bwrap: keep only what the launcher needs to switch uid
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"] + [opt for opt in ["--disable-userns"] if opt in features()]
    outside = [p for p in visible if not inside(p, SANDBOX_CWD)]
    for masked, keep in masks(outside):
        args += ["--tmpfs", masked] + _rebind(masked, keep)
    if size_cap:  # a RAM-backed /tmp capped at tmpfs_mb, the program's files bound into it
        args += ["--perms", "1777", "--size", str(tmpfs_mb << 20), "--tmpfs", SANDBOX_CWD]
    else:  # bwrap < 0.8 cannot cap a tmpfs: the program's own folder on disk becomes /tmp
        args += ["--bind", str(work), SANDBOX_CWD]
    under_tmp = [p for p in visible if inside(p, SANDBOX_CWD) and not inside(str(work), p)]
    args += _rebind(SANDBOX_CWD, under_tmp)
    for path in sorted(work.rglob("*")) if size_cap else ():
        rel = path.relative_to(work).as_posix()
        if path.is_dir():
            args += ["--perms", "0755", "--dir", f"{SANDBOX_CWD}/{rel}"]
        else:
            args += ["--bind" if rel in collect else "--ro-bind", str(path), f"{SANDBOX_CWD}/{rel}"]
    args += ["--chdir", SANDBOX_CWD, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def masks(visible: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Directories to hide behind an empty tmpfs, each with the visible paths to bind back inside it.

    Home directories are hidden (tokens, keys); so is any directory other users cannot
    traverse (a throw-away uid could not reach the interpreter through it)."""
    visible = list(visible)
    candidates = {os.path.realpath(os.path.expanduser("~")), "/root", "/home"}
    candidates |= {a for a in (untraversable_ancestor([p]) for p in visible) if a}
    found = [m for m in sorted(candidates) if os.path.isdir(m) and m != "/"]
    found = [m for m in found if not any(m != o and inside(m, o) for o in found)]
    return [(m, [p for p in visible if p != m and inside(p, m)]) for m in found]


def _rebind(top: str, paths: Iterable[str]) -> list[str]:
    """Bind ``paths`` (strictly below ``top``) back read-only, parents created traversable."""
    paths = sorted({p for p in paths if p != top and inside(p, top)})
    kept = [p for p in paths if not any(q != p and inside(p, q) for q in paths)]
    args: list[str] = []
    for path in kept:
        for parent in between(top, path):
            args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", path, path]
    return args
