"""The first code of every sandboxed process: limits and confinement, then ``exec`` of the program.

The parent runs this file's source as ``python -I -S -c <source> CONFIG`` (so the file itself
need not be visible inside bubblewrap), with ``CONFIG`` a JSON object:

``rlimits``   ``{"RLIMIT_AS": bytes, ...}`` set before anything else;
``uid``       a throw-away uid to switch to (root only), or null;
``drop_caps`` drop every capability while staying uid 0 (root without a throw-away uid);
``landlock``  ``{"read": [paths], "write": [paths], "devices": [paths], "abi": n}``: the only files
              the program may open, plus the network (TCP) and signal scopes where ABI ``n`` (at
              most the kernel's) has them; null to skip;
``seccomp``   ``{"signals": bool, "no_fork": bool}``: refuse sockets, ptrace and friends, new
              sessions, changing any file's mode, owner, times, flags or extended attributes,
              and the resource limits, priority or scheduling of other processes; ``signals``:
              signals to any other process (also through ``F_SETOWN``); ``no_fork``: new
              processes (threads stay allowed); null to skip;
``main``      the program to exec with ``sys.executable -I``.

Standard library only: nothing else is importable yet. A step that fails stops the launcher
with exit status 125 and a ``sandbox:`` line on stderr: a program never runs half-confined.
Landlock is driven through its three syscalls (no Python binding exists); seccomp through
libseccomp, which maps syscall names to this architecture's numbers.
"""

import ctypes
import errno
import json
import os
import resource
import stat
import struct
import sys

FAILED = 125
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4

# Landlock (linux/landlock.h): syscalls 444-446 on every architecture.
LL_CREATE, LL_ADD_RULE, LL_RESTRICT, LL_VERSION, LL_PATH_BENEATH = 444, 445, 446, 1, 1
LL_MAX_ABI = 6  # the newest ABI whose rights this file knows
FS_EXECUTE, FS_WRITE, FS_READ, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE | FS_READ | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_CONNECT_TCP = 0b11
SCOPE_ABSTRACT_UNIX_AND_SIGNAL = 0b11

# libseccomp (seccomp.h)
SCMP_ACT_ALLOW, SCMP_CMP_NE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ = 0x7FFF0000, 1, 6, 7
CLONE_THREAD = 0x00010000
ALL_BITS, LOW_32 = (1 << 64) - 1, (1 << 32) - 1
F_SETOWN, F_SETSIG, F_SETOWN_EX, FIOSETOWN, SIOCSPGRP = 8, 10, 15, 0x8901, 0x8902
DENIED = (
    "socket",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "kcmp",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "setsid",
    "setpgid",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "reboot",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
)
# Landlock does not govern a file's metadata: without these a program could make any file its uid owns, anywhere,
# setuid or world-writable, or rewrite its times and labels. Programs need none of them in their folder (files are
# created with the umask's modes): refused everywhere. Numbers for calls newer than some libseccomp (same on every
# architecture from 424 on): fchmodat2 452, setxattrat 463, removexattrat 466, file_setattr 469.
METADATA = (
    "chmod",
    "fchmod",
    "fchmodat",
    452,
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "chown32",
    "fchown32",
    "lchown32",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "utimensat_time64",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    463,
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    466,
    469,
)
FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR = 0x40086602, 0x40046602, 0x401C5820  # chattr's ioctls
# Calls that change another process's scheduling or memory placement (same uid, or any as uid 0 without
# capabilities): allowed on the caller only (pid 0), as glibc's own wrappers pass it.
ONLY_ON_ITSELF = (
    "sched_setaffinity",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
    "migrate_pages",
    "move_pages",
)
PRIO_PROCESS, IOPRIO_WHO_PROCESS = 0, 1


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return max(0, libc.syscall(ctypes.c_long(LL_CREATE), None, ctypes.c_size_t(0), ctypes.c_uint32(LL_VERSION)))


def set_rlimits(limits: dict) -> None:
    for name, value in limits.items():
        hard = value + 1 if name == "RLIMIT_CPU" else value  # SIGXCPU at the soft limit, SIGKILL a second later
        resource.setrlimit(getattr(resource, name), (value, hard))


def no_new_privs(libc) -> None:
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")


