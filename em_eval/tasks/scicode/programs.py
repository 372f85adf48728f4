"""SciCode test programs: the model's code for one step plus the step's test cases.

As upstream's ``test_generated_code.py``: the problem's dependencies, the code of every
earlier step (the model's own, or the pre-written one), this step's code, then the step's
test cases with ``target = targets[i]`` before each. Targets come from ``test_data.h5``
(test split) or, for the dev split, from running the gold code (see :func:`target_program`):
the dev split then needs no download at all. The gold targets travel as a pickle from one
sandboxed program to the next; this process never unpickles them.

Every program starts with a short prelude: the sandbox folder on ``sys.path`` (for the
``scicode.compare.cmp`` / ``scicode.parse.parse`` support modules, copies of
:mod:`em_eval.tasks.scicode.rules`) and, only when the code names them, shims for functions
SciPy/NumPy have since removed (``scipy.integrate.simps`` and friends).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from em_eval.tasks import tests_ran
from em_eval.tasks.scicode import rules as scicode_rules

TARGETS_FILE = "targets.pkl"

_COMPAT = {  # removed name -> (module, replacement, shim source)
    "simps": (
        "scipy.integrate",
        "simpson",
        "def simps(y, x=None, dx=1.0, axis=-1, even=None):\n    return _m.simpson(y, x=x, dx=dx, axis=axis)\n",
    ),
    "cumtrapz": (
        "scipy.integrate",
        "cumulative_trapezoid",
        "def cumtrapz(y, x=None, dx=1.0, axis=-1, initial=None):\n"
        "    return _m.cumulative_trapezoid(y, x=x, dx=dx, axis=axis, initial=initial)\n",
    ),
    "trapz": (
        "scipy.integrate",
        "trapezoid",
        "def trapz(y, x=None, dx=1.0, axis=-1):\n    return _m.trapezoid(y, x=x, dx=dx, axis=axis)\n",
    ),
}
_NUMPY_COMPAT = "trapz"


def support_files() -> dict[str, str]:
    """The ``scicode`` package the dataset's test cases import, for the sandbox folder."""
    rules = Path(scicode_rules.__file__).read_text(encoding="utf-8")
    return {
        "scicode/__init__.py": "",
        "scicode/compare/__init__.py": "",
        "scicode/compare/cmp.py": rules,
        "scicode/parse/__init__.py": "",
        "scicode/parse/parse.py": rules,
    }


def prelude(code: str) -> str:
    """Lines that make the support modules importable and shim removed SciPy/NumPy names."""
    lines = ["import os as _em_os, sys as _em_sys", "_em_sys.path.insert(0, _em_os.getcwd())"]
    for name, (module, replacement, shim) in _COMPAT.items():
        if name in code:
            lines.append(
                f"import {module} as _m\nif not hasattr(_m, {name!r}):\n"
                + "".join("    " + line + "\n" for line in shim.splitlines())
                + f"    _m.{name} = {name}\n    del {name}"
            )
    if _NUMPY_COMPAT in code:
        lines.append("import numpy as _np\nif not hasattr(_np, 'trapz'):\n    _np.trapz = _np.trapezoid")
    return "\n".join(lines) + "\n"


def solution_source(problem: dict[str, Any], index: int, codes: list[str]) -> str:
    """Dependencies, the code of steps ``0..index-1`` and step ``index`` (upstream's saved file)."""
    previous = "\n".join(codes[:index])
    return f"{problem['required_dependencies']}\n{previous}\n\n{codes[index]}"


def _with_targets(body: str, targets_line: str, test_cases: list[str]) -> str:
    parts = [body, "\n\n", targets_line, "\n"]
    for i, case in enumerate(test_cases):
        parts += [f"target = targets[{i}]\n\n", case, "\n"]
    return "".join(parts)


