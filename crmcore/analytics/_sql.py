"""Dialect helpers, fast fetches and the label store shared by the analytics.

Everything here is set-based: one query per data source, numpy over the
result, and labels written only where they changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert

from crmcore.analytics._columns import fetch_columns
from crmcore.schema import job_runs

JD_UNIX_EPOCH = 2440587.5  # Julian date of 1970-01-01 00:00


def days_between(dialect: str, later: str, earlier: str) -> str:
    """SQL for the (fractional) number of days from ``earlier`` to ``later``."""
    if dialect == "sqlite":
        return f"(julianday({later}) - julianday({earlier}))"
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


def julian(dialect: str, expr: str) -> str:
    """SQL for the Julian date (float days) of a timestamp expression."""
    if dialect == "sqlite":
        return f"julianday({expr})"
    return f"(CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION) / 86400.0 + {JD_UNIX_EPOCH})"


def to_julian(value: dt.datetime) -> float:
    return (value - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0 + JD_UNIX_EPOCH


def from_julian(jd: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=round((jd - JD_UNIX_EPOCH) * 86400))


def require_unrestricted(crm: object, what: str) -> None:
    from crmcore.errors import AccessDenied

    principal = crm.db.principal  # type: ignore[attr-defined]
    if not principal.unrestricted:
        raise AccessDenied(f"{principal.key} may not run {what} over the whole customer base")


def dialect(crm: Any) -> str:
    return str(crm.db.conn.dialect.name)


def bind_time(crm: Any, value: dt.datetime) -> Any:
    """A datetime as a driver-level parameter: on SQLite the exact text SQLAlchemy
    stores ('YYYY-MM-DD HH:MM:SS.ffffff'), so text comparisons are right."""
    return value.isoformat(" ", "microseconds") if dialect(crm) == "sqlite" else value


def fetch(crm: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Driver-level query (``?`` placeholders) on the open transaction; plain tuples."""
    conn = crm.db.conn.connection.driver_connection
    if dialect(crm) == "sqlite":
        return conn.execute(sql, tuple(params)).fetchall()
    with conn.cursor() as cur:
        cur.execute(sql.replace("?", "%s"), tuple(params))
        return cur.fetchall() if cur.description else []


def executemany(crm: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    conn = crm.db.conn.connection.driver_connection
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


def store_label_arrays(
    crm: Any, name: str, ids: Any, values: Any, as_of: dt.datetime, *, source: str = "core"
) -> dict[str, int]:
    """Make label ``name`` equal ``ids`` -> ``values`` (numpy arrays; values are
    str): rows are written only where the value changed and removed where no
    longer given, so a re-run over an unchanged base writes almost nothing.
    ``as_of`` on a label row is when it took its current value. The old values
    are read column-wise and compared in numpy. One summary audit row."""
    import numpy as np

    d = dialect(crm)
    values = np.asarray(values, dtype=object)
    old_ids, old_vals = fetch_columns(
        crm, d, "SELECT customer_id, value FROM customer_labels WHERE name = ?", "is", (name,)
    )
    order = np.argsort(old_ids, kind="stable")
    old_ids, old_vals = old_ids[order], old_vals[order]
    if len(old_ids):
        pos = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
        same = (old_ids[pos] == ids) & (old_vals[pos] == values).astype(bool)
        kept = np.zeros(len(old_ids), dtype=bool)
        kept[pos[old_ids[pos] == ids]] = True
        gone_ids = old_ids[~kept]
    else:
        same = np.zeros(len(ids), dtype=bool)
        gone_ids = old_ids
    when = bind_time(crm, as_of)
    changed = [
        (cid, name, v, source, when)
        for cid, v in zip(ids[~same].tolist(), values[~same].tolist(), strict=True)
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
    from crmcore.db import _jsonable

    crm.db.conn.execute(
        insert(job_runs).values(
            job=f"analytics.{job}", as_of=as_of, finished_at=crm.now(), summary=_jsonable(summary)
        )
    )


def live_customer_ids(crm: Any) -> Any:
    """Ids of all customers not merged away, ascending (numpy array)."""
    (ids,) = fetch_columns(
        crm, dialect(crm), "SELECT id FROM customers WHERE merged_into_id IS NULL ORDER BY id", "i"
    )
    return ids


def features(crm: Any, end: dt.datetime) -> tuple[Any, ...]:
    """Per customer with a purchase up to ``end``: ids, first and last purchase
    (integer microseconds since 1970), count and spend, as numpy arrays.

    Read from ``customer_stats`` (kept set-based on every write), except for
    customers with purchases after ``end``, which are recomputed from their own
    transactions only (the covering index), so a run "as of now" never reads
    ``transactions`` at all. Fetched column-wise (``fetch_columns``).
    """
    d = dialect(crm)
    sql = """
        SELECT customer_id, first_at, last_at, tx_count, spend_cents
        FROM customer_stats WHERE last_at <= ?
        UNION ALL
        SELECT customer_id, MIN(occurred_at), MAX(occurred_at), COUNT(*),
               CAST(SUM(amount_cents) AS BIGINT)
        FROM transactions
        WHERE customer_id IN (SELECT customer_id FROM customer_stats WHERE last_at > ?)
          AND occurred_at <= ?
        GROUP BY customer_id"""
    t = bind_time(crm, end)
    return tuple(fetch_columns(crm, d, sql, "ittii", (t, t, t)))


def to_micros(value: dt.datetime) -> int:
    """A naive datetime as integer microseconds since 1970 (as ``micros`` in SQL)."""
    delta = value - dt.datetime(1970, 1, 1)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


DAY_US = 86_400_000_000
