"""crm plugin new: scaffold a plugin package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit


@cli.group()
def plugin() -> None:
    """Write a new plugin to start from."""


def _written(d: dict[str, Any]) -> str:
    files = "\n".join(f"  {f}" for f in d["files"])
    return (
        f"wrote plugin {d['plugin']} to {d['directory']}:\n{files}\n"
        f'next: pip install -e "{d["directory"]}" && python -m pytest -q {d["directory"]}'
    )


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(),
    help="Where to write the plugin (a directory that does not exist yet; default: NAME).",
)
@JSON_OPTION
def plugin_new(name: str, directory: str | None, as_json: bool) -> None:
    """Write a working plugin package NAME.

    A pyproject with the entry points the core expects, a plugin module with one
    attribute, one table and its migration, a command group with --json, a README
    and a test that checks the plugin contract."""
    from crmcore.scaffold import new_plugin

    taken = set(cli.commands)
    emit(new_plugin(name, Path(directory or name), taken=taken), as_json, _written)
