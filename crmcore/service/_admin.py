"""Jobs, the audit trail, schema upgrade and plugin data purge."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, inspect, select, text

from crmcore import migrate
from crmcore.access import Principal
from crmcore.clock import FixedClock
from crmcore.errors import AccessDenied, CRMError, NotFound, PluginError, SchemaError
from crmcore.registry import Job
from crmcore.schema import audit_log, customer_labels, job_runs, staff
from crmcore.service._base import CRMBase, operation
from crmcore.storage._driver import connection


class AdminMixin(CRMBase):
    # -- schema ----------------------------------------------------------------
    def upgrade(self) -> list[str]:
        """Create or upgrade the schema of the core and every enabled plugin.

        Needs the ``admin`` permission (the system has it). A database without
        the core's tables yet has no staff: only the system or the config's
        ``default_principal`` (whom ``crm init`` then adds as the admin) may create it.
        """
        self._require_schema_admin()
        return migrate.upgrade(self.engine, self.plugins, all_version_dirs=installed_version_dirs())

    def check_schema(self) -> None:
        """Refuse to work on a database whose schema is behind the code or an
        enabled plugin (:class:`SchemaError`, one line naming ``crm db upgrade``).

        One read of ``alembic_version``, once per CRM (the CLI asks before every
        command that uses the database, except those that create or replace it)."""
        if getattr(self, "_schema_checked", False):
            return
        problem = migrate.schema_problem(self.engine, self.plugins)
        if problem is not None:
            raise SchemaError(problem)
        self._schema_checked = True

    def acting_principal(self) -> Principal | None:
        """The principal this CRM acts as, resolved now (one read): an unknown
        staff key is refused (:class:`AccessDenied`, one line). None only for a
        database without tables yet acting as the config's ``default_principal``
        (nobody is anyone before the schema exists)."""
        ref = self._principal_ref
        if isinstance(ref, Principal):
            return ref
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(staff.name):
                if ref == self.config.core.get("default_principal"):
                    return None
                raise AccessDenied(
                    f"unknown staff member {ref!r}: the database has no staff yet; "
                    "create the schema without --as (crm init)"
                )
            return self._resolve_principal(conn)

    def _require_schema_admin(self) -> None:
        principal = self.acting_principal()
        if principal is None:
            return  # a new database: the configured default sets it up
        if not principal.can("admin"):
            why = "has departed" if not principal.active else "needs the 'admin' permission"
            raise AccessDenied(f"{principal.key} may not upgrade the schema: {why}")

    # -- jobs -------------------------------------------------------------------
    def jobs(self) -> dict[str, Job]:
        """The enabled plugins' jobs by name (sorted), as their :class:`~crmcore.registry.Job`
        objects."""
        return dict(sorted(self.plugins.declared.get("job", {}).items()))

    def run_jobs(
        self, names: Iterable[str] | None = None, *, at: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Run jobs (all, or those named) as of ``at``, each in its own transaction.

        A job that fails rolls back alone and is reported; the others still run.
        Each result has ``status`` ``"ok"`` (with the job's ``summary``) or
        ``"failed"`` (with ``error``, one line). A failed run is recorded in
        ``job_runs`` too, in a transaction of its own after the rollback, with
        the summary ``{"failed": true, "error": ...}``. The principal is checked
        before any job runs: a refused run runs and commits nothing.
        Re-running a job for the same ``at`` must not duplicate its effects (jobs
        use keys), so a killed or failed run can simply be run again.
        """
        available = self.jobs()
        names = list(names or available)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise NotFound(f"unknown job(s) {unknown}; jobs: {sorted(available) or 'none'}")
        self._require_job_runner()
        when = at or self.now()
        at_crm = self._clone(clock=FixedClock(when))
        results = []
        for name in names:
            result: dict[str, Any] = {
                "job": name,
                "at": when.isoformat(),
                "owner": self.plugins.owners[("job", name)],
            }
            try:
                summary = _plain(_run_job(at_crm, name, available[name], when))
            except Exception as e:  # any failure of one job: rolled back, reported, recorded
                error = _one_line(e)
                try:
                    _record_job_run(at_crm, name, when, {"failed": True, "error": error})
                except CRMError as unrecorded:  # the database refused even that: say so
                    error += f" (not recorded in job_runs: {_one_line(unrecorded)})"
                result |= {"status": "failed", "error": error}
            else:
                result |= {"status": "ok", "summary": summary}
            results.append(result)
        return results

    def _require_job_runner(self) -> None:
        """Refuse, before any job runs, a principal who may not run jobs: jobs work
        set-based over the whole base and write, so they need an active principal
        with scope 'all' and 'write' (the system, an admin)."""
        with self.transaction(write=False, command="jobs run"):
            p = self.db.principal
        if not p.active:
            raise AccessDenied(f"{p.key} has departed and may not run jobs; nothing was run")
        if not p.can("write"):
            raise AccessDenied(
                f"{p.key} may not run jobs: they change data and need the 'write' permission"
            )
        if not p.unrestricted:
            raise AccessDenied(
                f"{p.key} may not run jobs: they cover every customer; "
                "run them as an admin (scope 'all')"
            )

    def at(self, when: dt.datetime) -> Any:
        """This CRM with a clock fixed at ``when``."""
        return self._clone(clock=FixedClock(when))

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
            stmt = stmt.where(audit_log.c.customer_id == self._customer_row(customer).id)
        if entity is not None:
            stmt = stmt.where(audit_log.c.entity == entity)
        masker = Masker.for_crm(self)
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
        with self.transaction(write=False, command="plugins purge"):
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
        with self.transaction(command="plugins purge"):
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


def _run_job(crm: Any, name: str, job: Job, when: dt.datetime) -> dict[str, Any]:
    """Run one job and record it in ``job_runs``, in one transaction."""
    with crm.transaction(command=f"jobs run {name}"):
        summary = job.run(crm, when) or {}
        connection(crm.db).execute(
            job_runs.insert().values(
                job=name, as_of=when, finished_at=when, summary=_plain(summary)
            )
        )
    return summary


def _record_job_run(crm: Any, name: str, when: dt.datetime, summary: dict[str, Any]) -> None:
    """Record a job run that failed, in a transaction of its own (the job's own
    transaction was rolled back)."""
    with crm.transaction(command=f"jobs run {name}"):
        connection(crm.db).execute(
            job_runs.insert().values(job=name, as_of=when, finished_at=when, summary=summary)
        )


def _one_line(error: Exception) -> str:
    """An error as one line: a CRMError's message, else the exception's type and
    first line (a bug in a job, not a user mistake)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, CRMError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _plain(value: Any) -> Any:
    from crmcore.storage.audit import jsonable

    return jsonable(value)
