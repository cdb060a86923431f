"""Types a checker can check: the entities and registration objects are attrs
classes mypy understands, every package ships ``py.typed``, and the mypy
configuration covers the core and every bundled plugin."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from crmcore.hooks import PROJECT

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PROJECTS = sorted(ROOT.glob("plugins/*/pyproject.toml"))

# A plugin author's code as mypy sees it: each line marked ``# E: text`` must be
# reported with that text, and nothing else may be.
PLUGIN_CODE = """\
from crmcore import Customer, Workflow

ok = Customer(id=1, name="Wu Fang", stage="member")
reveal_type(ok.attributes)  # N: dict[str, Any]
Customer(id=1, name="Wu Fang", nickname="Fang")  # E: Unexpected keyword argument "nickname"
Customer(1, "Wu Fang")  # E: Too many positional arguments
Customer(name="Wu Fang")  # E: Missing named argument "id"
ok.name = "Wu Lei"  # E: is read-only
Workflow(name="repair", states=("open", "done"))
Workflow(name="repair", states=[1, "done"])  # E: incompatible type "int"; expected "str"
"""


def _package(project: Path) -> str:
    """The import package a plugin distribution ships (its ``crm_*`` folder)."""
    (package,) = [p.name for p in project.parent.glob("crm_*") if p.is_dir()]
    return package


def test_entities_are_attrs_classes_to_the_type_checker(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    code = tmp_path / "plugin_code.py"
    code.write_text(PLUGIN_CODE, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports",
            "silent",
            "--hide-error-context",
            "--no-pretty",
            str(code),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    reported: dict[int, list[str]] = {}
    for line in done.stdout.splitlines():
        found = re.match(rf"{re.escape(str(code))}:(\d+): (error|note): (.*)", line)
        if found:
            reported.setdefault(int(found[1]), []).append(found[3])
    expected = {
        number: marker[1]
        for number, text in enumerate(PLUGIN_CODE.splitlines(), 1)
        if (marker := re.search(r"# [EN]: (.*)$", text))
    }
    assert set(reported) == set(expected), done.stdout + done.stderr
    for number, wanted in expected.items():
        assert any(wanted in message for message in reported[number]), (number, reported)


@pytest.mark.parametrize(
    "project",
    [ROOT / "pyproject.toml", *PLUGIN_PROJECTS],
    ids=lambda p: "crmcore" if p.parent == ROOT else p.parent.name,
)
def test_every_package_ships_py_typed(project: Path) -> None:
    package = "crmcore" if project.parent == ROOT else _package(project)
    assert (project.parent / package / "py.typed").is_file()
    data = tomllib.loads(project.read_text(encoding="utf-8"))
    assert "py.typed" in data["tool"]["setuptools"]["package-data"][package]


def test_mypy_checks_the_core_and_every_bundled_plugin() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    files = set(config["tool"]["mypy"]["files"])
    wanted = {"crmcore"} | {
        f"{p.parent.relative_to(ROOT).as_posix()}/{_package(p)}" for p in PLUGIN_PROJECTS
    }
    assert len(wanted) == 5
    assert wanted <= files, wanted - files
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci.index("mypy") > ci.index("ruff check ."), "CI runs mypy after the linter"


IMPL_MODULES = (
    "crmcore.defaults",
    "crm_retail.plugin",
    "crm_utility.plugin",
    "crm_insurance.plugin",
    "crm_real_estate.plugin",
)


def _specs() -> dict[str, inspect.Signature]:
    from crmcore.hooks import SPEC_MODULES

    return {
        name: inspect.signature(fn)
        for module in SPEC_MODULES
        for name, fn in vars(module).items()
        if getattr(fn, f"{PROJECT}_spec", None) is not None
    }


@pytest.mark.parametrize("module_name", IMPL_MODULES)
def test_hookimpls_are_typed_as_their_specs(module_name: str) -> None:
    """A bundled hook implementation declares each argument with its
    specification's type (not ``Any``, which would leave its body unchecked),
    and a return type as precise as the specification's."""
    module = importlib.import_module(module_name)
    specs = _specs()
    impls = {
        name: fn
        for name, fn in vars(module).items()
        if getattr(fn, f"{PROJECT}_impl", None) is not None
    }
    assert impls, f"{module_name} implements no hook"
    wrong = []
    for name, fn in sorted(impls.items()):
        spec, impl = specs[name], inspect.signature(fn)
        for param in impl.parameters.values():
            wanted = spec.parameters[param.name].annotation
            if param.annotation != wanted:
                wrong.append(f"{name}({param.name}: {param.annotation}), spec: {wanted}")
        returned = impl.return_annotation
        if returned is inspect.Signature.empty or (
            "Any" in str(returned) and "Any" not in str(spec.return_annotation)
        ):
            wrong.append(f"{name} -> {returned}, spec: -> {spec.return_annotation}")
    assert not wrong, "\n".join(wrong)
