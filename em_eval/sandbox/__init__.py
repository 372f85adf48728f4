"""Run model-written Python programs in isolation: one process each, hard limits, a verdict.

Model code is hostile until proven otherwise. Every program runs as a separate ``python -I``
process with a minimal environment (no inherited tokens) and a fresh folder as cwd, HOME and
TMPDIR. Before its first instruction (:mod:`em_eval.sandbox.launcher`) it gets:

* resource limits (CPU time, address space, file size, open files, tasks), ``no_new_privs``;
* as root, a throw-away uid that is provably unused (no user, group, subordinate id range or
  process has it; Linux never applies ``RLIMIT_NPROC`` to uid 0), or, where the interpreter is
  out of other users' reach, uid 0 with no capabilities and no new processes;
* Landlock, where the kernel has it: it may read the system, the interpreter and the libraries
  it imports (not the evaluator's own folder) and write only its folder; no TCP, no signals or
  abstract sockets outside itself;
* seccomp: no sockets, ptrace, new sessions, namespaces or mounts; no change to any file's
  mode, owner, times, flags or extended attributes; no resource limits, priority or scheduling
  of other processes; and, on kernels whose Landlock cannot scope signals, no signals to other
  processes, also not through ``F_SETOWN`` / ``F_SETSIG``.

Under the default mode all of that runs inside bubblewrap: a read-only root, a private
size-capped ``/tmp`` as the folder, masked home directories, new PID, network, IPC and UTS
namespaces, ``--die-with-parent``; the interpreter and its paths stay visible wherever they
live. A wall-clock timeout kills the process group either way; clean-up signals only that group
(and waits for the PID namespace to end), never a uid.

``EM_EVAL_SANDBOX`` chooses: ``auto`` (default) and ``bwrap`` refuse to run code without a
working bubblewrap, with one error naming the cause; ``rlimits`` is the explicit opt-in for
machines without it (everything above except bubblewrap's namespaces and mounts; the parent
watches the folder's size and file count instead of a tmpfs cap). Every :class:`ProgramResult`
lists the isolation layers that were actually active.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Mapping, Sequence

from em_eval.sandbox.choose import isolation_mode, plan_for
from em_eval.sandbox.execute import SLOTS, STATUSES, Limits, Program, ProgramResult, classify, run_with
from em_eval.sandbox.plan import ENV_VAR, MODES, SandboxError

__all__ = [
    "ENV_VAR",
    "MODES",
    "STATUSES",
    "Limits",
    "Program",
    "ProgramResult",
    "SandboxError",
    "active_isolation",
    "classify",
    "isolation_mode",
    "run_program",
    "run_programs",
]


def active_isolation(mode: str | None = None) -> tuple[str, ...]:
    """Layers programs get in this process (probes once; :class:`SandboxError` if none can run)."""
    return plan_for(mode).layers


def run_program(
    code: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 4096,
    mode: str | None = None,
    files: Mapping[str, str | bytes] | None = None,
    collect: Sequence[str] = (),
    readable_paths: Sequence[str] = (),
    **limits: int,
) -> ProgramResult:
    """Run ``code`` as ``main.py`` in the sandbox and return its verdict."""
    program = Program(
        code,
        dict(files or {}),
        tuple(collect),
        tuple(readable_paths),
        Limits(timeout_s=timeout_s, memory_mb=memory_mb, **limits),
    )
    return run_with(program, plan_for(mode))


def run_programs(
    programs: Sequence[Program],
    *,
    jobs: int | None = None,
    mode: str | None = None,
    progress: bool = True,
    desc: str = "sandbox",
) -> list[ProgramResult]:
    """Run many programs, at most ``jobs`` (default: CPU count) at a time, in input order."""
    if not programs:
        return []
    plan = plan_for(mode)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(programs), SLOTS))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(lambda p: run_with(p, plan), programs)
        return list(_progress(results, len(programs), desc) if progress else results)


def _progress(items: Iterable[ProgramResult], total: int, desc: str) -> Iterable[ProgramResult]:
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, disable=total < 8)
