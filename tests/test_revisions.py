"""The revision graph read from the migration files as text is Alembic's graph."""

from __future__ import annotations

from pathlib import Path

from crmcore import migrate, plugins, revisions
from crmcore.config import from_dict

ALL = ["retail", "utility", "insurance", "real_estate"]


def _dirs() -> tuple[list[str], list[str]]:
    pm = plugins.build(from_dict({"crm": {"database": "sqlite://", "plugins": ALL}}))
    dirs = {name: str(path) for name, path in pm.each("crm_migrations") if path}
    return [str(migrate.CORE_VERSIONS), *sorted(dirs.values())], ["crmcore", *sorted(dirs)]


def test_the_text_graph_is_alembics_for_the_core_and_every_bundled_plugin() -> None:
    version_dirs, branches = _dirs()
    text = migrate._graph(version_dirs, branches)
    assert text is not None, "a bundled migration is not written as plain declarations"
    known, heads = text
    a_known, a_heads = migrate._graph_from_alembic(version_dirs, branches)
    assert heads == a_heads
    assert {r: (v.down, v.depends_on) for r, v in known.items()} == {
        r: (v.down, v.depends_on) for r, v in a_known.items()
    }


def test_a_file_it_cannot_read_as_declarations_makes_it_ask_alembic(tmp_path: Path) -> None:
    (tmp_path / "x_0001.py").write_text(
        'revision = "x_0001"\ndown_revision = compute()\n', encoding="utf-8"
    )
    assert revisions.read([tmp_path]) is None
    (tmp_path / "x_0001.py").write_text(
        'revision = "x_0001"\nrevision = "x_0002"\ndown_revision = None\n', encoding="utf-8"
    )
    assert revisions.read([tmp_path]) is None


def test_heads_and_applied_follow_down_revisions_and_dependencies(tmp_path: Path) -> None:
    files = {
        "a1": 'revision = "a1"\ndown_revision = None\nbranch_labels = ("a",)\n',
        "a2": 'revision = "a2"\ndown_revision = "a1"\n',
        "b1": 'revision = "b1"\ndown_revision = None\nbranch_labels = ("b",)\ndepends_on = "a1"\n',
    }
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    graph = revisions.read([tmp_path])
    assert graph is not None
    assert revisions.branch_heads(graph, "a") == {"a2"}
    assert revisions.branch_heads(graph, "b") == {"b1"}
    assert revisions.branch_heads(graph, "c") is None
    assert revisions.applied(["b1"], graph) == {"b1", "a1"}
    assert revisions.applied(["a2"], graph) == {"a2", "a1"}
