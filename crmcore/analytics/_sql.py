"""Dialect helpers, fast fetches and the label store shared by the analytics.

Everything here is set-based: one query per data source, numpy over the
result, and labels written only where they changed.

Longer than most modules: the fast fetches are dialect-specific and shared by every
analysis.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import insert

from crmcore.analytics._columns import fetch_columns
from crmcore.schema import job_runs
from crmcore.storage._driver import connection, dialect_name, driver_connection


@contextlib.contextmanager
def run_transaction(crm: Any, name: str) -> Iterator[bool]:
    """The transaction of analytics run ``name``; yields whether the run owns
    it (opened it itself) rather than joining one the caller holds open.

    It writes only what a re-run recomputes (labels, kept figures, the run
    record), so its commit is not synced to disk (see
    ``CRM.transaction(durable=False)``), unless a plugin reacts to the run in
    ``crm_analytics_computed``: what a plugin writes there is kept as durably
    as any other operation."""
    owned = not crm.in_transaction  # no transaction open on this thread yet
    durable = bool(crm.plugins.implementers("crm_analytics_computed"))
    with crm.transaction(command=f"analytics {name}", durable=durable):
        yield owned


T = TypeVar("T")
Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


class SideReads:
    """Reads run on a second connection, in a thread, while the operation's own
    connection works on something else (the second core of a small server).

    Only for a SQLite database file inside a write transaction that the
    analytics run opened itself (``owned``, from :func:`run_transaction`): that
    transaction took SQLite's write lock when it began and has written nothing
    yet, so nothing can commit before the second connection's first read, and
    the second connection sees exactly the state the operation starts from. A
    side read must be of tables the operation has not changed by then. A run
    that joins a transaction the caller holds open may follow uncommitted
    writes of that caller (a purchase just recorded), which a second
    connection cannot see: there, as on PostgreSQL and in-memory SQLite, a
    read runs on the operation's own connection when its result is first
    asked for. Use as a context manager inside the transaction.
    """

    def __init__(self, crm: Any, *, owned: bool) -> None:
        self.crm = crm
        url = crm.engine.url
        on_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="crm-side-read")
            if owned and on_file and connection(crm.db).info.get("crm_write")
            else None
        )
        self._conn: Any = None

    def submit(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        """Start ``fn(query, *args)``; return what gives its result (waiting for it)."""
        if self._pool is None:
            done: list[T] = []

            def inline() -> T:
                if not done:
                    done.append(fn(self.crm.db.driver_query, *args))
                return done[0]

            return inline
        return self._pool.submit(self._run, fn, args).result

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:  # one read transaction: every side read sees one state
            self._conn = self.crm.engine.raw_connection()
            self._conn.driver_connection.execute("BEGIN")
        driver = self._conn.driver_connection
        return fn(lambda sql, params=(): driver.execute(sql, tuple(params)).fetchall(), *args)

    def __enter__(self) -> SideReads:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._conn is not None:
            self._conn.driver_connection.execute("ROLLBACK")
            self._conn.close()


def require_unrestricted(crm: Any, what: str) -> None:
    from crmcore.errors import AccessDenied

    principal = crm.db.principal
    if not principal.unrestricted:
        raise AccessDenied(f"{principal.key} may not run {what} over the whole customer base")


def dialect(crm: Any) -> str:
    return str(dialect_name(crm.db))


def bind_time(crm: Any, value: dt.datetime) -> Any:
    """A datetime as a driver-level parameter: on SQLite the exact text SQLAlchemy
    stores ('YYYY-MM-DD HH:MM:SS.ffffff'), so text comparisons are right."""
    return value.isoformat(" ", "microseconds") if dialect(crm) == "sqlite" else value


def fetch(crm: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Driver-level query (``?`` placeholders) on the open transaction; plain tuples."""
    return crm.db.driver_query(sql, params)


