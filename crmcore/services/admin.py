"""``crm.admin``: the schema (upgrade, check), the audit trail and purging a plugin's data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, inspect, select, text

from crmcore import migrate
from crmcore.errors import AccessDenied, NotFound, PluginError, SchemaError
from crmcore.schema import audit_log, customer_labels
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row
from crmcore.storage._driver import connection


class AdminService(Service):
    """Schema upgrade and check, the audit trail and its verification, plugin data purge."""

    area = "admin"

    def __init__(self, crm: Any) -> None:
        super().__init__(crm)
        self._schema_checked = False

    # -- schema ----------------------------------------------------------------
    def upgrade(self) -> list[str]:
        """Create or upgrade the schema of the core and every enabled plugin.

        Needs the ``admin`` permission (the system has it). A database without
        the core's tables yet has no staff: only the system or the config's
        ``default_principal`` (whom ``crm init`` then adds as the admin) may create it.
        """
        self._require_schema_admin()
        return migrate.upgrade(self.crm.engine, self.plugins, all_version_dirs=installed_version_dirs())

    def check_schema(self) -> None:
        """Refuse to work on a database whose schema is behind the code or an
        enabled plugin (:class:`SchemaError`, one line naming ``crm db upgrade``).

        One read of ``alembic_version``, once per CRM (the CLI asks before every
        command that uses the database, except those that create or replace it)."""
        if self._schema_checked:
            return
        problem = migrate.schema_problem(self.crm.engine, self.plugins)
        if problem is not None:
            raise SchemaError(problem)
        self._schema_checked = True

    def _require_schema_admin(self) -> None:
        principal = self.crm.staff.acting_principal()
        if principal is None:
            return  # a new database: the configured default sets it up
        if not principal.can("admin"):
            why = "has departed" if not principal.active else "needs the 'admin' permission"
            raise AccessDenied(f"{principal.key} may not upgrade the schema: {why}")

    # -- audit ------------------------------------------------------------------
    @operation(write=False)
    def audit_trail(
        self, customer: Any = None, *, entity: str | None = None, limit: int = 1000
    ) -> list[dict]:
        """Audit rows for one customer (or one entity kind), oldest first. The
        recorded values are masked (see crmcore.masking) for a principal
        without 'pii'."""
        from crmcore.masking import Masker

        if not self.db.principal.can("audit") and not self.db.principal.can("admin"):
            raise AccessDenied(
                f"{self.db.principal.key} may not read the audit trail: needs 'audit'"
            )
        stmt = select(audit_log).order_by(audit_log.c.id).limit(limit)
        if customer is not None:
            stmt = stmt.where(audit_log.c.customer_id == customer_row(self.db, customer).id)
        if entity is not None:
            stmt = stmt.where(audit_log.c.entity == entity)
        masker = Masker.for_crm(self.crm)
        return [masker.audit_row(r._mapping) for r in connection(self.db).execute(stmt)]

    @operation(write=False)
    def verify_audit_trail(self) -> dict[str, Any]:
        """Check the audit trail's hash chain from the first row to the last:
        ``ok`` with the row count and the head hash, or the id of the first row
        that does not verify and why (see :mod:`crmcore.audit`)."""
        from crmcore.storage.audit import verify

        if not self.db.principal.can("audit") and not self.db.principal.can("admin"):
            raise AccessDenied(
                f"{self.db.principal.key} may not verify the audit trail: needs 'audit'"
            )
        return verify(connection(self.db)).to_json()

    # -- purge ------------------------------------------------------------------
    def purge_plan(self, name: str) -> dict[str, Any]:
        """What ``purge_plugin(name)`` would delete: tables with row counts, labels."""
        if name in self.plugins.order:
            raise PluginError(
                f"plugin {name!r} is enabled; disable it in the config before purging its data"
            )
        plugin = _installed_plugin(name)
        tables = list(getattr(plugin, "crm_tables", lambda: [])() or [])
        attrs_ = [a.name for a in getattr(plugin, "crm_customer_attributes", lambda: [])() or []]
        with self.crm.transaction(write=False, command="plugins purge"):
            if not self.db.principal.can("admin"):
                raise AccessDenied(f"{self.db.principal.key} may not purge: needs 'admin'")
            existing = set(inspect(connection(self.db)).get_table_names())
            counts = {
                t.name: connection(self.db).execute(select(func.count()).select_from(t)).scalar()
                for t in tables
                if t.name in existing
            }
            labels = connection(self.db).execute(
                select(func.count())
                .select_from(customer_labels)
                .where(customer_labels.c.source == name)
            ).scalar()
        return {"plugin": name, "tables": counts, "attributes": attrs_, "labels": labels}

    def purge_plugin(self, name: str) -> dict[str, Any]:
        """Delete a disabled plugin's tables, labels, attribute values and schema branch."""
        plan = self.purge_plan(name)
        plugin = _installed_plugin(name)
        tables = [
            t for t in getattr(plugin, "crm_tables", lambda: [])() or [] if t.name in plan["tables"]
        ]
        with self.crm.transaction(command="plugins purge"):
            conn = connection(self.db)
            for t in sorted(tables, key=lambda t: -len(t.foreign_keys)):
                t.drop(conn)
            conn.execute(customer_labels.delete().where(customer_labels.c.source == name))
            for attr in plan["attributes"]:
                conn.execute(
                    _remove_attribute_sql(conn.dialect.name), {"path": f'$."{attr}"', "key": attr}
                )
            if inspect(conn).has_table("alembic_version"):
                # plugin revision ids start with "NAME_" (see README, "Migrations")
                conn.execute(
                    text("DELETE FROM alembic_version WHERE version_num LIKE :p"),
                    {"p": f"{name}_%"},
                )
            self.db.audit("plugin", name, "purge", plan, None, customer_id=None)
        return plan


def _remove_attribute_sql(dialect: str) -> Any:
    if dialect == "sqlite":
        return text(
            "UPDATE customers SET attributes = json_remove(attributes, :path) "
            "WHERE json_extract(attributes, :path) IS NOT NULL"
        )
    return text(
        "UPDATE customers SET attributes = (attributes::jsonb - :key)::json "
        "WHERE (attributes::jsonb) ? :key"
    )


def _installed_plugin(name: str) -> Any:
    from crmcore.plugins import _load, installed

    eps = installed()
    if name not in eps:
        raise NotFound(f"plugin {name!r} is not installed")
    return _load(name, eps[name])


def installed_version_dirs() -> dict[str, str]:
    """Migration directories of every installed plugin (enabled or not), so
    Alembic can always locate revisions already applied to the database."""
    from crmcore.plugins import _load, installed

    dirs: dict[str, str] = {}
    for name, ep in installed().items():
        try:
            plugin = _load(name, ep)
        except PluginError:
            continue
        fn = getattr(plugin, "crm_migrations", None)
        if callable(fn):
            dirs[name] = str(fn())
    return dirs


