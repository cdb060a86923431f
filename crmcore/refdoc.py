"""Generate the API reference (``docs/reference/*.md``) from the docstrings.

``python -m crmcore.refdoc`` rewrites the files in ``docs/reference/`` (``--dir
DIR`` for another folder; ``--check`` only reports stale files and exits 1); a
test fails when the files differ from what this module renders, so the
reference always says what the code does. Documented: every public method of
:class:`~crmcore.service.CRM`, the registration objects plugins return from
their hooks, the pytest fixtures of :mod:`crmcore.testing`, and the public
names of :mod:`crmcore.parse`, :mod:`crmcore.cli` (with ``output`` and
``params``), :mod:`crmcore.files` and the tables of :mod:`crmcore.schema`.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

HEADER = "Generated from the docstrings by `python -m crmcore.refdoc`; do not edit by hand."
REGISTRATION = (
    "PluginInfo",
    "Attribute",
    "Job",
    "Template",
    "Channel",
    "Workflow",
    "TimelineSource",
    "TimelineEntry",
)
# every module whose docstrings the reference shows; their examples run as doctests
DOCUMENTED_MODULES = (
    "crmcore.registry",
    "crmcore.entities",
    "crmcore.service",
    "crmcore.service.aliases",
    "crmcore.services.base",
    "crmcore.services.customers",
    "crmcore.services.lifecycle",
    "crmcore.services.relationships",
    "crmcore.services.merge",
    "crmcore.services.forget",
    "crmcore.services.records",
    "crmcore.services.timeline",
    "crmcore.services.card",
    "crmcore.services.tickets",
    "crmcore.services.export",
    "crmcore.services.messages",
    "crmcore.services.inbound",
    "crmcore.services.jobs",
    "crmcore.services.staff",
    "crmcore.services.admin",
    "crmcore.present",
    "crmcore.services.monitoring",
    "crmcore.services.sealed",
    "crmcore.followups",
    "crmcore.lifecycle_rules",
    "crmcore.testing",
    "crmcore.parse",
    "crmcore.cli",
    "crmcore.cli._app",
    "crmcore.cli.output",
    "crmcore.cli.params",
    "crmcore.files",
    "crmcore.schema",
)
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "docs" / "reference"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _doc(obj: Any) -> str:
    return inspect.getdoc(obj) or "(undocumented)"


class _Annotation:
    """An annotation kept as source text (``from __future__ import annotations``),
    shown without the quotes ``repr`` would add."""

    def __init__(self, text: Any) -> None:
        self.text = text if isinstance(text, str) else inspect.formatannotation(text)

    def __repr__(self) -> str:
        return self.text


def _signature(fn: Callable[..., Any]) -> str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    empty = inspect.Parameter.empty
    sig = sig.replace(
        parameters=[
            p if p.annotation is empty else p.replace(annotation=_Annotation(p.annotation))
            for p in sig.parameters.values()
        ],
        return_annotation=(
            empty if sig.return_annotation is empty else _Annotation(sig.return_annotation)
        ),
    )
    return _ADDRESS.sub("", str(sig))


def _public_names(module: ModuleType) -> list[str]:
    """``__all__``, else the public functions and classes defined in the module."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return sorted(names)
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == module.__name__
    )


def _own_doc(cls: type, name: str, member: Any) -> str:
    """A member's own docstring; one it would inherit from a base class (a
    framework's protocol method such as click's ``convert``) is named instead."""
    doc = getattr(member, "__doc__", None)
    if doc:
        return inspect.cleandoc(doc)
    for base in cls.__mro__[1:]:
        if name in vars(base):
            return f"(implements `{base.__module__.split('.')[0]}.{base.__qualname__}.{name}`)"
    return _doc(member)


def _bullet(head: str, text: str) -> str:
    """A list item whose continuation lines stay inside the item."""
    first, *rest = text.splitlines() or [""]
    return "\n".join([f"- {head}: {first}", *(f"  {line}" if line else "" for line in rest)])


def _members(cls: type) -> list[str]:
    """The public methods and properties a class defines itself."""
    out = []
    for attr, member in sorted(vars(cls).items()):
        if attr.startswith("_"):
            continue
        if isinstance(member, property):
            out.append(_bullet(f"`{attr}` (property)", _own_doc(cls, attr, member.fget)))
        elif inspect.isfunction(member) or isinstance(member, classmethod | staticmethod):
            fn = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            out.append(_bullet(f"`{attr}{_signature(fn)}`", _own_doc(cls, attr, fn)))
    return out


