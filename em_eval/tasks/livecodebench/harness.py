"""LiveCodeBench's judge, run inside the sandbox as ``main.py`` beside ``solution.py`` and ``tests.json``.

It follows upstream's rules (``lcb_runner/evaluation/testing_util.py``), rewritten here:

* the candidate is compiled once after LiveCodeBench's star-import prelude; tests run in order
  in this one process, each under a ``SIGALRM`` of ``timeout_s`` (6 s), and stop at the first
  failure;
* **functional** (``fn_name`` set): each input line is JSON, the method of ``Solution()`` (or the
  module-level function) is called with them, a tuple result counts as a list, and the result
  must equal the JSON output;
* **stdin/stdout**: a final ``if __name__ == "__main__":`` block is unwrapped, everything but the
  imports becomes the body of one function (``SystemExit`` ends a run quietly). Each test's input is
  a file on descriptor 0 and its output a file on descriptor 1, behind ``sys.stdin`` / ``sys.stdout``
  (kept across tests, so ``from sys import stdin`` follows them): every way a program reads and writes
  works as on a real judge (``input()``, ``sys.stdin.readline/read/readlines``, iteration, ``open(0)``,
  ``sys.stdin.buffer``, ``os.read(0, n)``, ``sys.stdout.buffer.write``, ``os.write(1, ...)``), where
  upstream's mocks break several of them (``tasks/livecodebench/README.md`` lists them). Output and
  expected are compared after stripping, line by line, each line stripped: equal text, or the same
  numbers token by token as :class:`decimal.Decimal` (``2.50`` is ``2.5``; no epsilon, as upstream).

The verdict goes to ``verdict.json``: one result per test run (True, -2 wrong answer, -3 time
limit, -4 runtime error) and the first failure's details. Containment is the sandbox's job, so
upstream's ``reliability_guard`` (which blanks ``os.kill`` and friends) is not applied.
Standard library only; the comparison and program-preparation functions are pure (unit-tested).
"""

from __future__ import annotations

import ast
import json
import os
import signal
import sys
from decimal import Decimal, InvalidOperation

# upstream's import prelude: each module star-imported and imported by name (builtins, typing: star only)
_PRELUDE_MODULES = "string re datetime collections heapq bisect copy math random statistics itertools functools"
_PRELUDE_MODULES += " operator io sys json"
PRELUDE = (
    "\n".join(
        [
            *(f"from {m} import *" for m in (*_PRELUDE_MODULES.split(), "builtins", "typing")),
            *(f"import {m}" for m in _PRELUDE_MODULES.split()),
            "sys.setrecursionlimit(50000)",
        ]
    )
    + "\n"
)
WRONG, TIME_LIMIT, RUNTIME = -2, -3, -4
STDIN_FILE, STDOUT_FILE = "stdin.txt", "stdout.txt"
SHOWN = 300


class TimeLimit(Exception):
    pass


def _alarm(signum, frame):
    raise TimeLimit("time limit exceeded")