def executemany(crm: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    conn = driver_connection(crm.db)
    if dialect(crm) == "sqlite":
        conn.executemany(sql, rows)
    else:
        with conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


def columns(rows: list[tuple[Any, ...]], n: int) -> list[tuple[Any, ...]]:
    """Transpose fetched rows into ``n`` column tuples (empty tuples when no rows)."""
    if not rows:
        return [()] * n
    return list(zip(*rows, strict=True))


_UPSERT = (
    "INSERT INTO customer_labels (customer_id, name, value, source, as_of) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (customer_id, name) DO UPDATE SET value = excluded.value, "
    "source = excluded.source, as_of = excluded.as_of"
)


def store_labels(
    crm: Any, name: str, labels: Mapping[int, str], as_of: dt.datetime, *, source: str = "core"
) -> dict[str, int]:
    """``store_label_arrays`` for a ``{customer id: value}`` mapping."""
    import numpy as np

    ids = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
    values = np.array(list(labels.values()), dtype=object)
    return store_label_arrays(crm, name, ids, values, as_of, source=source)


def old_label_values(
    crm: Any,
    d: str,
    name: str,
    values: Any,
    categories: Sequence[str] | None,
    query: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]] | None = None,
) -> tuple[Any, Any]:
    """The stored ``(ids, values)`` of label ``name``, in the form of ``values``
    (only its dtype matters): category indexes (-1: not a category), integers
    (``NOT_AN_INT``: not one), or strings. Read as plain text and parsed in
    numpy when every value fits (one character per category; decimal
    integers), else converted in SQL. ``query``: see ``fetch_columns``."""
    import numpy as np

    cols = functools.partial(fetch_columns, query=query)

    sql = "SELECT customer_id, {} FROM customer_labels WHERE name = ?"
    if categories is not None:
        if all(len(c.encode()) == 1 for c in categories):
            ids, chars = cols(crm, d, sql.format("value"), "ic", (name,))
            if chars is not None:
                table = np.full(256, -1, dtype=np.int64)
                for k, c in enumerate(categories):
                    table[ord(c)] = k
                return ids, table[chars]
        whens = " ".join(f"WHEN ? THEN {k}" for k in range(len(categories)))
        case = f"CASE value {whens} ELSE -1 END"
        return tuple(cols(crm, d, sql.format(case), "ii", (*categories, name)))
    if values.dtype.kind in "iu":
        ids, ints = cols(crm, d, sql.format("value"), "in", (name,))
        if ints is not None:
            return ids, ints
        numeric = (
            "CAST(CAST(value AS INTEGER) AS TEXT) = value"
            if d == "sqlite"
            else "value ~ '^-{0,1}[0-9]{1,18}$'"  # no '?': it is the placeholder
        )
        case = f"CASE WHEN {numeric} THEN CAST(value AS BIGINT) ELSE {NOT_AN_INT} END"
        return tuple(cols(crm, d, sql.format(case), "ii", (name,)))
    return tuple(cols(crm, d, sql.format("value"), "is", (name,)))


def _compare(ids: Any, values: Any, old_ids: Any, old_vals: Any) -> tuple[Any, Any]:
    """Which of ``ids`` already hold their value (bool mask), and which old ids
    are no longer given. Customer ids are dense integers, so a table indexed by
    id answers both in linear time; sparse ids fall back to sorting."""
    import numpy as np

    if not len(old_ids):
        return np.zeros(len(ids), dtype=bool), old_ids
    top = int(max(ids.max() if len(ids) else 0, old_ids.max()))
    if top <= 4 * (len(ids) + len(old_ids)) + 1024:
        has_old = np.zeros(top + 1, dtype=bool)
        has_old[old_ids] = True
        old_at = np.zeros(top + 1, dtype=old_vals.dtype)
        old_at[old_ids] = old_vals
        same = has_old[ids] & (old_at[ids] == values).astype(bool)
        given = np.zeros(top + 1, dtype=bool)
        given[ids] = True
        return same, old_ids[~given[old_ids]]
    order = np.argsort(old_ids, kind="stable")
    old_ids, old_vals = old_ids[order], old_vals[order]
    pos = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
    found = old_ids[pos] == ids
    same = found & (old_vals[pos] == values).astype(bool)
    kept = np.zeros(len(old_ids), dtype=bool)
    kept[pos[found]] = True
    return same, old_ids[~kept]


NOT_AN_INT = -(2**62)  # an old label value that is not what this analysis writes


