"""The revision graph of the core's and the plugins' migrations, read without
running the migration scripts.

Every command checks at start that the database's schema is the code's
(:func:`crmcore.migrate.schema_problem`); loading and compiling each script
through Alembic costs tens of milliseconds per command, most of a short
command's time. A migration file names its place in the graph in four
module-level assignments of literals (``revision``, ``down_revision``,
``branch_labels``, ``depends_on``), which is all the check needs: they are read
here as text. A file that does not state them that way makes :func:`read`
answer None, and the caller asks Alembic instead.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import attrs

_FIELD = re.compile(
    r"^(revision|down_revision|branch_labels|depends_on)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M
)


@attrs.frozen
class Revision:
    """One migration's place in the graph."""

    revision: str
    down: tuple[str, ...]
    labels: tuple[str, ...]
    depends_on: tuple[str, ...]


def names(value: object) -> tuple[str, ...]:
    """A revision field (None, one id, or several) as a tuple of ids."""
    found = _names(value)
    return found if found is not None else ()


def _names(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


# (path, mtime, size) -> what the file declares: a long-lived process (the
# HTTP API, a worker, the tests) reads each file once
_READ: dict[tuple[str, int, int], Revision | None] = {}


def _read_file(path: Path) -> Revision | None:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _READ:
        _READ[key] = _parse_file(path)
    return _READ[key]


def _parse_file(path: Path) -> Revision | None:
    fields: dict[str, tuple[str, ...]] = {}
    for name, text in _FIELD.findall(path.read_text(encoding="utf-8")):
        if name in fields:
            return None  # assigned twice: not a plain declaration
        try:
            names = _names(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            return None
        if names is None:
            return None
        fields[name] = names
    revision = fields.get("revision")
    if not revision or len(revision) != 1 or "down_revision" not in fields:
        return None
    return Revision(
        revision=revision[0],
        down=fields["down_revision"],
        labels=fields.get("branch_labels", ()),
        depends_on=fields.get("depends_on", ()),
    )


def read(directories: Iterable[str | Path]) -> dict[str, Revision] | None:
    """Revision id -> :class:`Revision` for every migration file in ``directories``;
    None when a file cannot be read as plain declarations."""
    found: dict[str, Revision] = {}
    for directory in directories:
        for path in sorted(Path(directory).glob("*.py")):
            if path.name.startswith("_"):
                continue
            rev = _read_file(path)
            if rev is None or rev.revision in found:
                return None
            found[rev.revision] = rev
    return found


def branch_heads(revisions: dict[str, Revision], label: str) -> set[str] | None:
    """The heads of the branch labelled ``label``: its root and every revision
    below which it grows, less those another revision of the branch builds on.
    None when no revision carries the label."""
    roots = [r.revision for r in revisions.values() if label in r.labels]
    if not roots:
        return None
    members = set(roots)
    grew = True
    while grew:
        grew = False
        for r in revisions.values():
            if r.revision not in members and any(d in members for d in r.down):
                members.add(r.revision)
                grew = True
    below = {d for r in revisions.values() if r.revision in members for d in r.down}
    return members - below


def applied(heads: Iterable[str], revisions: dict[str, Revision]) -> set[str]:
    """The revisions applied when ``heads`` are: each with every revision below
    it and every revision it depends on."""
    seen: set[str] = set()
    todo = list(heads)
    while todo:
        rev = todo.pop()
        if rev in seen or rev not in revisions:
            continue
        seen.add(rev)
        todo.extend(revisions[rev].down)
        todo.extend(revisions[rev].depends_on)
    return seen
