"""Schema creation and upgrade with Alembic: one version branch per plugin.

The core's branch is ``crmcore``; a plugin's branch is labelled with its name
and found through its ``crm_migrations`` hook. ``upgrade`` moves the core and
each *enabled* plugin's branch to its head, so enabling a plugin later upgrades
only what it adds. A plugin without migrations gets its declared tables created
if missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from crmcore import revisions as revisions_mod

CORE_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def _alembic_config(connection: Any, version_dirs: list[str]) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("version_locations", " ".join(version_dirs))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(
    engine: Engine, plugins: Any, *, all_version_dirs: dict[str, str] | None = None
) -> list[str]:
    """Upgrade the core and every enabled plugin; return the branches upgraded."""
    enabled_dirs = {name: str(path) for name, path in plugins.each("crm_migrations") if path}
    dirs = dict(all_version_dirs or {})
    dirs.update(enabled_dirs)
    done = ["crmcore"]
    with engine.connect() as conn, _write_tx(conn):
        cfg = _alembic_config(conn, [str(CORE_VERSIONS), *sorted(set(dirs.values()))])
        command.upgrade(cfg, "crmcore@head")
        for name in plugins.order:
            if name in enabled_dirs:
                command.upgrade(cfg, f"{name}@head")
                done.append(name)
        # Plugins that declare tables without migrations: create what is missing.
        existing = set(inspect(conn).get_table_names())
        for owner, tables in plugins.each("crm_tables"):
            if owner in enabled_dirs:
                continue
            for table in tables or ():
                if table.name not in existing:
                    table.create(conn)
    return done


def _write_tx(conn: Any) -> Any:
    conn.info["crm_write"] = True
    return conn.begin()


def schema_problem(engine: Engine, plugins: Any) -> str | None:
    """What keeps the database from serving this code and these plugins, as one
    line naming ``crm db upgrade``, or None when the schema is up to date.

    Reads ``alembic_version`` (one query) and the revision files of the core and
    the enabled plugins: the head of each branch must be applied. A plugin
    without migrations needs its declared tables. A core revision the code does
    not know means the database is newer than this crmcore.
    """
    dirs = {name: str(path) for name, path in plugins.each("crm_migrations") if path}
    version_dirs = [str(CORE_VERSIONS), *sorted(set(dirs.values()))]
    with engine.connect() as conn:
        stored = set(MigrationContext.configure(conn).get_current_heads())
        without_migrations = [
            (owner, tables)
            for owner, tables in plugins.each("crm_tables")
            if owner not in dirs and tables
        ]
        existing = set(inspect(conn).get_table_names()) if without_migrations else set()
    branches = [("crmcore", "the core"), *((n, f"plugin {n!r}") for n in plugins.order)]
    branches = [(b, label) for b, label in branches if b == "crmcore" or b in dirs]
    graph = _graph(version_dirs, [b for b, _ in branches])
    if graph is None:
        graph = _graph_from_alembic(version_dirs, [b for b, _ in branches])
    known, heads_of = graph
    newer = sorted(v for v in stored if v not in known and v.startswith("crmcore_"))
    if newer:
        return (
            f"the database's schema ({', '.join(newer)}) is newer than this crmcore: "
            "upgrade crmcore to use it"
        )
    done = revisions_mod.applied([v for v in stored if v in known], known)
    missing = [label for branch, label in branches if not heads_of[branch] <= done]
    missing += [
        f"plugin {owner!r}"
        for owner, tables in without_migrations
        if any(t.name not in existing for t in tables)
    ]
    if not missing:
        return None
    if not stored:
        return "the database has no schema yet: run `crm db upgrade` (or `crm init`)"
    return (
        f"the database's schema is behind the code for {', '.join(missing)}: run `crm db upgrade`"
    )


def _graph(
    version_dirs: list[str], branches: list[str]
) -> tuple[dict[str, Any], dict[str, set[str]]] | None:
    """Every revision and each branch's heads, read from the files as text."""
    known = revisions_mod.read(version_dirs)
    if known is None:
        return None
    heads_of: dict[str, set[str]] = {}
    for branch in branches:
        heads = revisions_mod.branch_heads(known, branch)
        if heads is None:
            return None
        heads_of[branch] = heads
    return known, heads_of


def _graph_from_alembic(
    version_dirs: list[str], branches: list[str]
) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """The same as :func:`_graph`, through Alembic (runs every script)."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import Revision

    script = ScriptDirectory.from_config(_alembic_config(None, version_dirs))
    known = {
        r.revision: revisions_mod.Revision(
            revision=r.revision,
            down=revisions_mod.names(r.down_revision),
            labels=tuple(r.branch_labels or ()),
            depends_on=revisions_mod.names(r.dependencies),
        )
        for r in script.walk_revisions()
    }
    heads_of = {
        branch: {
            h.revision
            for h in script.revision_map.get_revisions(f"{branch}@heads")
            if isinstance(h, Revision)
        }
        for branch in branches
    }
    return known, heads_of


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