def shorten(value: object, length: int = SHOWN) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= length else text[: length // 2] + " ...(truncated)... " + text[-length // 2 :]


# ---- stdout comparison (pure) --------------------------------------------------------------
def stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def compare_stdout(output: str, expected: str) -> str | None:
    """None when ``output`` matches ``expected`` under LiveCodeBench's rules, else why not."""
    got, want = stripped_lines(output), stripped_lines(expected)
    if len(got) != len(want):
        return f"Wrong answer: mismatched output length ({len(got)} lines, expected {len(want)})"
    for index, (a, b) in enumerate(zip(got, want)):
        if a == b:
            continue
        da, db = _decimals(a), _decimals(b)
        if da is None or db is None or da != db:
            return f"Wrong answer at line {index}: {shorten(a)} != {shorten(b)}"
    return None


# ---- program preparation (pure) -------------------------------------------------------------
def unwrap_main_guard(code: str) -> str:
    """Upstream's ``clean_if_name``: a last ``if __name__ == '__main__':`` block runs unconditionally."""
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except (SyntaxError, IndexError, ValueError):
        pass
    return code


def as_function(code: str) -> str:
    """Upstream's ``make_function``: imports stay at the top, the rest becomes ``wrapped_function``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    body = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))] or [ast.Pass()]
    extra = {"type_params": []} if sys.version_info >= (3, 12) else {}
    func = ast.FunctionDef(
        name="wrapped_function",
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body,
        decorator_list=[],
        lineno=1,
        **extra,
    )
    return PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(ast.fix_missing_locations(func))


# ---- running (impure: executes the candidate) ---------------------------------------------
def _compile(code: str, timeout_s: int) -> dict:
    namespace: dict = {"__name__": "tmp_sol"}
    signal.alarm(timeout_s)
    try:
        exec(compile(code, "solution.py", "exec"), namespace)
    finally:
        signal.alarm(0)
    return namespace


def grade_functional(code: str, inputs: list[str], outputs: list[str], fn_name: str, timeout_s: int):
    namespace = _compile(PRELUDE + "\n\n" + code, timeout_s)
    target = namespace["Solution"]() if "class Solution" in code and "Solution" in namespace else None
    method = getattr(target, fn_name, None) if target is not None else namespace.get(fn_name)
    if not callable(method):
        return [RUNTIME], {"error_code": RUNTIME, "error_message": f"Runtime Error: no function {fn_name!r} defined"}
    results = []
    for raw_in, raw_out in zip(inputs, outputs):
        args = [json.loads(line) for line in raw_in.split("\n")]
        expected = json.loads(raw_out)
        signal.alarm(timeout_s)
        try:
            got = method(*args)
            signal.alarm(0)
        except BaseException as exc:  # noqa: BLE001 - the candidate's failure is the verdict
            signal.alarm(0)
            return _raised(results, exc, args, expected)
        if isinstance(got, tuple):
            got = list(got)
        if got != expected:
            results.append(WRONG)
            return results, {
                "error_code": WRONG,
                "error_message": "Wrong Answer",
                "output": shorten(got),
                "inputs": shorten(args),
                "expected": shorten(expected),
            }
        results.append(True)
    return results, {}


def _attach(fd: int, path: str, flags: int) -> None:
    """Point file descriptor ``fd`` at ``path`` (which may have been opened on ``fd`` itself if it was closed)."""
    opened = os.open(path, flags, 0o600)
    if opened != fd:
        os.dup2(opened, fd)
        os.close(opened)


def _text_stream(fd: int, mode: str, current):
    """The judge's own text stream on ``fd`` (kept across tests so ``from sys import stdin`` follows them)."""
    if current is not None and not current.closed:
        return current
    return open(fd, mode, encoding="utf-8", closefd=False)


def _feed(raw_in: str, stdin, folder: str):
    """Descriptor 0 reads a file holding ``raw_in``; descriptor 1 writes an empty file; the streams follow."""
    with open(os.path.join(folder, STDIN_FILE), "wb") as fh:
        fh.write(raw_in.encode("utf-8"))
    _attach(0, os.path.join(folder, STDIN_FILE), os.O_RDONLY)
    _attach(1, os.path.join(folder, STDOUT_FILE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    stdin = _text_stream(0, "r", stdin)
    stdin.seek(0)  # drop what the last test left buffered
    return stdin


def _captured(stdout, folder: str) -> str:
    try:
        stdout.flush()
    except (OSError, ValueError):  # closed or full: what reached the file is the output
        pass
    with open(os.path.join(folder, STDOUT_FILE), "rb") as fh:
        return fh.read().decode("utf-8", errors="replace")


def grade_stdio(code: str, inputs: list[str], outputs: list[str], timeout_s: int):
    folder = os.getcwd()  # the files stay here whatever the program does with its working directory
    stdin = _feed("", None, folder)
    stdout = _text_stream(1, "w", None)
    sys.stdin, sys.stdout = stdin, stdout  # before compiling: ``from sys import stdin, stdout`` binds these
    namespace = _compile(as_function(unwrap_main_guard(code)), timeout_s)
    method = namespace.get("wrapped_function")
    if method is None:
        return [RUNTIME], {"error_code": RUNTIME, "error_message": "Runtime Error: the program did not compile"}
    results = []
    for raw_in, raw_out in zip(inputs, outputs):
        stdin = _feed(raw_in, stdin, folder)
        stdout = _text_stream(1, "w", stdout)
        sys.stdin, sys.stdout = stdin, stdout
        signal.alarm(timeout_s)
        try:
            method()
            signal.alarm(0)
        except SystemExit:
            signal.alarm(0)
        except BaseException as exc:  # noqa: BLE001
            signal.alarm(0)
            return _raised(results, exc, raw_in, raw_out)
        output = _captured(stdout, folder)
        why = compare_stdout(output, raw_out)
        if why:
            results.append(WRONG)
            return results, {
                "error_code": WRONG,
                "error_message": why,
                "output": shorten(output),
                "inputs": shorten(raw_in),
                "expected": shorten(raw_out),
            }
        results.append(True)
    return results, {}


def _raised(results: list, exc: BaseException, inputs: object, expected: object):
    code, message = (TIME_LIMIT, "Time Limit Exceeded") if isinstance(exc, TimeLimit) else (RUNTIME, "Runtime Error")
    results.append(code)
    return results, {
        "error_code": code,
        "error_message": message,
        "error": shorten(repr(exc)),
        "inputs": shorten(inputs),
        "expected": shorten(expected),
    }


def main() -> None:
    with open("tests.json", encoding="utf-8") as fh:
        tests = json.load(fh)
    with open("solution.py", encoding="utf-8") as fh:
        code = fh.read()
    verdict_file = open("verdict.json", "w", encoding="utf-8")  # opened before the candidate can touch cwd
    sys.set_int_max_str_digits(50000)
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # output past the file-size limit: an OSError, not a kill
    timeout_s = int(tests["timeout_s"])
    try:
        if tests["fn_name"]:
            results, info = grade_functional(code, tests["inputs"], tests["outputs"], tests["fn_name"], timeout_s)
        else:
            results, info = grade_stdio(code, tests["inputs"], tests["outputs"], timeout_s)
    except BaseException as exc:  # noqa: BLE001 - compile errors, and what escapes the candidate
        timed_out = isinstance(exc, TimeLimit)
        results = [TIME_LIMIT if timed_out else RUNTIME]
        info = {"error_code": results[0], "error_message": f"Error during testing: {shorten(repr(exc))}"}
    verdict_file.write(json.dumps({"results": results, "info": info}))
    verdict_file.close()


if __name__ == "__main__":
    main()
