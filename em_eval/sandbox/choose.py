"""Decide the plan for a mode once per process: probe what works here, name what does not.

``auto`` and ``bwrap`` need bubblewrap and refuse to run code without it, with one error
that names the real cause. ``rlimits`` is the explicit opt-in for machines without it:
resource limits, seccomp (required: it keeps programs from signalling your processes) and
Landlock (where the kernel has it), after one loud warning that lists what is missing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import sys
import threading
from dataclasses import replace

import em_eval.sandbox.bwrap as bwrap
from em_eval.sandbox.execute import Limits, Program, run_with
from em_eval.sandbox.launcher import landlock_abi
from em_eval.sandbox.paths import interpreter_paths, untraversable_ancestor
from em_eval.sandbox.plan import ENV_VAR, MODES, Plan, SandboxError

log = logging.getLogger("em_eval.sandbox")

INSTALL_HINT = "Debian/Ubuntu: apt-get install bubblewrap; Fedora/RHEL: dnf install bubblewrap"
_lock = threading.Lock()
_plans: dict[str, Plan] = {}


def isolation_mode() -> str:
    """The requested mode from ``EM_EVAL_SANDBOX`` (default ``auto``)."""
    mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise SandboxError(f"{ENV_VAR}={mode!r} is not one of {', '.join(MODES)}")
    return mode


def plan_for(mode: str | None = None) -> Plan:
    """The plan for ``mode`` (default: :func:`isolation_mode`), probed on first use."""
    mode = mode or isolation_mode()
    with _lock:
        if mode not in _plans:
            _plans[mode] = _bwrap_plan(mode) if mode in ("auto", "bwrap") else _rlimits_plan()
        return _plans[mode]


def _bwrap_plan(mode: str) -> Plan:
    root = os.geteuid() == 0
    if not shutil.which("bwrap"):
        raise SandboxError(_refusal(mode, "bubblewrap is not installed (no bwrap on PATH)"))
    plan = Plan(
        bwrap=True,
        throwaway_uid=root,
        drop_caps=False,
        landlock_abi=landlock_abi(),
        seccomp=libseccomp_loads(),
        size_cap="--size" in bwrap.features(),
        root=root,
    )
    problem = probe(plan)
    if problem and problem.startswith("sandbox:"):  # bwrap works; a confinement step inside it did not
        fallback = replace(plan, landlock_abi=0, seccomp=False)
        if probe(fallback) is None:
            log.warning(
                "em_eval.sandbox: Landlock/seccomp failed inside bubblewrap (%s); programs run under "
                "bubblewrap and resource limits only",
                problem,
            )
            return fallback
    if problem:
        raise SandboxError(_refusal(mode, explain_bwrap_failure(problem)))
    return plan


def _rlimits_plan() -> Plan:
    root = os.geteuid() == 0
    if not libseccomp_loads():
        raise SandboxError(
            f"{ENV_VAR}=rlimits needs seccomp to keep programs from signalling or tracing your processes, and "
            "libseccomp.so.2 cannot be loaded here. Install it (Debian/Ubuntu: apt-get install libseccomp2) or "
            f"install bubblewrap ({INSTALL_HINT}) and unset {ENV_VAR}."
        )
    blocked = untraversable_ancestor(interpreter_paths()) if root else None
    plan = Plan(
        bwrap=False,
        throwaway_uid=root and blocked is None,
        drop_caps=root and blocked is not None,
        landlock_abi=landlock_abi(),
        seccomp=True,
        size_cap=False,
        root=root,
    )
    problem = probe(plan)
    if problem and plan.throwaway_uid:
        blocked = f"a throw-away uid cannot start the interpreter ({problem})"
        plan = replace(plan, throwaway_uid=False, drop_caps=True)
        problem = probe(plan)
    if problem:
        raise SandboxError(f"{ENV_VAR}=rlimits cannot run a trivial program here: {problem}")
    missing = []
    if plan.landlock_abi < 1:
        missing.append(
            "Landlock is not available in this kernel (Linux >= 5.13 with landlock in the LSM list), "
            "so programs can read and change every file you can"
        )
    if root and not plan.throwaway_uid:
        where = (
            blocked
            if blocked.startswith("a throw-away")
            else (f"the interpreter lies under {blocked}, which other users cannot traverse")
        )
        missing.append(f"programs run as uid 0 without capabilities and may not start processes: {where}")
    log.warning(
        "\n" + "!" * 78 + "\nem_eval.sandbox: %s=rlimits: model-written code runs WITHOUT bubblewrap "
        "(no namespaces, no read-only root).\nActive: %s.%s\nInstall bubblewrap (%s) for full isolation.\n" + "!" * 78,
        ENV_VAR,
        ", ".join(plan.layers),
        "".join(f"\n- {m}" for m in missing),
        INSTALL_HINT,
    )
    return plan


def _refusal(mode: str, cause: str) -> str:
    chosen = f"{ENV_VAR}={mode}" if mode == "bwrap" else f"{ENV_VAR}=auto (the default)"
    return (
        f"em_eval.sandbox: cannot isolate model-written code: {cause}. {chosen} requires bubblewrap. "
        f"Install it ({INSTALL_HINT}), or set {ENV_VAR}=rlimits to run programs with resource limits, "
        "seccomp and Landlock only (no namespaces)."
    )


def explain_bwrap_failure(stderr: str) -> str:
    """The real cause behind bwrap's first error line."""
    line = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    low = line.lower()
    if any(s in low for s in ("uid map", "new namespace", "operation not permitted", "permission denied")):
        return (
            f"bubblewrap is installed but cannot create namespaces here ({line}): unprivileged user "
            "namespaces are disabled or restricted (sysctl kernel.unprivileged_userns_clone, "
            "user.max_user_namespaces, or an AppArmor/SELinux policy); ask the administrator to allow them"
        )
    if "execvp" in low:
        return (
            f"bubblewrap started but could not run the interpreter {sys.executable} ({line}); this is an "
            "em-eval bug, please report it with this message"
        )
    return f"bubblewrap failed: {line}"


def probe(plan: Plan) -> str | None:
    """None when a trivial program that imports numpy runs under ``plan``; else what went wrong."""
    code = "try:\n    import numpy\nexcept ImportError:\n    pass\nprint('sandbox-ok')\n"
    try:
        result = run_with(Program(code, limits=Limits(timeout_s=30)), plan)
    except (OSError, SandboxError) as exc:
        return str(exc)
    if result.stdout.strip() != "sandbox-ok":
        return (result.stderr.strip() or result.reason or "no output")[-400:]
    return None


@functools.cache
def libseccomp_loads() -> bool:
    try:
        ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return False
    return True
