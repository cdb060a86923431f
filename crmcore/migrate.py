"""Schema creation and upgrade with Alembic: one version branch per plugin.

The core's branch is ``crmcore``; a plugin's branch is labelled with its name
and found through its ``crm_migrations`` hook. ``upgrade`` moves the core and
each *enabled* plugin's branch to its head, so enabling a plugin later upgrades
only what it adds. A plugin without migrations gets its declared tables created
if missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, inspect
from sqlalchemy.engine import Engine

CORE_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def create_tables(op: Any, tables: Iterable[Table]) -> None:
    """For a plugin's first revision: create these tables (and their indexes)."""
    bind = op.get_bind()
    for table in tables:
        table.create(bind, checkfirst=True)


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


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