def switch_uid(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def drop_capabilities(libc) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets (uid stays 0)."""
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"cannot drop capability {cap}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(bytes(24))) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def landlock(libc, rules: dict) -> None:
    """Allow reading ``read``, writing ``write`` (and devices ``devices``); refuse the rest."""
    abi = min(landlock_abi(), rules.get("abi", LL_MAX_ABI))
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available")
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    fs |= FS_IOCTL_DEV if abi >= 5 else 0
    attr = struct.pack(
        "QQQ", fs, NET_BIND_CONNECT_TCP if abi >= 4 else 0, SCOPE_ABSTRACT_UNIX_AND_SIGNAL if abi >= 6 else 0
    )[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = _syscall(libc, LL_CREATE, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    readable = FS_EXECUTE | FS_READ | FS_READ_DIR
    grants = (
        [(p, readable) for p in rules["read"]]
        + [(p, fs) for p in rules["write"]]
        + [(p, FS_READ | FS_WRITE | FS_TRUNCATE | FS_IOCTL_DEV) for p in rules["devices"]]
    )
    for path, rights in grants:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            allowed = rights & fs & (~0 if stat.S_ISDIR(os.fstat(fd).st_mode) else FS_FILE_RIGHTS)
            rule = struct.pack("=Qi", allowed, fd)
            _syscall(
                libc,
                LL_ADD_RULE,
                ctypes.c_int(ruleset),
                ctypes.c_int(LL_PATH_BENEATH),
                ctypes.c_char_p(rule),
                ctypes.c_uint32(0),
            )
        finally:
            os.close(fd)
    _syscall(libc, LL_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    os.close(ruleset)


def seccomp(options: dict) -> None:
    """Refuse the syscalls a program uses to reach outside (``DENIED``, ``METADATA``, signals, forks)."""
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(SCMP_ACT_ALLOW)))
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init failed")

    def refuse(name: str | int, err: int, *cmps: tuple[int, int, int, int]) -> None:
        number = name if isinstance(name, int) else lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:  # not a syscall of this architecture (e.g. fork on aarch64)
            return
        array = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
        rc = lib.seccomp_rule_add_array(ctx, ctypes.c_uint32(0x00050000 | err), number, len(cmps), array)
        if rc < 0:
            raise OSError(-rc, f"seccomp rule for {name} failed")

    me = os.getpid()
    for name in DENIED + METADATA:
        refuse(name, errno.EPERM)
    for cmd in (FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR):
        refuse("ioctl", errno.EPERM, (1, SCMP_CMP_MASKED_EQ, LOW_32, cmd))
    # prlimit64 on pid 0 (glibc's setrlimit) or itself only: lowering the evaluator's limits kills it
    refuse("prlimit64", errno.EPERM, (0, SCMP_CMP_GT, me, 0))
    for value, mask in aligned_blocks(1, me):  # one comparison per argument and rule: [1, me) as aligned blocks
        refuse("prlimit64", errno.EPERM, (0, SCMP_CMP_MASKED_EQ, mask, value))
    for name in ONLY_ON_ITSELF:
        refuse(name, errno.EPERM, (0, SCMP_CMP_NE, 0, 0))
    for name, which in (("setpriority", PRIO_PROCESS), ("ioprio_set", IOPRIO_WHO_PROCESS)):
        refuse(name, errno.EPERM, (0, SCMP_CMP_NE, which, 0))  # not a process group nor a user
        refuse(name, errno.EPERM, (1, SCMP_CMP_NE, 0, 0))
    if options["signals"]:  # only to itself: Landlock's signal scope does this where the kernel has it
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            refuse(name, errno.EPERM, (0, SCMP_CMP_NE, me, 0))
        refuse("tkill", errno.EPERM)
        # a file's owner receives SIGIO (or any signal F_SETSIG names) from the kernel, outside kill()'s checks
        for cmd in (F_SETOWN, F_SETSIG, F_SETOWN_EX):
            for name in ("fcntl", "fcntl64"):
                refuse(name, errno.EPERM, (1, SCMP_CMP_MASKED_EQ, LOW_32, cmd))
        for cmd in (FIOSETOWN, SIOCSPGRP):
            refuse("ioctl", errno.EPERM, (1, SCMP_CMP_MASKED_EQ, LOW_32, cmd))
    if options["no_fork"]:  # uid 0 is exempt from RLIMIT_NPROC: no new processes at all
        refuse("fork", errno.EAGAIN)
        refuse("vfork", errno.EAGAIN)
        refuse("clone", errno.EAGAIN, (0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0))
        refuse("clone3", errno.ENOSYS)  # its flags sit behind a pointer: glibc then falls back to clone
    rc = lib.seccomp_load(ctx)
    lib.seccomp_release(ctx)
    if rc < 0:
        raise OSError(-rc, "seccomp_load failed")


def aligned_blocks(low: int, high: int) -> list[tuple[int, int]]:
    """``[low, high)`` as (value, mask) pairs: ``x & mask == value`` for exactly the numbers in the range."""
    blocks = []
    while low < high:
        size = low & -low if low else 1 << 63
        while size > high - low:
            size >>= 1
        blocks.append((low, ALL_BITS & ~(size - 1)))
        low += size
    return blocks


def _syscall(libc, number: int, *args) -> int:
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        raise OSError(ctypes.get_errno(), f"landlock syscall {number} failed")
    return result


def confine(config: dict) -> None:
    """Every step the configuration asks for, in the only order that works."""
    libc = ctypes.CDLL(None, use_errno=True)
    set_rlimits(config["rlimits"])
    no_new_privs(libc)
    if config["uid"] is not None:
        switch_uid(config["uid"])
    if config["drop_caps"]:
        drop_capabilities(libc)
    if config["landlock"] is not None:
        landlock(libc, config["landlock"])
    if config["seccomp"] is not None:
        seccomp(config["seccomp"])


def main() -> None:
    config = json.loads(sys.argv[1])
    try:
        confine(config)
    except Exception as exc:  # noqa: BLE001 - any failure must stop the program from running
        sys.stderr.write(f"sandbox: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(FAILED)
    os.execv(sys.executable, [sys.executable, "-I", config["main"]])


if __name__ == "__main__":
    main()
