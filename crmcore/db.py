"""Storage: the engine, and the one query layer that core and plugins share.

Every statement a CRM call runs goes through :class:`DB`. It

- filters every table that holds customer data (derived from the foreign keys,
  see :mod:`crmcore.scope`) to the customers the acting principal may see, in
  every SELECT of a statement and the target of every UPDATE and DELETE;
- refuses, for a restricted principal, every statement shape the filter cannot
  scope (raw SQL text, DDL, lightweight tables, ...);
- refuses writes by a principal without the ``write`` permission, changes of
  configuration without ``configure``, inserts for customers the principal may
  not see (as "not found"), and restricted writes that would touch a customer
  the principal may not see or grant access (checked in a savepoint);
- writes the audit row of every change in the same transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import (
    Column,
    CompoundSelect,
    Delete,
    Insert,
    Select,
    Table,
    TextClause,
    Update,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, Engine

from crmcore.access import Principal, visible_customer_check
from crmcore.audit import PROTECTED_TABLES, ChainWriter, Entry, redact_customer
from crmcore.errors import AccessDenied, CRMError, NotFound, RetryableError
from crmcore.schema import audit_log, customers
from crmcore.scope import Catalog, core_catalog

SQLITE_BUSY_MS = 10_000
AUDIT_ROW_LIMIT = 1000  # above this many rows a set-based change is audited as one summary row
UNAUDITED = {"audit_log", "customer_stats", "job_runs", "inbound_messages"}
SQLITE_SYNCHRONOUS = ("full", "normal", "off")  # [crm] sqlite_synchronous; "full" is the default


BUSY_MESSAGE = "the database is busy (another process is writing); retry the operation"


def database_error(orig: BaseException | None) -> CRMError:
    """The one-line CRM error for a driver's operational error: a lock or busy
    timeout, a serialization failure or a deadlock is a :class:`RetryableError`."""
    text = str(orig).lower()
    if any(word in text for word in ("locked", "busy", "could not serialize", "deadlock")):
        return RetryableError(BUSY_MESSAGE)
    first = (str(orig).splitlines() or [type(orig).__name__])[0]
    return CRMError(f"database error: {first}")


def make_engine(url: str, *, sqlite_synchronous: str = "full") -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout,
    ``BEGIN IMMEDIATE`` for write transactions (no lock-upgrade deadlocks) and
    ``PRAGMA synchronous`` = ``sqlite_synchronous``: ``full`` (default) syncs the
    WAL at every commit, so a committed transaction survives a power loss;
    ``normal`` may lose the last commits on power loss (never on a crash of the
    process); ``off`` leaves syncing to the OS."""
    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"sqlite_synchronous: expected one of {list(SQLITE_SYNCHRONOUS)}, "
            f"got {sqlite_synchronous!r}"
        )
    from crmcore import dburl

    parsed = dburl.check(url)  # one clear line for a mistyped URL or a missing driver
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})

        @event.listens_for(engine, "do_connect")
        def _private_file(*_args: Any) -> None:
            # on the first connection, not at engine creation: a command that
            # refuses to run (a missing file, a bad config) creates nothing
            _create_private_sqlite_file(parsed.database)
        dburl.explain_connect_failures(engine)
        sync = sqlite_synchronous.upper()

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # straight on the driver: BEGIN is two statements of every operation.
            # A write lock held beyond the busy timeout fails here, outside
            # SQLAlchemy's error wrapping: report it as the retryable error.
            driver: Any = conn.connection.dbapi_connection  # sqlite3's, with execute()
            try:
                driver.execute("BEGIN IMMEDIATE" if conn.info.get("crm_write") else "BEGIN")
            except sqlite3.OperationalError as e:
                raise database_error(e) from None

        return engine
    engine = create_engine(parsed, pool_pre_ping=True, connect_args=dburl.connect_args(parsed))
    dburl.explain_connect_failures(engine)
    return engine


def _create_private_sqlite_file(path: str | None) -> None:
    """A new SQLite database file is created 0600 (its journal files inherit
    the mode): it holds personal data. A missing directory is left to SQLite's
    own error on the first connection."""
    from crmcore.files import create_private

    if path and path != ":memory:" and not path.startswith("file:"):
        with contextlib.suppress(OSError):
            create_private(path)


