"""Plugins use only the core's public API.

A plugin's code (``plugins/*/crm_*``) may import the public modules listed in the
README ("Import only the public API") and their public names. It may not import
a ``_``-prefixed module (``crmcore.cli._app``, ``crmcore.service._base``), a
``_``-prefixed name, a name a module leaves out of its ``__all__``, or a module
outside that list (``crmcore.db``, whose ``Prepared`` and ``DB`` internals are
the core's own: plugins reach the database through ``crm.db``). The source is
read with :mod:`ast`, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PUBLIC_MODULES = frozenset(
    {
        "crmcore",
        "crmcore.analytics",
        "crmcore.analytics.abc",
        "crmcore.analytics.clv",
        "crmcore.analytics.overdue",
        "crmcore.analytics.rfm",
        "crmcore.cli",
        "crmcore.cli.output",
        "crmcore.cli.params",
        "crmcore.files",
        "crmcore.i18n",
        "crmcore.migrate",
        "crmcore.parse",
        "crmcore.present",
        "crmcore.readmewalk",
        "crmcore.schema",
        "crmcore.testing",
        "crmcore.web",
        "crmcore.web.routes",
        "crmcore.webhooks",
    }
)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_problem(module: str) -> str | None:
    if any(_private(part) for part in module.split(".")):
        return f"{module} is a private module of crmcore"
    if module not in PUBLIC_MODULES:
        return f"{module} is not part of crmcore's public API"
    return None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


def _name_problem(module: str, name: str) -> str | None:
    if name.startswith("__") and name.endswith("__"):
        return None
    if _private(name):
        return f"{module}.{name} is private"
    if f"{module}.{name}" in PUBLIC_MODULES:
        return None
    public = getattr(importlib.import_module(module), "__all__", None)
    if public is not None and name not in public:
        return f"{module}.{name} is not in {module}.__all__"
    return None


def violations(source: str, filename: str = "<plugin>") -> list[str]:
    """Every use of a private or non-public crmcore name in ``source``, as
    ``file:line: what``."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    crmcore_aliases: dict[str, str] = {}  # a local name -> the crmcore module it is bound to

    def report(node: ast.AST, problem: str | None) -> None:
        if problem:
            found.append(f"{filename}:{getattr(node, 'lineno', 0)}: {problem}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "crmcore" or alias.name.startswith("crmcore."):
                    report(node, _module_problem(alias.name))
                    if alias.asname:
                        crmcore_aliases[alias.asname] = alias.name
                    else:
                        crmcore_aliases["crmcore"] = "crmcore"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module == "crmcore" or module.startswith("crmcore."):
                problem = _module_problem(module)
                report(node, problem)
                if problem is None:
                    for alias in node.names:
                        report(node, _name_problem(module, alias.name))
                        if f"{module}.{alias.name}" in PUBLIC_MODULES:
                            crmcore_aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
    # attribute access through an imported crmcore module: crmcore.db.Prepared,
    # each chain checked once, from its outermost attribute
    inner_links = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner_links:
            chain: list[str] = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                chain.insert(0, inner.attr)
                inner = inner.value
            if not (isinstance(inner, ast.Name) and inner.id in crmcore_aliases):
                continue
            path = crmcore_aliases[inner.id]
            for part in chain:
                if _private(part):
                    report(node, f"{path}.{part} is private")
                    break
                if f"{path}.{part}" in PUBLIC_MODULES:
                    path = f"{path}.{part}"
                    continue
                if _is_module(f"{path}.{part}"):
                    report(node, _module_problem(f"{path}.{part}"))
                else:
                    report(node, _name_problem(path, part))
                break
        elif isinstance(node, ast.Call) and _is_import_module(node):
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                if target.value == "crmcore" or target.value.startswith("crmcore."):
                    report(node, _module_problem(target.value))
    return found


def _is_import_module(node: ast.Call) -> bool:
    fn = node.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    return name in ("import_module", "__import__") and bool(node.args)


def plugin_sources() -> list[Path]:
    return sorted(ROOT.glob("plugins/*/crm_*/**/*.py"))


def test_the_plugins_are_found():
    packages = {p.relative_to(ROOT).parts[2] for p in plugin_sources()}
    assert packages == {"crm_retail", "crm_utility", "crm_insurance", "crm_real_estate"}


@pytest.mark.parametrize("path", plugin_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_public_crmcore_names(path):
    assert violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))) == []


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("from crmcore.db import Prepared", "crmcore.db is not part of crmcore's public API"),
        ("import crmcore.db", "crmcore.db is not part of crmcore's public API"),
        ("from crmcore.cli._app import AppContext", "crmcore.cli._app is a private module"),
        ("import crmcore.service._base as base", "crmcore.service._base is a private module"),
        ("from crmcore.cli import _app", "crmcore.cli._app is private"),
        ("from crmcore.parse import _NOT_THERE", "crmcore.parse._NOT_THERE is private"),
        (
            "from crmcore.cli import AppContext",
            "crmcore.cli.AppContext is not in crmcore.cli.__all__",
        ),
        ("from crmcore import schema\nx = schema._private", "crmcore.schema._private is private"),
        (
            "import crmcore\nx = crmcore.db.Prepared",
            "crmcore.db is not part of crmcore's public API",
        ),
        ("import crmcore\nx = crmcore.cli._app.cli", "crmcore.cli._app is private"),
        ("import importlib\nimportlib.import_module('crmcore.service._base')", "private module"),
        ("def f():\n    from crmcore.service import _records", "crmcore.service is not part"),
    ],
)
def test_a_private_or_internal_import_is_reported(source, what):
    found = violations(source)
    assert len(found) == 1 and what in found[0], found


@pytest.mark.parametrize(
    "source",
    [
        "from crmcore import Job, PluginInfo, hookimpl",
        "from crmcore.schema import NAMING, Id, customers",
        "from crmcore.cli import JSON_OPTION, emit, pass_crm",
        "from crmcore.analytics import abc",
        "import crmcore.parse\nx = crmcore.parse.clean_text",
        "import crmcore\nx = crmcore.__version__",
        "from crm_retail import _util",  # the plugin's own private module is its business
    ],
)
def test_public_imports_pass(source):
    assert violations(source) == []
