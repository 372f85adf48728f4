"""One contract test per module of ``em_eval.integration``: each fails loudly when lm-eval moves,
renames or reshapes what that module patches (read from lm-eval's installed source or objects)."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import lm_eval
import pytest
import tomllib

import em_eval.integration
from em_eval import plugin
from em_eval.integration import hook

LM_EVAL = Path(lm_eval.__file__).parent


def _tree(relative: str) -> ast.Module:
    return ast.parse((LM_EVAL / relative).read_text(encoding="utf-8"))


def _method(relative: str, cls: str, name: str) -> ast.FunctionDef:
    for node in ast.walk(_tree(relative)):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    return item
    raise AssertionError(f"lm-eval's {relative} has no {cls}.{name}: em_eval.integration must follow it")


def test_every_integration_module_has_its_contract_test() -> None:
    modules = {m.name for m in pkgutil.iter_modules(em_eval.integration.__path__)}
    tests = {name.removeprefix("test_contract_") for name in globals() if name.startswith("test_contract_")}
    assert modules == tests
    for name in modules:
        assert f"``{name}``" in em_eval.integration.__doc__, f"{name} is missing from the integration table"


def test_contract_hook() -> None:
    """0.4.13 reads no entry points (else the hook would step aside); the modules it waits for exist;
    the .pth calls what exists."""
    registry = (LM_EVAL / "api" / "registry.py").read_text(encoding="utf-8")
    assert "entry_points(" not in registry and not plugin.lm_eval_discovers_models()
    assert plugin.lm_eval_discovers_models("0.4.14") and not plugin.lm_eval_discovers_models("0.4.13")
    for name in ("lm_eval.models", "lm_eval.tasks.manager", *plugin.LATER_IMPORTS):
        assert importlib.util.find_spec(name) is not None, f"lm-eval has no module {name} any more"
    line = (Path(plugin.__file__).parents[1] / "em_eval_startup.pth").read_text(encoding="utf-8")
    assert all(f"{name}()" in line for name in ("hook.running_lm_eval", "plugin.start", "hook.forget_em_eval"))
    assert all(callable(f) for f in (hook.running_lm_eval, plugin.start, hook.forget_em_eval))


def test_entry_points_name_the_registered_classes_and_are_installed() -> None:
    pyproject = tomllib.loads((Path(plugin.__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["entry-points"][plugin.ENTRY_POINT_GROUP]
    assert declared == _registered_names()
    assert plugin.our_models() == declared, "the installed entry points are stale: pip install -e ."


def _registered_names() -> dict[str, str]:
    """``@register_model`` name -> ``module:Class`` anywhere in em_eval (read, not imported: vLLM may be absent)."""
    names = {}
    package = Path(plugin.__file__).parent
    for source in package.rglob("*.py"):
        module = ".".join(source.relative_to(package.parent).with_suffix("").parts)
        for cls in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(cls, ast.ClassDef):
                continue
            for node in cls.decorator_list:
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "register_model":
                    names.update({a.value: f"{module}:{cls.name}" for a in node.args if isinstance(a, ast.Constant)})
    return names


def test_registered_placeholders_upgrade_to_the_decorated_class() -> None:
    """What lets the hook's lazy ``"module:Class"`` and the class's ``@register_model`` coexist."""
    from lm_eval.api.model import LM
    from lm_eval.api.registry import Registry

    registry = Registry("model", base_cls=LM)
    plugin.register_models(registry)
    cls = type("EmInfLM", (LM,), {"__module__": "em_eval.backends.hf"})
    registry.register("em_inf")(cls)
    assert registry.get("em_inf") is cls


def test_contract_task_manager() -> None:
    from lm_eval.tasks import TaskManager

    from em_eval.integration.task_manager import add_task_path

    parameter = inspect.signature(TaskManager.__init__).parameters["include_path"]
    assert parameter.default is None and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ours = type("OurTaskManager", (TaskManager,), {})  # patched here, lm-eval's class stays as it is
    add_task_path(ours, plugin.tasks_dir)
    assert "em_smoke" in ours(include_defaults=False).all_tasks
    assert not getattr(TaskManager.__init__, "_em_eval_task_path", False)


def test_contract_task_index() -> None:
    from lm_eval.tasks import _index

    from em_eval.integration.task_index import ENTRY_FIELDS, SKIPPED_DIRS

    assert tuple(f.name for f in dataclasses.fields(_index.Entry)) == ENTRY_FIELDS
    assert isinstance(inspect.getattr_static(_index.TaskIndex, "build"), staticmethod)
    build = inspect.signature(_index.TaskIndex.build).parameters
    assert list(build) == ["paths", "resolve_includes"]
    assert build["resolve_includes"].kind is inspect.Parameter.KEYWORD_ONLY
    assert all(isinstance(k.value, (int, str)) for k in _index.Kind), "the cache stores Kind values as JSON"
    assert (LM_EVAL / "tasks" / "gsm8k").is_dir(), "the built-in tasks sit beside lm_eval/tasks/_index.py"
    assert SKIPPED_DIRS <= set(_index._IGNORE_DIRS)


def test_contract_log_noise() -> None:
    import lm_eval.api.task
    import lm_eval.evaluator

    from em_eval.integration.log_noise import CUSTOM_KWARGS, ENSURE_SAMPLE, FILTERED_LOGGERS

    assert (lm_eval.api.task.eval_logger.name, lm_eval.evaluator.eval_logger.name) == FILTERED_LOGGERS
    task_source = (LM_EVAL / "api" / "task.py").read_text(encoding="utf-8")
    assert f'f"{{self.config.task}}: {CUSTOM_KWARGS}' in task_source, "the message must start with the task name"
    evaluator_source = (LM_EVAL / "evaluator.py").read_text(encoding="utf-8")
    assert ENSURE_SAMPLE in evaluator_source and "specified through cli" in evaluator_source


def test_contract_git_probe() -> None:
    import lm_eval.evaluator
    import lm_eval.loggers.utils as loggers

    from em_eval.integration.git_probe import HOLDERS

    assert inspect.signature(loggers.get_git_commit_hash).parameters == {}
    assert list(inspect.signature(loggers.get_commit_from_path).parameters) == ["repo_path"]
    assert HOLDERS == ("lm_eval.loggers.utils", "lm_eval.evaluator")
    assert hasattr(lm_eval.evaluator, "get_git_commit_hash"), "the evaluator binds the probe at import"


@pytest.mark.parametrize(
    ("relative", "cls", "defined_in", "owner"),
    [
        ("models/huggingface.py", "HFLM", "models/huggingface.py", "HFLM"),
        ("models/vllm_causallms.py", "VLLM", "models/vllm_causallms.py", "VLLM"),
        ("models/openai_completions.py", "LocalCompletionsAPI", "models/api_models.py", "TemplateAPI"),
    ],
)
def test_contract_backend_guard(relative: str, cls: str, defined_in: str, owner: str) -> None:
    from em_eval.integration.backend_guard import PLAIN_BACKENDS

    assert PLAIN_BACKENDS["lm_eval." + relative.removesuffix(".py").replace("/", ".")] == cls
    if owner != cls:  # the method is inherited: the class must still derive from its owner
        (node,) = [n for n in ast.walk(_tree(relative)) if isinstance(n, ast.ClassDef) and n.name == cls]
        assert owner in {b.id for b in node.bases if isinstance(b, ast.Name)}, f"{cls} no longer derives from {owner}"
    method = _method(defined_in, owner, "generate_until")
    assert [a.arg for a in method.args.args] == ["self", "requests", "disable_tqdm"]
    assert set(PLAIN_BACKENDS) == {
        "lm_eval.models.huggingface",
        "lm_eval.models.vllm_causallms",
        "lm_eval.models.openai_completions",
    }


def test_contract_vllm_cpu_version() -> None:
    from em_eval.integration.vllm_cpu_version import MODULE

    tree = _tree(MODULE.removeprefix("lm_eval.").replace(".", "/") + ".py")
    binds = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "importlib.metadata"]
    assert any(a.name == "version" and a.asname is None for n in binds for a in n.names), (
        "lm-eval's vLLM module no longer binds importlib.metadata.version at import"
    )
    assert any(
        isinstance(n, ast.Call)
        and getattr(n.func, "id", "") == "version"
        and [getattr(a, "value", None) for a in n.args] == ["vllm"]
        for n in ast.walk(tree)
    )


def test_pass_through_adds_our_include_path_unless_the_user_gave_one() -> None:
    from em_eval.eval_command import with_include_path

    assert with_include_path(["--model", "em_inf"], "/t") == ["--model", "em_inf", "--include_path", "/t"]
    assert with_include_path(["ls", "tasks"], "/t") == ["ls", "tasks", "--include_path", "/t"]
    assert with_include_path(["--model", "hf", "--include_path", "/mine"], "/t") is None
    assert with_include_path(["--include_path=/mine"], "/t") is None
    assert with_include_path(["--help"], "/t") == ["--help"] and with_include_path([], "/t") == []
