"""The math grader through its sympy worker: gold answers of every benchmark, pathological inputs,
the worker's time limits and the two-grader record."""

from __future__ import annotations

import os
import random
import string
import textwrap
import threading
import time
from pathlib import Path

import pytest

from em_eval.tasks.math import grade
from em_eval.tasks.math.grade import TIMEOUT_S, cluster_answers, grade_response, is_equiv, math_verify_equiv
from em_eval.tasks.math.normalize import normalize, parse
from em_eval.tasks.math.sympy_worker import Worker, WorkerCallError, WorkerTimeout, worker_for
from em_eval.tasks.math.task import BENCHMARKS

# ---- gold answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_gold_answers_reject_the_next_problems_answer(golds: dict[str, list[str]], name: str) -> None:
    answers = golds[name]
    pairs = [(answers[(i + 1) % len(answers)], g) for i, g in enumerate(answers)]
    accepted = [(p, g) for p, g in pairs if is_equiv(p, g)]
    assert len(accepted) <= 0.1 * len(pairs)  # contests repeat small answers (AMC 2023: 7, 7)
    # every accepted pair is a genuinely equal answer (same number, or x=5 vs 5)
    assert all(normalize(p).replace("x=", "").replace(" ", "") == normalize(g).replace(" ", "") for p, g in accepted)


# ---- pathological inputs --------------------------------------------------------------------

LIMIT_S = 1.0
SLACK_S = 1.5  # IPC, a loaded CI machine; a restart of the worker is excluded (warmed first)


def _garbage(n: int, seed: int) -> str:
    rng = random.Random(seed)
    alphabet = string.printable + "\\{}^_$" * 10
    return "".join(rng.choice(alphabet) for _ in range(n))


# (prediction, gold, expected verdict or None where only the time matters)
PATHOLOGICAL = [
    (r"10^{10^{10}}+1", "1", False),
    (r"10^{10^{10}}", r"10^{10^{10}}+1", None),  # differ by 1 in 10^(10^10): beyond any tolerance
    (r"9^{9^{9^{9}}}", "3", False),
    (r"2^{2^{2^{2^{2^{2}}}}}", "65536", False),
    (r"(10^{10^{10}})!", "1", False),
    (r"\frac{" * 150 + "1" + "}{2}" * 150, "1", False),
    ("(" * 1500 + "1" + ")" * 1500, "1", None),  # too long for the symbolic stage
    (r"\sqrt{" * 300 + "2" + "}" * 300, "2", False),
    (r"\text{" * 200 + "5" + "}" * 200, "5", True),
    ("5 " + "aa " * 600 + "!", "5", False),
    ("x" + "+x" * 600, "600x", False),
    (_garbage(100_000, 1), "5", False),
    (_garbage(1_500, 2), _garbage(1_500, 3), False),
]


@pytest.mark.parametrize("pred,gold,expected", PATHOLOGICAL, ids=[f"case{i}" for i in range(len(PATHOLOGICAL))])
def test_pathological_answers_return_within_the_limit(pred: str, gold: str, expected: bool | None) -> None:
    assert is_equiv("x+1", "1+x")  # worker warm, so the timing below is the comparison only
    start = time.monotonic()
    verdict = is_equiv(pred, gold, timeout_s=LIMIT_S)
    assert time.monotonic() - start < LIMIT_S + SLACK_S
    assert isinstance(verdict, bool)
    if expected is not None:
        assert verdict is expected


def test_one_comparison_has_a_total_time_budget() -> None:
    slow = ", ".join([r"9^{9^{9^{9}}}"] * 8)  # eight elements, each a sympy call that hits its limit
    assert is_equiv("x+1", "1+x")
    start = time.monotonic()
    assert is_equiv(slow, ", ".join(["3"] * 8), timeout_s=0.5) is False
    assert time.monotonic() - start < 5 * 0.5 + SLACK_S


def test_clustering_one_problem_has_a_total_time_budget() -> None:
    """Majority clustering compares every pair of distinct answers: hostile answers used to cost a full
    comparison budget per pair (8 answers: about two minutes). Now the problem's total is bounded, and
    answers still cluster by their text once the budget is spent."""
    hostile = [rf"9^{{9^{{9^{{{k}}}}}}}+{k}" for k in range(3, 11)]  # each pair: sympy calls that hit their limit
    assert is_equiv("x+1", "1+x")
    start = time.monotonic()
    ids = cluster_answers([*hostile, hostile[0], "7", " 7"], budget_s=2.0)
    assert time.monotonic() - start < 2.0 + TIMEOUT_S + SLACK_S
    assert ids[8] == ids[0] and ids[9] == ids[10] and len(set(ids[:8])) == 8


def test_grade_response_on_garbage_is_bounded() -> None:
    start = time.monotonic()
    grade = grade_response(_garbage(100_000, 5), "5")
    assert time.monotonic() - start < 5.0 + 2 * SLACK_S + 3.0  # math-verify limit + our limit + restart
    assert not grade.exact_match and not grade.math_verify