def _describe(name: str, value: Any, level: str = "###") -> list[str]:
    import click

    if isinstance(value, click.Command):
        return [f"{level} `{name}` (click command)", "", _doc(value.callback), ""]
    if inspect.isclass(value):
        members = _members(value)
        return [
            f"{level} class `{name}`",
            "",
            _doc(value),
            "",
            *members,
            *([""] if members else []),
        ]
    if callable(value):
        return [f"{level} `{name}{_signature(value)}`", "", _doc(value), ""]
    return [f"{level} `{name}`", "", f"`{_ADDRESS.sub('', repr(value))}`", ""]


def _module_page(title: str, modules: Iterable[str]) -> str:
    out = [f"# {title}", "", HEADER, ""]
    for name in modules:
        module = importlib.import_module(name)
        out += [f"## `{name}`", "", _doc(module), ""]
        for public in _public_names(module):
            out += _describe(public, getattr(module, public))
    return _finish(out)


def _finish(lines: list[str]) -> str:
    return "\n".join(lines).rstrip() + "\n"


def crm_page() -> str:
    """The CRM facade's public methods and properties, then each service's
    operations (``crm.customers.add``), with signatures and docstrings."""
    from crmcore.service import CRM
    from crmcore.services.base import Service

    out = ["# The `CRM` facade and its services", "", HEADER, "", _doc(CRM), ""]
    out += _class_entries(CRM, "crm", "CRM")
    for area, cls in CRM.SERVICES.items():
        out += [f"## `crm.{area}`", "", _doc(cls), ""]
        out += _class_entries(cls, f"crm.{area}", cls.__name__, skip=vars(Service))
    return _finish(out)


def _class_entries(
    cls: type, prefix: str, owner: str, skip: Mapping[str, Any] | None = None
) -> list[str]:
    """``### `PREFIX.NAME(signature)``` and the docstring of every public member of
    ``cls`` and its bases (those in ``skip`` left out)."""
    out: list[str] = []
    for name in sorted(dir(cls)):
        if name.startswith("_") or (skip is not None and name in skip):
            continue
        member = inspect.getattr_static(cls, name)
        if isinstance(member, property):
            out += [f"### `{prefix}.{name}` (property)", "", _doc(member), ""]
        elif isinstance(member, classmethod | staticmethod):
            fn = member.__func__
            out += [f"### `{owner}.{name}{_signature(fn)}`", "", _doc(fn), ""]
        elif inspect.isfunction(member):
            out += [f"### `{prefix}.{name}{_signature(member)}`", "", _doc(member), ""]
    return out


def registration_page() -> str:
    """The objects plugins return from their registration hooks: fields and meaning."""
    import crmcore

    out = [
        "# Registration objects",
        "",
        HEADER,
        "",
        "What plugins return from their hooks (`from crmcore import ...`). Each is a",
        "frozen attrs class built with keyword arguments; the examples run as doctests.",
        "",
    ]
    for name in REGISTRATION:
        cls = getattr(crmcore, name)
        out += [f"## `{name}`", "", _doc(cls), "", "| field | type | default |", "|---|---|---|"]
        for field in attrs.fields(cls):
            if field.default is attrs.NOTHING:
                default = "required"
            elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                default = f"`{field.default.factory.__name__}()`"
                if default == "`<lambda>()`":
                    default = f"`{field.default.factory()!r}`"
            else:
                default = f"`{field.default!r}`"
            kind = str(field.type).replace("|", "\\|")
            out += [f"| `{field.name}` | `{kind}` | {default} |"]
        members = _members(cls)
        out += ["", *members, *([""] if members else [])]
    return _finish(out)


def _fixture_function(value: Any) -> Callable[..., Any] | None:
    """The function behind a pytest fixture (the wrapper differs between pytest versions)."""
    if hasattr(value, "_get_wrapped_function"):
        return value._get_wrapped_function()
    if getattr(value, "_pytestfixturefunction", None) is not None:
        return value
    return None


