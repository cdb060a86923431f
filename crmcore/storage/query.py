"""The query layer that core and plugins share: :class:`DB`.

Every statement a CRM call runs goes through :class:`DB`. It

- filters every table that holds customer data (derived from the foreign keys,
  see :mod:`crmcore.storage.scope`) to the customers the acting principal may
  see, in every SELECT of a statement and the target of every UPDATE and DELETE;
- refuses, for a restricted principal, every statement shape the filter cannot
  scope (raw SQL text, DDL, lightweight tables, ...);
- refuses writes by a principal without the ``write`` permission, changes of
  configuration without ``configure``, inserts for customers the principal may
  not see (as "not found"), and restricted writes that would touch a customer
  the principal may not see or grant access (checked in a savepoint);
- writes the audit row of every change in the same transaction.

The open connection is private (``_conn``): no public name of a DB reaches it,
so a plugin's statements always pass the checks above. The core's own modules
reach it through :mod:`crmcore.storage._driver`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import (
    CompoundSelect,
    Delete,
    Insert,
    Select,
    Table,
    TextClause,
    Update,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection

from crmcore.access import Principal
from crmcore.errors import AccessDenied, CRMError
from crmcore.schema import customers
from crmcore.storage import _driver
from crmcore.storage._driver import Prepared
from crmcore.storage._writes import (
    AUDIT_INSERT,
    UNAUDITED,
    WriteChecks,
    refuse_protected,
    refuse_protected_sql,
)
from crmcore.storage.audit import ChainWriter
from crmcore.storage.scope import Catalog, core_catalog


def scope_statement(stmt: Any, principal: Principal, catalog: Catalog | None = None) -> Any:
    """Return ``stmt`` with the principal's visibility filter added to every
    SELECT, UPDATE and DELETE inside it that reads customer data; a shape the
    filter cannot scope is refused (:meth:`crmcore.storage.scope.Catalog.check`)."""
    if principal.unrestricted:
        return stmt
    catalog = catalog or core_catalog()
    catalog.check(stmt, principal)
    return catalog.scope(stmt, principal)


class DB(WriteChecks):
    """The query layer bound to one open transaction and one principal."""

    def __init__(
        self,
        conn: Connection,
        principal: Principal,
        *,
        now: dt.datetime,
        command: str,
        catalog: Catalog | None = None,
    ) -> None:
        self._conn = conn
        self.principal = principal
        self.now = now
        self.command = command
        self.catalog = catalog or core_catalog()
        self._dbapi: Any = None
        self._chain = ChainWriter(conn, insert_one=lambda row: _driver.run(self, AUDIT_INSERT, row))

    @contextlib.contextmanager
    def _as_service(self) -> Iterator[DB]:
        """The core services' own writes of access-defining rows (a ticket's
        customer and owner, a customer->staff relationship), done after the
        service checked the principal may make them: within the block the
        principal's scope is unrestricted; its permissions and the audit
        trail's "who" stay its own."""
        acting = self.principal
        self.principal = attrs.evolve(acting, scope="all")
        try:
            yield self
        finally:
            self.principal = acting

    @contextlib.contextmanager
    def unscoped(self, reason: str) -> Iterator[DB]:
        """Read and write the whole base for a rule that is a fact about it, not
        about what the acting principal may see (a cluster of repair requests in
        one building, whoever filed them). Within the block statements run
        through this query layer unfiltered, still checked for permissions and
        audited under the acting principal; entering it writes one audit row with
        ``reason``. What is read in the block must never be shown to the
        principal. Needs an open write transaction and the 'write' permission."""
        if not isinstance(reason, str) or not reason.strip():
            raise CRMError("unscoped: give the reason the rule needs the whole base")
        self.require_write()
        self.audit("unscoped", None, "unscoped", None, {"reason": reason.strip()}, customer_id=None)
        with self._as_service():
            yield self

    # -- reading -------------------------------------------------------------
    def execute(self, stmt: Any, params: Any = None) -> Any:
        """Execute a SQLAlchemy statement, scoped, checked and audited.

        For a restricted principal the statement must be a shape the access
        filter can scope (:meth:`crmcore.storage.scope.Catalog.check`); anything else
        is refused with :class:`AccessDenied`."""
        if isinstance(stmt, str | TextClause):
            if not self.principal.unrestricted:
                raise AccessDenied(
                    f"{self.principal.key}: raw SQL needs an unrestricted principal; "
                    "build the statement with SQLAlchemy Core instead"
                )
            refuse_protected_sql(str(stmt))
            return self._conn.execute(stmt if isinstance(stmt, TextClause) else text(stmt), params)
        if self.principal.unrestricted:
            if isinstance(stmt, Insert | Update | Delete):
                return self._write(stmt, params)
            return self._conn.execute(stmt, params)
        self.catalog.check(stmt, self.principal, self._conn.dialect)
        if isinstance(stmt, Select | CompoundSelect):
            return self._conn.execute(self.catalog.scope(stmt, self.principal), params)
        return self._write(stmt, params)

    def exists_globally(self, table: Table, **equals: Any) -> bool:
        """Whether any row of ``table`` has these column values, whoever may see
        it: for uniqueness checks (a member number, a meter, a plate already
        taken) that must look at the whole base. Answers only yes or no, never
        a row; the table must be one of the CRM's and not internal."""
        return self._count_globally(table, equals, limit=1) > 0

    def count_globally(self, table: Table, **equals: Any) -> int:
        """How many rows of ``table`` have these column values, whoever may see
        them (a cluster of repair requests in one building). A number, never a
        row; the table must be one of the CRM's and not internal."""
        return self._count_globally(table, equals, limit=None)

    def _count_globally(self, table: Table, equals: Mapping[str, Any], *, limit: int | None) -> int:
        if not self.catalog.known(table):
            raise AccessDenied(
                f"table {getattr(table, 'name', table)!r} is not a table of this CRM"
            )
        if self.catalog.kind(table) == "internal" and not self.principal.unrestricted:
            raise AccessDenied(f"{self.principal.key} may not read {table.name}")
        if not equals:
            raise CRMError(f"{table.name}: a global count needs at least one column = value")
        for key in equals:
            if key not in table.c:
                raise CRMError(f"{table.name} has no column {key!r}")
        where = [
            table.c[k] == v if v is not None else table.c[k].is_(None) for k, v in equals.items()
        ]
        inner = select(table.c[next(iter(equals))]).where(*where)
        if limit is not None:
            inner = inner.limit(limit)
        return int(
            self._conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one()
        )

    def driver_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Driver-level SQL (``?`` placeholders, rewritten for psycopg) on this
        transaction; all rows as plain tuples. For set-based bulk work (imports,
        analytics) where SQLAlchemy's per-statement work is not wanted. Nothing
        here is scoped, so a restricted principal is refused."""
        if not self.principal.unrestricted:
            raise AccessDenied(f"{self.principal.key} may not run raw SQL (it is not scoped)")
        refuse_protected_sql(sql)
        return _driver.driver_query(self, sql, params)

    def fetch(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> list[Any]:
        """All rows of a prepared SELECT, scoped to what the principal may see
        (the driver fast path when there is nothing to scope)."""
        if self.principal.unrestricted:
            return _driver.run_rows(self, prepared, params)
        return list(self.execute(prepared.stmt, params).all())

    def fetch_first(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
        """The first row of a prepared SELECT (or None), scoped like :meth:`fetch`."""
        if self.principal.unrestricted:
            return _driver.run_first(self, prepared, params)
        return self.execute(prepared.stmt, params).first()

    def insert_one(self, table: Table, prepared: Prepared, values: Mapping[str, Any]) -> Any:
        """Insert one row with ``prepared`` (``table.insert().returning(<pk>)``
        with ``keys`` = ``values``' keys) and audit it; returns the new primary
        key. The same checks and audit row as :meth:`execute` of
        ``table.insert().values(**values)``, which restricted principals get."""
        if not self.principal.unrestricted:
            return self.execute(table.insert().values(**values)).inserted_primary_key[0]
        self.require_write()
        refuse_protected(table.name)
        self.require_table_write(table)
        if table.name not in UNAUDITED:
            self._chain.lock()
        ident = _driver.run(self, prepared, values).fetchone()[0]
        if table.name not in UNAUDITED:
            row = dict(values)
            cid = row.get("customer_id", ident if table is customers else None)
            self.audit(table.name, str(ident), "insert", None, row, customer_id=cid)
        return ident

    def scalar(self, stmt: Any, params: Any = None) -> Any:
        return self.execute(stmt, params).scalar()

    def first(self, stmt: Any, params: Any = None) -> Any:
        return self.execute(stmt, params).first()

    def all(self, stmt: Any, params: Any = None) -> list[Any]:
        return list(self.execute(stmt, params).all())

    def insert_rows(
        self, table: Table, rows: Sequence[Mapping[str, Any]], *, what: str = ""
    ) -> int:
        """Bulk insert (executemany) with one summary audit row; for set-based paths."""
        if not rows:
            return 0
        self.require_write()
        refuse_protected(table.name)
        self.require_table_write(table)
        if not self.principal.unrestricted:
            self.catalog.check(table.insert(), self.principal, self._conn.dialect)
            for cid in {r["customer_id"] for r in rows if r.get("customer_id") is not None}:
                self.require_customer(cid, write=True)
            if table.name not in UNAUDITED:
                self._chain.lock()
            with self._conn.begin_nested():
                result = self._conn.execute(table.insert().return_defaults(), list(rows))
                self._check_inserted_rows(table, result)
        else:
            if table.name not in UNAUDITED:
                self._chain.lock()
            self._conn.execute(table.insert(), list(rows))
        if table.name not in UNAUDITED:
            self.audit(
                table.name,
                None,
                "insert",
                None,
                {"rows": len(rows), "what": what},
                customer_id=None,
            )
        return len(rows)