def test_random_strings_never_raise() -> None:
    rng = random.Random(7)
    tokens = [
        "\\frac",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ",",
        "\\{",
        "\\}",
        "x",
        "2",
        "=",
        "\\pm",
        "\\cup",
        "^",
        "_",
        "\\text{ cm}",
        " ",
        "%",
        "\\sqrt",
        "\\begin{pmatrix}",
        "\\end{pmatrix}",
        "\\\\",
        "&",
        ".",
        "-",
        "\\infty",
    ]
    for _ in range(300):
        a = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 30)))
        b = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 30)))
        assert isinstance(is_equiv(a, b, timeout_s=LIMIT_S), bool)
        parse(normalize(a))


# ---- the worker: hard limits without leaks --------------------------------------------------


@pytest.fixture
def ops_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "em_test_worker_ops.py").write_text(
        textwrap.dedent("""
        import signal
        def bigpow():
            return 10 ** 10 ** 10          # one huge C computation
        def stubborn():
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            while True:                    # ignores the soft limit: only a kill stops it
                pass
        def spin():
            while True:
                pass                       # pure Python: the soft timer stops it
        def echo(x):
            return x
        OPS = {"bigpow": bigpow, "stubborn": stubborn, "spin": spin, "echo": echo}
    """)
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return "em_test_worker_ops"


def _children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, read from /proc."""
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, ppid = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            out.append(int(entry))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to count child processes")
def test_worker_kills_c_level_hangs_and_leaks_nothing(ops_module: str) -> None:
    worker = Worker(ops_module)
    threads_before = threading.active_count()
    try:
        assert worker.call("echo", [3], 5.0) == 3
        first_pid = worker.pid
        start = time.monotonic()
        with pytest.raises(WorkerTimeout):
            worker.call("stubborn", [], 1.0)
        assert time.monotonic() - start < 1.0 + SLACK_S
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)  # killed and reaped: not even a zombie
        assert worker.call("echo", ["again"], 5.0) == "again"  # a fresh child
        assert worker.pid != first_pid and worker.restarts == 2
        for op in ("spin", "bigpow"):
            start = time.monotonic()
            with pytest.raises(WorkerTimeout):
                worker.call(op, [], 1.0)
            assert time.monotonic() - start < 1.0 + SLACK_S
            assert worker.call("echo", [op], 5.0) == op
        assert worker.pid in _children(os.getpid())
        assert threading.active_count() == threads_before
    finally:
        worker.close()
    assert worker.pid is None


def test_shared_worker_survives_timeouts() -> None:
    assert is_equiv(r"\sqrt{8}", r"2\sqrt{2}")
    worker = worker_for("em_eval.tasks.math.symbolic")
    assert worker.pid is not None
    assert is_equiv(r"9^{9^{9^{9}}}", "3", timeout_s=0.5) is False
    assert is_equiv(r"\sqrt{8}", r"2\sqrt{2}")


def test_grade_response_records_both_graders() -> None:
    good = grade_response(r"We find $x = \boxed{\dfrac{\pi}{2}}$.", r"\frac{\pi}{2}")
    assert good.exact_match and good.math_verify and not good.disagree
    assert good.answer == r"\dfrac{\pi}{2}" and not good.no_answer and not good.unfinished
    wrong = grade_response(r"so \boxed{3}", "4")
    assert not wrong.exact_match and not wrong.math_verify and not wrong.disagree
    cut = grade_response(r"<think>let me think about \boxed{4", "4")
    assert cut.no_answer and cut.unfinished and not cut.exact_match
    # whatever math-verify says about a percent answer, the record says whether the graders agree
    both = grade_response(r"\boxed{50\%}", "0.5")
    assert both.exact_match
    assert both.disagree == (both.exact_match != both.math_verify)
    assert set(good.as_record()) == {
        "answer",
        "exact_match",
        "math_verify",
        "math_verify_answer",
        "no_answer",
        "unfinished",
        "disagree",
    }


def test_math_verify_runs_on_the_full_response() -> None:
    ok, extracted = math_verify_equiv(r"The answer is $\boxed{\frac{1}{2}}$.", "0.5")
    assert ok and extracted is not None
    assert math_verify_equiv("no math here", "0.5")[0] is False


def test_worker_ignores_the_working_folder_and_survives_a_failed_start(tmp_path: Path, monkeypatch) -> None:
    """A user's ``random.py`` in the working folder must not reach the worker's imports, and a worker that
    dies at start-up is a failed comparison (False), never an exception out of ``is_equiv``."""
    (tmp_path / "random.py").write_text("raise SystemExit('shadowed the standard library')\n")
    monkeypatch.chdir(tmp_path)
    worker = Worker("em_eval.tasks.math.symbolic")
    try:
        assert worker.call("sympy_equal", [r"\sqrt{8}", r"2\sqrt{2}"], 30.0) is True
    finally:
        worker.close()
    broken = Worker("em_eval_no_such_ops_module")
    with pytest.raises(WorkerCallError, match="did not start"):
        broken.call("echo", [1], 5.0)
    monkeypatch.setattr(grade, "_SYMBOLIC", "em_eval_no_such_ops_module")
    assert is_equiv(r"\frac{x^2-4}{x-2}", "x+2") is False  # needs sympy, whose worker cannot start
