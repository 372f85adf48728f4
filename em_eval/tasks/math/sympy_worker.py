"""A time- and memory-limited child process for sympy and math-verify calls.

Why a process: a thread cannot be stopped, and ``signal.alarm`` cannot interrupt C code
(``10**10**10`` is one C call) and only works in the main thread. So every symbolic call
goes to one long-lived child (``python -m em_eval.tasks.math.sympy_worker MODULE``) over a pipe:

* inside the child, a soft limit (``setitimer``) raises at 80 % of the budget, and an
  address-space limit (``RLIMIT_AS``) turns runaway big-integer growth into ``MemoryError``;
* in the parent, a hard limit: if no answer arrives within the budget, the child is killed
  and reaped (no zombie, no thread), and a fresh one is started on the next call.

The parent uses no threads: it waits with ``select`` on the child's stdout. The child
exits by itself when the parent goes away (its stdin closes).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any

MEMORY_LIMIT_BYTES = 3 << 30
STARTUP_TIMEOUT_S = 120.0
SOFT_FRACTION = 0.8


class WorkerTimeout(RuntimeError):
    """A call did not finish within its time budget (the child was stopped)."""


class WorkerCallError(RuntimeError):
    """The call raised inside the child (message carries the exception type and text)."""


class Worker:
    """One child process running ``MODULE.OPS[name](*args)`` calls under a hard time limit."""

    def __init__(self, module: str) -> None:
        self.module = module
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self._owner = os.getpid()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def call(self, op: str, args: list[Any], timeout_s: float) -> Any:
        """Run ``op(*args)`` in the child; raise :class:`WorkerTimeout` past ``timeout_s`` seconds."""
        with self._lock:
            self._ensure_started()
            request = json.dumps({"op": op, "args": args, "soft_s": timeout_s * SOFT_FRACTION}) + "\n"
            try:
                assert self._proc is not None and self._proc.stdin is not None
                self._proc.stdin.write(request.encode())
                self._proc.stdin.flush()
                reply = self._read_line(time.monotonic() + timeout_s)
            except (BrokenPipeError, OSError, EOFError) as exc:
                self._stop()
                raise WorkerCallError(f"grading worker died ({exc})") from exc
            if reply is None:
                self._stop()
                raise WorkerTimeout(f"{op} exceeded {timeout_s:.2f} s")
            message = json.loads(reply)
            if message.get("timeout"):
                raise WorkerTimeout(f"{op} exceeded its soft limit of {timeout_s * SOFT_FRACTION:.2f} s")
            if "error" in message:
                raise WorkerCallError(message["error"])
            return message["value"]

    def close(self) -> None:
        """Stop the child (a later call starts a new one)."""
        with self._lock:
            self._stop()

    # ---- internals ------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._owner != os.getpid():  # forked copy: the pipes belong to the parent
            self._proc, self._buffer, self._owner = None, b"", os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN.format(root=_PACKAGE_ROOT, module=self.module)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.restarts += 1
        try:
            ready = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
            started = ready is not None and json.loads(ready).get("ready") is True
        except (EOFError, OSError, ValueError, AttributeError):  # died at start-up, or wrote garbage
            started = False
        if not started:
            self._stop()
            raise WorkerCallError(f"grading worker for {self.module} did not start")

    def _read_line(self, deadline: float) -> str | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("grading worker closed its output")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def _stop(self) -> None:
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


# The child's import path starts with em-eval's own root, not the working folder (``python -m`` would
# put it first, and a user's ``random.py`` there would shadow the standard library's).
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_CHILD_MAIN = "import sys; sys.path[0] = {root!r}; from em_eval.tasks.math.sympy_worker import serve; serve({module!r})"

_WORKERS: dict[str, Worker] = {}


def worker_for(module: str) -> Worker:
    """The process-wide worker serving ``module`` (started lazily, stopped at exit)."""
    if module not in _WORKERS:
        _WORKERS[module] = Worker(module)
    return _WORKERS[module]


@atexit.register
def close_all() -> None:
    """Stop every worker this process started."""
    for worker in _WORKERS.values():
        worker.close()


# ---- child side ---------------------------------------------------------------------------


class _SoftTimeout(BaseException):
    """Raised by the soft timer; a BaseException so library ``except Exception`` blocks miss it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _SoftTimeout()


def serve(module_name: str) -> None:
    """Child main loop: one JSON request per stdin line, one JSON reply per stdout line."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to stderr, never into the protocol
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    ops = importlib.import_module(module_name).OPS
    signal.signal(signal.SIGALRM, _on_alarm)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            signal.setitimer(signal.ITIMER_REAL, max(float(request["soft_s"]), 0.01))
            try:
                reply = {"value": ops[request["op"]](*request["args"])}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _SoftTimeout:
            reply = {"timeout": True}
        except MemoryError:
            reply = {"error": "MemoryError: memory limit reached"}
        except Exception as exc:  # the parent decides what a failed comparison means
            reply = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    serve(sys.argv[1])