def store_label_arrays(
    crm: Any,
    name: str,
    ids: Any,
    values: Any,
    as_of: dt.datetime,
    *,
    categories: Sequence[str] | None = None,
    source: str = "core",
    old: tuple[Any, Any] | None = None,
) -> dict[str, int]:
    """Make label ``name`` equal ``ids`` -> ``values`` (numpy arrays): rows are
    written only where the value changed and removed where no longer given, so
    a re-run over an unchanged base writes almost nothing. ``as_of`` on a label
    row is when it took its current value. One summary audit row.

    ``values`` are strings (object array), integers stored as their decimal
    text, or with ``categories`` indexes into it. For integers and categories
    the old values are compared as numbers (see ``_old_label_values``), which
    keeps a million-customer comparison to a few milliseconds of numpy.
    ``old``: the stored labels as ``old_label_values`` returns them, when the
    caller read them already (see ``SideReads``)."""
    import numpy as np

    d = dialect(crm)
    values = np.asarray(values)
    if old is None:
        old = old_label_values(crm, d, name, values, categories)
    old_ids, old_vals = old
    same, gone_ids = _compare(ids, values, old_ids, old_vals)
    new_values = values[~same].tolist()
    if categories is not None:
        new_values = [categories[k] for k in new_values]
    elif values.dtype.kind in "iu":
        new_values = [str(v) for v in new_values]
    when = bind_time(crm, as_of)
    changed = [
        (cid, name, v, source, when) for cid, v in zip(ids[~same].tolist(), new_values, strict=True)
    ]
    gone = [(cid, name) for cid in gone_ids.tolist()]
    if gone:
        executemany(crm, "DELETE FROM customer_labels WHERE customer_id = ? AND name = ?", gone)
    if changed and d != "sqlite" and len(changed) > 5000:
        from crmcore.importer._common import copy_rows

        fetch(
            crm,
            "CREATE TEMP TABLE IF NOT EXISTS crm_label_stage (customer_id BIGINT, name TEXT, "
            "value TEXT, source TEXT, as_of TIMESTAMP) ON COMMIT DROP",
        )
        fetch(crm, "TRUNCATE crm_label_stage")
        copy_rows(
            crm, "crm_label_stage", ("customer_id", "name", "value", "source", "as_of"), changed
        )
        fetch(
            crm,
            "INSERT INTO customer_labels (customer_id, name, value, source, as_of) "
            "SELECT customer_id, name, value, source, as_of FROM crm_label_stage "
            "ON CONFLICT (customer_id, name) DO UPDATE SET value = excluded.value, "
            "source = excluded.source, as_of = excluded.as_of",
        )
    else:
        executemany(crm, _UPSERT, changed)
    counts = {"labels": len(ids), "changed": len(changed), "removed": len(gone)}
    if changed or gone:
        crm.db.audit(
            "customer_labels", None, "analytics", None, {"name": name, **counts}, customer_id=None
        )
    return counts


def record_run(crm: Any, job: str, as_of: dt.datetime, summary: Mapping[str, Any]) -> None:
    """One ``job_runs`` row per analytics run (what ran, as of when, the summary)."""
    from crmcore.storage.audit import jsonable

    connection(crm.db).execute(
        insert(job_runs).values(
            job=f"analytics.{job}", as_of=as_of, finished_at=crm.now(), summary=jsonable(summary)
        )
    )


# customers the analytics leave out: merged into another, or forgotten (each an index range)
GONE_IDS = (
    "SELECT id FROM customers WHERE merged_into_id IS NOT NULL "
    "UNION ALL SELECT id FROM customers WHERE forgotten_at IS NOT NULL"
)
FORGOTTEN_IDS = "SELECT id FROM customers WHERE forgotten_at IS NOT NULL"