class Prepared:
    """A Core statement built once and compiled once per dialect, for hot paths.

    :meth:`DB.fetch` / :meth:`DB.fetch_first` run it straight on the DBAPI
    cursor of the open connection when the principal is unrestricted (nothing to
    scope), skipping SQLAlchemy's per-execute work; for everyone else they run
    the statement through :meth:`DB.execute`, scoped as always. Rows are named
    tuples (attribute access like a Row; ``_asdict()`` for a mapping).

    ``keys`` are the parameter names of an INSERT (its VALUES columns)."""

    __slots__ = ("stmt", "keys", "_by_dialect", "_last")

    def __init__(self, stmt: Any, keys: Sequence[str] | None = None) -> None:
        self.stmt = stmt
        self.keys = tuple(keys) if keys else None
        self._by_dialect: dict[tuple[str, str], _DriverSQL] = {}
        self._last: tuple[Dialect, _DriverSQL] | None = None

    def on(self, dialect: Dialect) -> _DriverSQL:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        key = (dialect.name, dialect.driver)
        got = self._by_dialect.get(key)
        if got is None:
            got = self._by_dialect[key] = _DriverSQL(self.stmt, dialect, self.keys)
        self._last = (dialect, got)
        return got


class _DriverSQL:
    """One statement compiled for one dialect: SQL text, parameter order, and the
    same bind and result processors SQLAlchemy would apply."""

    __slots__ = ("sql", "positional", "names", "binds", "plan", "defaults", "results", "row")

    def __init__(self, stmt: Any, dialect: Dialect, keys: tuple[str, ...] | None) -> None:
        from collections import namedtuple

        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a Prepared statement cannot have expanding/literal parameters")
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names = tuple(compiled.positiontup or ()) if self.positional else tuple(compiled.binds)
        self.binds: dict[str, Any] = {}
        self.defaults: dict[str, Any] = {}
        for name in set(self.names):
            bind = compiled.binds[name]
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.binds[name] = proc
            if bind.value is not None or bind.callable is not None:
                self.defaults[name] = bind.effective_value
        self.plan = tuple((n, self.binds.get(n)) for n in self.names)
        cols: list[Column[Any]] = list(getattr(stmt, "exported_columns", ()) or ())
        self.results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in cols
        )
        # a named tuple class built from the statement's columns (None: it has none)
        self.row: Any = namedtuple("Row", [c.key for c in cols], rename=True) if cols else None

    def params(self, given: Mapping[str, Any] | None) -> Any:
        values: Mapping[str, Any]
        if self.defaults:
            values = {**self.defaults, **given} if given else self.defaults
        else:
            values = given or {}
        if self.positional:
            return tuple([p(values[n]) if p else values[n] for n, p in self.plan])
        return {n: p(values[n]) if p else values[n] for n, p in self.plan}

    def rows(self, raw: Iterable[Sequence[Any]]) -> list[Any]:
        make, procs = self.row._make, self.results
        if not any(procs):
            return [make(r) for r in raw]
        return [make([p(v) if p else v for p, v in zip(procs, r, strict=True)]) for r in raw]