def scoring_program(problem: dict[str, Any], index: int, codes: list[str], h5_path: str | None) -> str:
    """The program that tests step ``index``: passes iff every test case's assertions hold and it reaches its
    end, where it marks the tests done (:mod:`em_eval.tasks.tests_ran`; upstream takes exit status 0 alone)."""
    step = problem["sub_steps"][index]
    body = solution_source(problem, index, codes)
    if h5_path is None:
        targets = (
            f"import pickle as _em_pickle\nwith open({TARGETS_FILE!r}, 'rb') as _em_fh:\n"
            "    targets = _em_pickle.load(_em_fh)"
        )
    else:
        targets = (
            "from scicode.parse.parse import process_hdf5_to_tuple\n"
            f"targets = process_hdf5_to_tuple({step['step_number']!r}, {len(step['test_cases'])}, {h5_path!r})"
        )
    program = _with_targets(body, targets, step["test_cases"])
    return prelude(program) + tests_ran.OPEN_DONE + program + tests_ran.CLOSE_DONE


def target_program(problem: dict[str, Any], index: int, gold_codes: list[str]) -> str:
    """Dev split: run the gold code on step ``index``'s test cases and pickle what each compares."""
    step = problem["sub_steps"][index]
    body = solution_source(problem, index, gold_codes)
    lines = [body, "\n\nimport pickle as _em_pickle\n", _RECORDER, "target = None\n"]
    for case in step["test_cases"]:
        lines += ["_em_begin()\n", record_targets(case, step["step_number"]), "\n_em_end()\n"]
    lines.append(f"with open({TARGETS_FILE!r}, 'wb') as _em_fh:\n    _em_pickle.dump(_em_targets, _em_fh)\n")
    program = "".join(lines)
    return prelude(program) + program


_RECORDER = """\
_em_targets, _em_current = [], {}
def _em_begin():
    _em_current.clear()
def _em_set(index, value):
    _em_current[index] = value
def _em_end():
    if not _em_current:
        _em_targets.append(None)
    elif list(_em_current) == [None]:
        _em_targets.append(_em_current[None])
    else:
        _em_targets.append(tuple(_em_current[i] for i in range(max(_em_current) + 1)))
"""


class UnsupportedTestCase(ValueError):
    """A dev test case whose target cannot be regenerated from the gold code."""


def record_targets(test_case: str, step_number: str) -> str:
    """Rewrite each ``assert`` that compares something with ``target`` into ``_em_set(...)``.

    ``cmp(x, target)`` and ``x == target`` record ``x``; ``cmp(x, target[i])`` records item
    ``i``. Every other use of ``target`` is refused with an error naming the step."""
    tree = ast.parse(test_case)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    class Rewriter(ast.NodeTransformer):
        def visit_Assert(self, node: ast.Assert) -> Any:
            uses = [n for n in ast.walk(node.test) if isinstance(n, ast.Name) and n.id == "target"]
            if not uses:
                return node
            return [ast.Expr(_record_call(use, parents, step_number)) for use in uses]

    new = ast.fix_missing_locations(Rewriter().visit(tree))
    leftover = [n for n in ast.walk(new) if isinstance(n, ast.Name) and n.id == "target"]
    if leftover:
        raise UnsupportedTestCase(
            f"SciCode step {step_number}: 'target' is used outside an assert; "
            "its target cannot be regenerated from the gold code"
        )
    return ast.unparse(new)


def _record_call(use: ast.Name, parents: dict[ast.AST, ast.AST], step_number: str) -> ast.Call:
    node: ast.AST = use
    index: ast.expr = ast.Constant(None)
    parent = parents[node]
    if isinstance(parent, ast.Subscript) and parent.value is node:
        if not (isinstance(parent.slice, ast.Constant) and isinstance(parent.slice.value, int)):
            raise UnsupportedTestCase(f"SciCode step {step_number}: target is indexed by a non-constant")
        index, node, parent = parent.slice, parent, parents[parent]
    counterpart: ast.expr | None = None
    if isinstance(parent, ast.Call) and node in parent.args[:2] and len(parent.args) >= 2:
        counterpart = parent.args[1 - parent.args.index(node)]
    elif isinstance(parent, ast.Compare) and len(parent.ops) == 1 and isinstance(parent.ops[0], ast.Eq):
        counterpart = parent.comparators[0] if parent.left is node else parent.left
    if counterpart is None:
        raise UnsupportedTestCase(
            f"SciCode step {step_number}: cannot tell what 'target' is compared with in {ast.unparse(parent)!r}"
        )
    return ast.Call(ast.Name("_em_set", ast.Load()), [index, counterpart], [])