def testing_page() -> str:
    """The pytest fixtures that installing crmcore gives a plugin's tests."""
    import crmcore.testing as testing

    out = ["# Test fixtures (`crmcore.testing`)", "", HEADER, "", _doc(testing), ""]
    for name, value in sorted(vars(testing).items()):
        fn = _fixture_function(value)
        if fn is None or name.startswith("_"):
            continue
        params = [
            p for p in inspect.signature(fn).parameters if p != "request" and not p.startswith("_")
        ]
        uses = f" (uses {', '.join(f'`{p}`' for p in params)})" if params else ""
        out += [f"## fixture `{name}`{uses}", "", _doc(fn), ""]
    helpers = [
        n
        for n in _public_names(testing)
        if _fixture_function(getattr(testing, n)) is None and not n.startswith("pytest_")
    ]
    if helpers:
        out += ["## Helpers", ""]
        for name in helpers:
            out += _describe(name, getattr(testing, name))
    return _finish(out)


def schema_page() -> str:
    """The core's tables (columns, types, kinds) and the ``live_customers`` selectable."""
    from sqlalchemy import Table

    from crmcore import schema
    from crmcore.storage.scope import core_catalog

    catalog = core_catalog()
    out = ["# The core's tables (`crmcore.schema`)", "", HEADER, "", _doc(schema), ""]
    live = schema.live_customers
    out += [
        "## `live_customers`",
        "",
        "Columns: " + ", ".join(f"`{c.key}`" for c in live.c) + ".",
        "",
        "```sql",
        *(line.rstrip() for line in str(live.element.compile()).splitlines()),
        "```",
        "",
    ]
    for name, table in sorted(vars(schema).items()):
        if not isinstance(table, Table) or table.metadata is not schema.metadata:
            continue
        out += [
            f"## `{name}` (table `{table.name}`, {catalog.kind(table)} data)",
            "",
            "| column | type | null | notes |",
            "|---|---|---|---|",
        ]
        for col in table.c:
            notes = []
            if col.primary_key:
                notes.append("primary key")
            notes += [f"-> `{fk.target_fullname}`" for fk in col.foreign_keys]
            if col.info.get("pii"):
                notes.append(f"personal ({col.info['pii']})")
            null = "yes" if col.nullable else "no"
            out.append(f"| `{col.key}` | {col.type} | {null} | {', '.join(notes)} |")
        out.append("")
    return _finish(out)


def pages() -> dict[str, str]:
    """File name -> content of every reference page."""
    got = {
        "crm.md": crm_page(),
        "registration.md": registration_page(),
        "testing.md": testing_page(),
        "parse.md": _module_page("Parsing input (`crmcore.parse`)", ["crmcore.parse"]),
        "cli.md": _module_page(
            "The command line for plugins (`crmcore.cli`)",
            ["crmcore.cli", "crmcore.cli.output", "crmcore.cli.params"],
        ),
        "files.md": _module_page("Files for users (`crmcore.files`)", ["crmcore.files"]),
        "schema.md": schema_page(),
    }
    index = [
        "# API reference",
        "",
        HEADER,
        "",
        "- [crm.md](crm.md): the `CRM` service, every public method",
        "- [registration.md](registration.md): `PluginInfo`, `Attribute`, `Job`, `Template`,",
        "  `Channel`, `Workflow`, `TimelineSource`, `TimelineEntry`",
        "- [testing.md](testing.md): the pytest fixtures for plugin tests",
        "- [parse.md](parse.md): parsing and cleaning what people type",
        "- [cli.md](cli.md): `pass_crm`, `emit`, tables and number parameters",
        "- [files.md](files.md): writing files for users",
        "- [schema.md](schema.md): the core's tables and `live_customers`",
        "- [../hooks.md](../hooks.md): the hooks (generated from the specs)",
    ]
    return {"README.md": _finish(index), **got}


def main(argv: list[str] | None = None) -> int:
    """Write the reference pages (or, with ``--check``, report the stale ones)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m crmcore.refdoc", description="Generate the API reference."
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the folder to write")
    parser.add_argument(
        "--check", action="store_true", help="only report stale pages (exit 1), write nothing"
    )
    args = parser.parse_args(argv)
    folder: Path = args.dir
    stale = []
    try:
        for name, text in pages().items():
            path = folder / name
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            stale.append(name)
            if not args.check:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    except OSError as e:
        print(f"error: {folder}: {e.strerror or e}", file=sys.stderr)
        return 1
    if args.check and stale:
        print(
            f"stale in {folder}: {', '.join(stale)}; run python -m crmcore.refdoc", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