def scope_statement(stmt: Any, principal: Principal, catalog: Catalog | None = None) -> Any:
    """Return ``stmt`` with the principal's visibility filter added to every
    SELECT, UPDATE and DELETE inside it that reads customer data; a shape the
    filter cannot scope is refused (:meth:`crmcore.scope.Catalog.check`)."""
    if principal.unrestricted:
        return stmt
    catalog = catalog or core_catalog()
    catalog.check(stmt, principal)
    return catalog.scope(stmt, principal)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class DB:
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
        self.conn = conn
        self.principal = principal
        self.now = now
        self.command = command
        self.catalog = catalog or core_catalog()
        self._dbapi: Any = None
        self._chain = ChainWriter(conn, insert_one=lambda row: self.run(_AUDIT_INSERT, row))

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
        filter can scope (:meth:`crmcore.scope.Catalog.check`); anything else
        is refused with :class:`AccessDenied`."""
        if isinstance(stmt, str | TextClause):
            if not self.principal.unrestricted:
                raise AccessDenied(
                    f"{self.principal.key}: raw SQL needs an unrestricted principal; "
                    "build the statement with SQLAlchemy Core instead"
                )
            _refuse_protected_sql(str(stmt))
            return self.conn.execute(stmt if isinstance(stmt, TextClause) else _text(stmt), params)
        if self.principal.unrestricted:
            if isinstance(stmt, Insert | Update | Delete):
                return self._write(stmt, params)
            return self.conn.execute(stmt, params)
        self.catalog.check(stmt, self.principal)
        if isinstance(stmt, Select | CompoundSelect):
            return self.conn.execute(self.catalog.scope(stmt, self.principal), params)
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
            self.conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one()
        )

    def run(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
        """Run a :class:`Prepared` statement on the driver cursor, *unchecked*:
        no scoping, no write check, no audit. Core's use only (aggregates such as
        ``customer_stats``, the audit trail, reads whose customer was checked)."""
        sql = prepared.on(self.conn.dialect)
        args = sql.params(params)
        raw = self._dbapi
        if raw is None:
            raw = self._dbapi = self.conn.connection.dbapi_connection
        try:
            cur = raw.cursor()
            cur.execute(sql.sql, args)
        except self.conn.dialect.loaded_dbapi.Error as e:
            raise sa_exc.DBAPIError.instance(
                sql.sql, args, e, self.conn.dialect.loaded_dbapi.Error, dialect=self.conn.dialect
            ) from e
        return cur

    def run_rows(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> list[Any]:
        """:meth:`run` and fetch all rows (named tuples, processed like SQLAlchemy's)."""
        sql = prepared.on(self.conn.dialect)
        return sql.rows(self.run(prepared, params).fetchall())

    def driver_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Driver-level SQL (``?`` placeholders, rewritten for psycopg) on this
        transaction; all rows as plain tuples. For set-based bulk work (imports,
        analytics) where SQLAlchemy's per-statement work is not wanted. Nothing
        here is scoped, so a restricted principal is refused."""
        if not self.principal.unrestricted:
            raise AccessDenied(f"{self.principal.key} may not run raw SQL (it is not scoped)")
        _refuse_protected_sql(sql)
        conn = self.conn.connection.driver_connection
        assert conn is not None  # in a transaction: the driver connection is there
        if self.conn.dialect.name == "sqlite":
            return conn.execute(sql, tuple(params)).fetchall()
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params))
            return cur.fetchall() if cur.description else []

    def fetch(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> list[Any]:
        """All rows of a prepared SELECT, scoped to what the principal may see
        (the driver fast path when there is nothing to scope)."""
        if self.principal.unrestricted:
            return self.run_rows(prepared, params)
        return list(self.execute(prepared.stmt, params).all())

    def fetch_first(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
        """The first row of a prepared SELECT (or None), scoped like :meth:`fetch`."""
        if self.principal.unrestricted:
            sql = prepared.on(self.conn.dialect)
            got = self.run(prepared, params).fetchone()
            return None if got is None else sql.rows((got,))[0]
        return self.execute(prepared.stmt, params).first()

    def insert_one(self, table: Table, prepared: Prepared, values: Mapping[str, Any]) -> Any:
        """Insert one row with ``prepared`` (``table.insert().returning(<pk>)``
        with ``keys`` = ``values``' keys) and audit it; returns the new primary
        key. The same checks and audit row as :meth:`execute` of
        ``table.insert().values(**values)``, which restricted principals get."""
        if not self.principal.unrestricted:
            return self.execute(table.insert().values(**values)).inserted_primary_key[0]
        self.require_write()
        _refuse_protected(table.name)
        self.require_table_write(table)
        if table.name not in UNAUDITED:
            self._chain.lock()
        ident = self.run(prepared, values).fetchone()[0]
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

    def can_see(self, customer_id: int) -> bool:
        """Whether the principal may see this customer: one point query that
        follows the customer's own owner, relationship and ticket rows
        (:func:`crmcore.access.visible_customer_check`), never a list of
        everything the principal may see."""
        check = visible_customer_check(self.principal)
        if check is None:
            return True
        stmt, params = check
        return self.conn.execute(stmt, {**params, "cid": customer_id}).first() is not None

    # -- writing -------------------------------------------------------------
    def require_write(self) -> None:
        if not self.principal.can("write"):
            who = self.principal.key
            why = "has departed" if not self.principal.active else "lacks the 'write' permission"
            raise AccessDenied(f"{who} {why}; the change was refused")

    def require_customer(self, customer_id: int, *, write: bool = False) -> None:
        """Refuse unless the principal may see (and with ``write``, change) the
        customer. One the principal may not see is "not found", exactly like one
        that does not exist: a refusal never confirms that a record exists."""
        if write:
            self.require_write()
        if not self.can_see(customer_id):
            raise NotFound(f"customer {customer_id!r} not found")

    def require_table_write(self, table: Table) -> None:
        """Refuse a change of ``table`` its kind does not allow the principal:
        configuration needs ``configure``; access-defining and internal tables
        are changed through the query layer only by unrestricted principals."""
        if not self.catalog.known(table):
            if self.principal.unrestricted:
                return
            raise AccessDenied(f"table {table.name!r} is not a table of this CRM")
        kind = self.catalog.kind(table)
        who = self.principal.key
        if kind == "configuration" and not self.principal.can("configure"):
            raise AccessDenied(
                f"{who} may not change {table.name}: it is configuration, "
                "which needs the 'configure' permission"
            )
        if kind in ("access", "internal") and not self.principal.unrestricted:
            raise AccessDenied(
                f"{who} may not change {table.name} directly: it defines access "
                "and is changed only by the CRM's own operations"
            )

    def _write(self, stmt: Any, params: Any) -> Any:
        self.require_write()
        table: Table = stmt.table
        _refuse_protected(table.name)
        self.require_table_write(table)
        if isinstance(stmt, Insert):
            return self._insert(stmt, params)
        restricted = not self.principal.unrestricted
        audited = table.name not in UNAUDITED
        scoped = self.catalog.scope(stmt, self.principal) if restricted else stmt
        before: list[dict[str, Any]] = []
        pk = list(table.primary_key.columns)
        if audited:
            self._chain.lock()
        if audited or restricted:
            probe = select(table)
            if scoped.whereclause is not None:
                probe = probe.where(scoped.whereclause)
            if not restricted:
                probe = probe.limit(AUDIT_ROW_LIMIT + 1)
            before = [dict(r._mapping) for r in self.conn.execute(probe, params)]
            if restricted:
                self._refuse_locked(table, before)
        after_by_key: dict[str, dict[str, Any]] | None = None
        if restricted and before and isinstance(stmt, Update):
            # a refused change is undone even if the caller catches the refusal
            with self.conn.begin_nested():
                result = self.conn.execute(scoped, params)
                after_by_key = self._check_changed_rows(table, before)
        else:
            result = self.conn.execute(scoped, params)
        if not (audited and result.rowcount):
            return result
        action = "update" if isinstance(stmt, Update) else "delete"
        if len(before) > AUDIT_ROW_LIMIT:
            self.audit(table.name, None, action, None, {"rows": result.rowcount}, customer_id=None)
            return result
        if after_by_key is None:
            after_by_key = {}
            if action == "update" and before:
                after_by_key = self._rows_by_key(table, pk, before)
        entries = []
        for row in before:
            key = _pk_text(row, pk)
            after = after_by_key.get(key)
            old, new = _diff(row, after) if after else (row, None)
            cid = row.get("customer_id", row.get("id") if table is customers else None)
            entries.append(Entry(table.name, key, action, old, new, cid))
        self._append_audit(entries)
        return result

    def _rows_by_key(
        self, table: Table, pk: list[Any], rows: Sequence[Mapping[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """The current rows with the primary keys of ``rows``, by key text: one
        query per 500 of them."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            if len(pk) == 1:
                cond = pk[0].in_([r[pk[0].name] for r in chunk])
            else:
                cond = tuple_(*pk).in_([tuple(r[c.name] for c in pk) for r in chunk])
            for r in self.conn.execute(select(table).where(cond)):
                out[_pk_text(r._mapping, pk)] = dict(r._mapping)
        return out

    def _refuse_locked(self, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
        """A restricted principal may not touch a row a locking column marks as
        access-defining (a customer->staff relationship)."""
        for col in self.catalog.locking(table):
            for row in rows:
                if row.get(col) is not None:
                    raise AccessDenied(
                        f"{self.principal.key} may not change {table.name} rows with "
                        f"{col} set directly: they grant access; use the CRM's operations"
                    )

    def _check_changed_rows(
        self, table: Table, before: list[dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """After a restricted principal's UPDATE: the rows it changed must keep
        their keys, their guarded columns and stay visible to it. Returns the
        rows as they are now, by primary key text."""
        pk = list(table.primary_key.columns)
        who = self.principal.key
        after = self._rows_by_key(table, pk, before)
        guarded = self.catalog.guarded(table)
        for row in before:
            now = after.get(_pk_text(row, pk))
            if now is None:
                raise AccessDenied(f"{who} may not change the key of {table.name} rows")
            for col in guarded:
                if now.get(col) != row.get(col):
                    raise AccessDenied(
                        f"{who} may not change {table.name}.{col} directly: it decides "
                        "who may see the customer; use the CRM's operations"
                    )
        self._refuse_locked(table, after.values())
        self._require_visible(table, list(after.values()), "change")
        refs = self.catalog.customer_columns(table)
        moved = [
            current
            for row in before
            if any((current := after[_pk_text(row, pk)]).get(c) != row.get(c) for c in refs)
        ]
        self._require_visible(table, moved, "move", assigned=False)  # not to someone else's
        return after

    def _require_visible(
        self, table: Table, rows: Sequence[Mapping[str, Any]], verb: str, *, assigned: bool = True
    ) -> None:
        """Every one of these rows (by primary key) must be visible to the principal
        (``assigned``: rows assigned to it count as visible)."""
        cond = self.catalog.condition(self.principal, table, named=False, assigned=assigned)
        if cond is None or not rows:
            return
        pk = list(table.primary_key.columns)
        seen = 0
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            keys = or_(*[and_(*[c == k[c.key] for c in pk]) for k in chunk])
            seen += self.conn.execute(
                select(func.count()).select_from(table).where(keys, cond)
            ).scalar_one()
        if seen != len(rows):
            raise AccessDenied(
                f"{self.principal.key} may not {verb} {table.name} rows of a customer "
                "they may not see"
            )

    def _insert(self, stmt: Any, params: Any) -> Any:
        table: Table = stmt.table
        restricted = not self.principal.unrestricted
        from_select = getattr(stmt, "select", None) is not None
        rows: list[Mapping[str, Any]]
        if params is None:
            rows = [] if from_select else [_insert_values(stmt)]
        elif isinstance(params, Mapping):
            rows = [params]
        else:
            rows = list(params)
        if restricted:
            for cid in {r["customer_id"] for r in rows if r.get("customer_id") is not None}:
                self.require_customer(cid, write=True)
            if from_select and self.catalog.condition(self.principal, table) is not None:
                raise AccessDenied(
                    f"{self.principal.key}: INSERT ... SELECT into {table.name} (customer "
                    "data) is not scoped; insert the values"
                )
            # subqueries among the values read only what the principal may see
            stmt = self.catalog.scope(stmt, self.principal)
            if not from_select:
                stmt = stmt.return_defaults()
        if table.name not in UNAUDITED:
            self._chain.lock()
        if restricted and not from_select:
            # a refused insert is undone even if the caller catches the refusal
            with self.conn.begin_nested():
                result = self.conn.execute(stmt, params)
                self._check_inserted_rows(table, result)
        else:
            result = self.conn.execute(stmt, params)
        if table.name in UNAUDITED:
            return result
        if len(rows) == 1:
            row = dict(rows[0])
            pk = result.inserted_primary_key
            ident = str(pk[0]) if pk and pk[0] is not None else None
            cid = row.get("customer_id", int(ident) if table is customers and ident else None)
            self.audit(table.name, ident, "insert", None, row, customer_id=cid)
        else:  # an executemany's rowcount is -1 on some drivers: count the parameter sets
            count = len(rows) if rows else result.rowcount
            self.audit(table.name, None, "insert", None, {"rows": count}, customer_id=None)
        return result

    def _check_inserted_rows(self, table: Table, result: Any) -> None:
        """After a restricted principal's INSERT: no guarded column set, no
        access-defining row, and every new row visible to it."""
        pk = list(table.primary_key.columns)
        keys = [
            {c.key: v for c, v in zip(pk, k, strict=True)}
            for k in (result.inserted_primary_key_rows or ())
            if k is not None and all(v is not None for v in k)
        ]
        if not keys:
            raise AccessDenied(
                f"{self.principal.key}: the new {table.name} rows cannot be checked; "
                "the insert was refused"
            )
        new = list(self._rows_by_key(table, pk, keys).values())
        for col in self.catalog.guarded(table):
            if any(r.get(col) is not None for r in new):
                raise AccessDenied(
                    f"{self.principal.key} may not set {table.name}.{col} directly: it decides "
                    "who may see the customer; use the CRM's operations"
                )
        self._refuse_locked(table, new)
        self._require_visible(table, new, "add", assigned=False)

    def audit(
        self,
        entity: str,
        entity_id: str | None,
        action: str,
        before: Any,
        after: Any,
        *,
        customer_id: int | None,
    ) -> None:
        """Append one audit row to the chain in the current transaction."""
        self._append_audit([Entry(entity, entity_id, action, before, after, customer_id)])

    def _append_audit(self, entries: Sequence[Entry]) -> None:
        self._chain.append(
            entries, at=self.now, staff_id=self.principal.staff_id, command=self.command
        )

    def audit_redact(self, customer_id: int, *, also: Any = None) -> int:
        """Replace the recorded values of a forgotten customer's audit rows (and
        of the rows matching ``also``, e.g. other records whose values copied the
        customer's data); the rows themselves (who, when, what, which command) and
        their hashes stay, so the chain still verifies. The redaction is itself
        audited."""
        self._chain.lock()
        n = redact_customer(self.conn, customer_id, also=also)
        self.audit(
            "customers",
            str(customer_id),
            "forget",
            None,
            {"audit_rows_redacted": n},
            customer_id=customer_id,
        )
        return n

    def insert_rows(
        self, table: Table, rows: Sequence[Mapping[str, Any]], *, what: str = ""
    ) -> int:
        """Bulk insert (executemany) with one summary audit row; for set-based paths."""
        if not rows:
            return 0
        self.require_write()
        _refuse_protected(table.name)
        self.require_table_write(table)
        if not self.principal.unrestricted:
            self.catalog.check(table.insert(), self.principal)
            for cid in {r["customer_id"] for r in rows if r.get("customer_id") is not None}:
                self.require_customer(cid, write=True)
            if table.name not in UNAUDITED:
                self._chain.lock()
            with self.conn.begin_nested():
                result = self.conn.execute(table.insert().return_defaults(), list(rows))
                self._check_inserted_rows(table, result)
        else:
            if table.name not in UNAUDITED:
                self._chain.lock()
            self.conn.execute(table.insert(), list(rows))
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


_AUDIT_KEYS = (
    "id",
    "at",
    "staff_id",
    "command",
    "entity",
    "entity_id",
    "customer_id",
    "action",
    "before",
    "after",
    "values_salt",
    "values_digest",
    "prev_hash",
    "row_hash",
)
_AUDIT_INSERT = Prepared(audit_log.insert(), keys=_AUDIT_KEYS)


_PROTECTED_WRITE = re.compile(
    r"\b(?:insert(?:\s+or\s+\w+)?\s+into|replace\s+into|update(?:\s+or\s+\w+)?|delete\s+from"
    r"|truncate(?:\s+table)?|drop\s+table(?:\s+if\s+exists)?|alter\s+table)"
    r"\s+(?:only\s+)?(?:[\"`\[]?\w+[\"`\]]?\.)?[\"`\[]?(?:"
    + "|".join(sorted(PROTECTED_TABLES))
    + r")\b",
    re.IGNORECASE,
)


def _refuse_protected(table_name: str) -> None:
    """The audit trail is append-only: only its writer adds rows (and only the
    redaction of a forgotten customer changes them), for every principal."""
    if table_name in PROTECTED_TABLES:
        raise AccessDenied(
            f"{table_name} is append-only: only the audit writer adds rows; the change was refused"
        )


def _refuse_protected_sql(sql: str) -> None:
    found = _PROTECTED_WRITE.search(sql)
    if found is not None:
        name = next(t for t in PROTECTED_TABLES if t in found.group(0).lower())
        _refuse_protected(name)


def _insert_values(stmt: Any) -> dict[str, Any]:
    """The literal values of ``insert(...).values(...)``, without compiling it."""
    values = getattr(stmt, "_values", None) or {}
    out = {}
    for key, value in values.items():
        name = getattr(key, "key", key)
        out[str(name)] = getattr(value, "value", None)
    return out


def _text(sql: str) -> TextClause:
    from sqlalchemy import text

    return text(sql)


def _pk_text(row: Mapping[Any, Any], pk: list[Any]) -> str:
    return ",".join(str(row[c.name]) for c in pk)


def _diff(before: Mapping[str, Any], after: Mapping[str, Any] | None) -> tuple[dict, dict]:
    if after is None:
        return dict(before), {}
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)
