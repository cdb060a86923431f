"""The driver paths: statements compiled once and run straight on the DBAPI
cursor, and driver-level SQL for set-based bulk work.

Private to the core. Nothing here is scoped, checked or audited by itself: the
query layer (:class:`crmcore.storage.query.DB`) calls it for an unrestricted
principal, and the core's own modules (the services, the importer, the
analytics) use it for reads whose customer was checked and for bookkeeping
(``customer_stats``, the audit trail). Plugins reach none of it: they get the
query layer's public methods only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect

if TYPE_CHECKING:
    from crmcore.storage.query import DB


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


def connection(db: DB) -> Connection:
    """The SQLAlchemy connection of ``db``'s open transaction, unscoped: for the
    core's own statements after its own checks (a service reading a row it
    already checked, bookkeeping, DDL of an analytics index)."""
    return db._conn


def dialect_name(db: DB) -> str:
    """The backend's name: ``sqlite`` or ``postgresql``."""
    return str(db._conn.dialect.name)


def driver_connection(db: DB) -> Any:
    """The DBAPI connection (sqlite3's or psycopg's) under ``db``'s transaction."""
    conn = db._conn.connection.driver_connection
    assert conn is not None  # in a transaction: the driver connection is there
    return conn


def run(db: DB, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
    """Run a :class:`Prepared` statement on the driver cursor, *unchecked*: no
    scoping, no write check, no audit (aggregates such as ``customer_stats``,
    the audit trail, reads whose customer was checked). Returns the cursor."""
    conn = db._conn
    sql = prepared.on(conn.dialect)
    args = sql.params(params)
    raw = db._dbapi
    if raw is None:
        raw = db._dbapi = conn.connection.dbapi_connection
    try:
        cur = raw.cursor()
        cur.execute(sql.sql, args)
    except conn.dialect.loaded_dbapi.Error as e:
        raise sa_exc.DBAPIError.instance(
            sql.sql, args, e, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from e
    return cur


def run_rows(db: DB, prepared: Prepared, params: Mapping[str, Any] | None = None) -> list[Any]:
    """:func:`run` and fetch all rows (named tuples, processed like SQLAlchemy's)."""
    sql = prepared.on(db._conn.dialect)
    return sql.rows(run(db, prepared, params).fetchall())


def run_first(db: DB, prepared: Prepared, params: Mapping[str, Any] | None = None) -> Any:
    """:func:`run` and fetch the first row (None when there is none)."""
    sql = prepared.on(db._conn.dialect)
    got = run(db, prepared, params).fetchone()
    return None if got is None else sql.rows((got,))[0]


def driver_query(db: DB, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Driver-level SQL (``?`` placeholders, rewritten for psycopg) on ``db``'s
    transaction, unchecked; all rows as plain tuples."""
    conn = driver_connection(db)
    if dialect_name(db) == "sqlite":
        return conn.execute(sql, tuple(params)).fetchall()
    with conn.cursor() as cur:
        cur.execute(sql.replace("?", "%s"), tuple(params))
        return cur.fetchall() if cur.description else []
