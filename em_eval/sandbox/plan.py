"""Which isolation layers a program runs under: a plain description, decided once per process."""

from __future__ import annotations

from dataclasses import dataclass

ENV_VAR = "EM_EVAL_SANDBOX"
MODES = ("auto", "bwrap", "rlimits")


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (not the program's fault)."""


@dataclass(frozen=True)
class Plan:
    """How programs run in this process; :attr:`layers` names what is active."""

    bwrap: bool  # bubblewrap: read-only root, private /tmp, PID/net/IPC namespaces, masked homes
    throwaway_uid: bool  # root only: each program under an unused uid
    drop_caps: bool  # root without a throw-away uid: uid 0 with no capabilities
    landlock_abi: int  # 0: no Landlock; >= 1 filesystem, >= 4 TCP, >= 6 signal and socket scopes
    seccomp: bool
    size_cap: bool  # bubblewrap's tmpfs --size (else the parent watches the folder's size)
    root: bool

    @property
    def seccomp_signals(self) -> bool:
        """seccomp refuses signals to other processes where Landlock cannot scope them."""
        return self.seccomp and self.landlock_abi < 6

    @property
    def no_fork(self) -> bool:
        """seccomp refuses new processes: Linux never applies RLIMIT_NPROC to uid 0."""
        return self.seccomp and self.root and not self.throwaway_uid

    @property
    def task_limit(self) -> bool:
        return self.throwaway_uid or not self.root

    @property
    def layers(self) -> tuple[str, ...]:
        flags = {
            "process_group": True,
            "clean_env": True,
            "rlimits": True,
            "no_new_privs": True,
            "throwaway_uid": self.throwaway_uid,
            "no_capabilities": self.drop_caps,
            "task_limit": self.task_limit,
            "landlock_fs": self.landlock_abi >= 1,
            "landlock_tcp": self.landlock_abi >= 4,
            "landlock_signal_scope": self.landlock_abi >= 6,
            "seccomp": self.seccomp,
            "seccomp_signals": self.seccomp_signals,
            "no_fork": self.no_fork,
            "bwrap": self.bwrap,
            "readonly_fs": self.bwrap,
            "private_tmp": self.bwrap,
            "pid_ns": self.bwrap,
            "net_ns": self.bwrap,
            "masked_home": self.bwrap,
            "tmp_size_cap": self.size_cap,
            "folder_size_watch": not self.size_cap,
        }
        return tuple(name for name, on in flags.items() if on)
