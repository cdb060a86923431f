"""``crm plugin new NAME``: write a working plugin package to start from.

The package follows the conventions of the bundled plugins (docs/plugins.md):
a ``pyproject.toml`` with the ``crmcore.plugins`` and ``crmcore.commands``
entry points, a plugin module with a :class:`~crmcore.registry.PluginInfo`, one
attribute, one table with its first migration spelt out, a command group whose
commands take ``--json``, a README, and a test that calls
:func:`crmcore.testing.assert_plugin_contract`. Its files are made from the
templates in ``crmcore/scaffold_template`` with the plugin's names filled in.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

from crmcore.errors import ValidationError

TEMPLATES = Path(__file__).parent / "scaffold_template"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,30}")


def check_name(name: str, taken: Collection[str] = ()) -> str:
    """The plugin name, if usable: 2 to 31 characters, lower-case ASCII letters,
    digits and underscores, starting with a letter, not ending in an underscore
    (it names the package ``crm_NAME``, its tables ``NAME_...`` and its
    revisions ``NAME_0001``), and not a name in ``taken`` (the core's commands)."""
    if not NAME_PATTERN.fullmatch(name) or name.endswith("_") or "__" in name:
        raise ValidationError(
            f"plugin name {name!r}: expected 2-31 lower-case ASCII letters, digits or "
            "single underscores, starting with a letter (e.g. 'greeter')"
        )
    command = name.replace("_", "-")
    if name in taken or command in taken:
        raise ValidationError(f"plugin name {name!r}: 'crm {command}' is a core command")
    return name


def files_for(name: str) -> dict[str, str]:
    """Relative path -> content of every file of the plugin ``name``."""
    package = f"crm_{name}"
    values = {"__NAME__": name, "__PACKAGE__": package, "__COMMAND__": name.replace("_", "-")}
    placed = {
        "pyproject.toml.tmpl": "pyproject.toml",
        "README.md.tmpl": "README.md",
        "package/__init__.py.tmpl": f"{package}/__init__.py",
        "package/plugin.py.tmpl": f"{package}/plugin.py",
        "package/tables.py.tmpl": f"{package}/tables.py",
        "package/notes.py.tmpl": f"{package}/notes.py",
        "package/cli.py.tmpl": f"{package}/cli.py",
        "package/migrations/initial.py.tmpl": f"{package}/migrations/{name}_0001_initial.py",
        "tests/test_plugin.py.tmpl": f"tests/test_{name}_plugin.py",
    }
    out = {}
    for template, target in placed.items():
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        out[target] = text
    return out


def new_plugin(name: str, directory: Path, *, taken: Collection[str] = ()) -> dict[str, object]:
    """Write the plugin ``name`` into ``directory``, which must not exist yet.

    The files are written into a temporary directory beside it, which is then
    renamed: a refusal or a failure leaves nothing behind, and an existing file
    or directory is never touched. Returns what was written."""
    check_name(name, taken)
    if directory.exists() or directory.is_symlink():
        raise ValidationError(f"--dir {directory}: already exists; choose a new directory")
    parent = directory.absolute().parent
    if not parent.is_dir():
        raise ValidationError(f"--dir {directory}: {parent} is not a directory")
    files = files_for(name)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=parent))
    except OSError as e:
        raise ValidationError(
            f"--dir {directory}: cannot write in {parent}: {e.strerror}"
        ) from None
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp's directory is private to its owner
        os.rename(staging, directory)
    except BaseException as e:
        shutil.rmtree(staging)  # only the temporary directory made above
        if isinstance(e, OSError):
            raise ValidationError(f"--dir {directory}: {e.strerror or e}") from None
        raise
    return {"plugin": name, "directory": str(directory), "files": sorted(files)}