def live_customer_ids(crm: Any) -> Any:
    """Ids of all customers neither merged away nor forgotten, ascending (numpy array).

    Ids are handed out in sequence and customers are merged or forgotten, not
    deleted, so the ids usually run from the lowest to the highest without a
    gap: then the count, the two ends (primary key lookups) and the gone ids
    (two index ranges) give the live ones without reading a million ids.
    Otherwise they are read."""
    import numpy as np

    ((n, lo, hi),) = fetch(
        crm,
        "SELECT (SELECT COUNT(*) FROM customers), (SELECT MIN(id) FROM customers), "
        "(SELECT MAX(id) FROM customers)",
    )
    if not n:
        return np.zeros(0, dtype=np.int64)
    if n == hi - lo + 1:  # no gaps
        (gone,) = fetch_columns(crm, dialect(crm), GONE_IDS, "i")
        live = np.ones(n, dtype=bool)
        live[gone - lo] = False
        return np.arange(lo, hi + 1, dtype=np.int64)[live]
    (ids,) = fetch_columns(
        crm,
        dialect(crm),
        "SELECT id FROM customers WHERE merged_into_id IS NULL AND forgotten_at IS NULL "
        "ORDER BY id",
        "i",
    )
    return ids


FEATURES = ("first", "last", "count", "spend")


def pg_micros(expr: str) -> str:
    """PostgreSQL: a timestamp as integer microseconds since 1970."""
    return f"CAST(ROUND(EXTRACT(EPOCH FROM {expr}) * 1000000) AS BIGINT)"


def features(
    crm: Any, end: dt.datetime, wanted: Sequence[str] = FEATURES, *, min_count: int = 1
) -> tuple[Any, ...]:
    """Per customer with a purchase up to ``end``: ids, then the ``wanted`` of
    first and last purchase (integer microseconds since 1970), count and
    spend, as numpy arrays; only customers with at least ``min_count`` purchases.

    Read from ``customer_stats`` (kept set-based on every write), except for
    customers with purchases after ``end``, which are recomputed from their own
    transactions only (the covering index), so a run "as of now" never reads
    ``transactions`` at all. Fetched column-wise (``fetch_columns``).
    """
    d = dialect(crm)
    # SQLite keeps timestamps as ISO text: fetched as is and parsed by numpy
    stamp = (lambda c: c) if d == "sqlite" else pg_micros
    kinds = "i" + "".join("t" if w in ("first", "last") and d == "sqlite" else "i" for w in wanted)

    def cols(first: str, last: str, count: str, spend: str) -> str:
        expr = {"first": stamp(first), "last": stamp(last), "count": count, "spend": spend}
        return ", ".join(expr[w] for w in wanted)

    t = bind_time(crm, end)
    # customers with a refund after ``end``: their kept spend already counts it
    # (refunds are found through their own small index)
    refunded_later = (
        "SELECT customer_id FROM transactions WHERE kind = 'refund' AND occurred_at > ?"
    )
    kept = fetch_columns(
        crm,
        d,
        f"SELECT customer_id, {cols('first_at', 'last_at', 'tx_count', 'spend_cents')} "
        f"FROM customer_stats WHERE last_at <= ? AND tx_count >= ? "
        f"AND customer_id NOT IN ({refunded_later}) AND customer_id NOT IN ({FORGOTTEN_IDS})",
        kinds,
        (t, min_count, t),
    )
    # as customer_stats counts them: purchases only, except that refunds reduce the spend
    bought = "kind = 'purchase'"
    per_tx = cols(
        f"MIN(CASE WHEN {bought} THEN occurred_at END)",
        f"MAX(CASE WHEN {bought} THEN occurred_at END)",
        f"COUNT(CASE WHEN {bought} THEN 1 END)",
        "CAST(SUM(amount_cents) AS BIGINT)",
    )
    late = fetch_columns(
        crm,
        d,
        f"""SELECT customer_id, {per_tx} FROM transactions
            WHERE (customer_id IN (SELECT customer_id FROM customer_stats WHERE last_at > ?)
                   OR customer_id IN ({refunded_later}))
              AND customer_id NOT IN ({FORGOTTEN_IDS})
              AND occurred_at <= ? GROUP BY customer_id
            HAVING COUNT(CASE WHEN {bought} THEN 1 END) >= ?""",
        kinds,
        (t, t, t, min_count),
    )
    if not len(late[0]):
        return tuple(kept)
    import numpy as np

    return tuple(np.concatenate(pair) for pair in zip(kept, late, strict=True))


def to_micros(value: dt.datetime) -> int:
    """A naive datetime as integer microseconds since 1970 (the unit of ``features``)."""
    delta = value - dt.datetime(1970, 1, 1)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


DAY_US = 86_400_000_000
