"""The paths a sandboxed Python program needs to see, wherever the interpreter lives."""

from __future__ import annotations

import os
import site
import stat
import sys
from pathlib import Path
from typing import Iterable, Sequence

SANDBOX_CWD = "/tmp"
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/sys")
PROC_FILES = ("/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat")
# What Python, its libraries and the dynamic loader read from /etc; the rest (shadow, ssh, ssl keys) stays out.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "passwd",
    "group",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "gai.conf",
    "mime.types",
    "os-release",
    "alternatives",
    "locale.alias",
    "locale.conf",
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def interpreter_paths(extra: Iterable[str] = ()) -> list[str]:
    """Existing real paths of the interpreter, its prefixes, the ``sys.path`` entries imports need and ``extra``."""
    found = {
        os.path.realpath(p)
        for p in (
            sys.executable,
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            sys.base_exec_prefix,
            *import_paths(sys.path),
            *extra,
        )
        if p and os.path.exists(p)
    }
    found |= {os.path.abspath(p) for p in (sys.executable, sys.prefix) if os.path.exists(p)}  # venv symlinks
    return sorted(found)


def import_paths(entries: Iterable[str]) -> list[str]:
    """The ``sys.path`` entries a program's imports need (it runs ``python -I``): those inside the interpreter's
    prefixes (the standard library) and site-packages folders (also chained ones), not the user's own. Not the
    evaluator's script folder, nor the working folder ``python -m`` puts first, nor an editable install's source
    tree: files beside the evaluator (a ``.env``) stay out of programs' reach."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    user_site = os.path.realpath(site.getusersitepackages())
    kept = []
    for entry in entries:
        real = os.path.realpath(entry) if entry else ""
        if (
            real
            and real != user_site
            and (
                os.path.basename(real) in ("site-packages", "dist-packages")
                or any(inside(real, p) for p in prefixes - {"/"})
            )
        ):
            kept.append(entry)
    return kept


def readable_paths(extra: Sequence[str], cwd: str) -> dict[str, list[str]]:
    """Landlock rules: what a program may read, write (its folder) and use as a device."""
    etc = [f"/etc/{name}" for name in ETC_FILES]
    return {
        "read": [*SYSTEM_DIRS, *PROC_FILES, *etc, *interpreter_paths(extra)],
        "write": [cwd],
        "devices": list(DEVICES),
    }


def untraversable_ancestor(paths: Iterable[str]) -> str | None:
    """The first directory above one of ``paths`` that other users cannot enter, if any."""
    for path in paths:
        parts = Path(path).parts
        for depth in range(2, len(parts)):
            ancestor = str(Path(*parts[:depth]))
            try:
                if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                    return ancestor
            except OSError:
                break
    return None


def inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def between(top: str, path: str) -> list[str]:
    """Directories strictly between ``top`` and ``path``."""
    parts = Path(path).relative_to(top).parts[:-1]
    return [str(Path(top, *parts[: i + 1])) for i in range(len(parts))]
