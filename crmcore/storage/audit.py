"""The audit trail: an append-only, hash-chained log of every change.

Each ``audit_log`` row carries three hashes (SHA-256, hex):

- ``values_digest``: the digest of the row's recorded values (``before`` and
  ``after``) and a random ``values_salt``, computed when the row is written;
- ``prev_hash``: the ``row_hash`` of the row before it in id order (64 zeros
  for the first row);
- ``row_hash``: the digest of ``prev_hash`` and a canonical serialisation of the
  row's fields (id, time, staff member, command, entity, key, customer, action)
  and its ``values_digest``.

Changing, inserting, deleting or renumbering a row breaks the chain at that row,
which :func:`verify` reports. Forgetting a customer replaces the recorded values
of that customer's rows with ``{"redacted": true}`` and erases their salt but
keeps ``values_digest``, so the chain still verifies, and the digest cannot be
used to guess the erased values back (without the salt, trying every phone
number against it is hopeless). A forget also redacts the rows of the
customer's merged twins and any row whose values copied the customer's data, so
a redacted row must come before some ``forget`` row in the chain: a redaction
cannot be faked to hide a change made after the last forget.

Only :func:`append` (the writer) and :func:`redact_customer` (the redaction of
a forgotten customer) write the table. The query layer refuses every other
insert, update and delete of it, and database triggers (migration
``crmcore_0005``) refuse updates and deletes outside the redaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import Column, String, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from crmcore.schema import audit_log

GENESIS = "0" * 64
"""The ``prev_hash`` of the first row of the chain."""

REDACTED: dict[str, bool] = {"redacted": True}
"""What a forgotten customer's recorded values are replaced with."""

VERIFY_BATCH = 5000  # rows read per query while verifying the chain

# The transaction-local PostgreSQL setting that the append-only trigger lets an
# update through under (set only by redact_customer, reset right after).
PG_REDACTION_SETTING = "crm.audit_redaction"
# The SQLite table whose (only, uncommitted) row lets the trigger pass an update.
SQLITE_REDACTION_MARKER = "audit_redaction"

PROTECTED_TABLES = frozenset({audit_log.name, SQLITE_REDACTION_MARKER})
"""Tables no statement through the query layer may write."""


def _declared_length(column: Column[Any], default: int) -> int:
    """The length a string column is declared with (``default`` if it has none)."""
    kind = column.type
    return (kind.length or default) if isinstance(kind, String) else default


COMMAND_LENGTH = _declared_length(audit_log.c.command, 200)
ENTITY_ID_LENGTH = _declared_length(audit_log.c.entity_id, 64)


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data, the way audit rows record it: dates and
    times as ISO text, mappings with text keys, tuples as lists, anything else
    not JSON by nature as its text."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def dumps(value: Any) -> str:
    """The JSON text of :func:`jsonable` of ``value`` (sorted keys, not ASCII-escaped)."""
    return json.dumps(jsonable(value), ensure_ascii=False, sort_keys=True)


def canonical(value: Any) -> str:
    """The one JSON text of ``value`` that every hash is computed over."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def values_digest(before: Any, after: Any, salt: str | None) -> str:
    """The digest of a row's recorded values under its salt."""
    text = (salt or "") + "\n" + canonical({"before": before, "after": after})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_salt() -> str:
    """A fresh random salt for one row's values digest (128 bits, hex)."""
    return secrets.token_hex(16)


def _at_text(at: Any) -> str:
    if isinstance(at, dt.datetime):
        return at.replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(at)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The hash of one row, chained to the row before it."""
    fields = [
        int(row["id"]),
        _at_text(row["at"]),
        row["staff_id"],
        row["command"],
        row["entity"],
        row["entity_id"],
        row["customer_id"],
        row["action"],
        row["values_digest"],
    ]
    text = prev_hash + "\n" + canonical(fields)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@attrs.frozen
class Entry:
    """One audit row to write (the writer adds the id, time and hashes)."""

    entity: str
    entity_id: str | None
    action: str
    before: Any
    after: Any
    customer_id: int | None


def _clip(value: str | None, length: int) -> str | None:
    return value if value is None or len(value) <= length else value[:length]


def _chain_lock(conn: Connection) -> None:
    """Serialise writers of the chain until the transaction ends.

    PostgreSQL: a transaction-level advisory lock keyed by the schema, so the
    next writer reads the head only after this transaction committed (READ
    COMMITTED reads a new snapshot per statement). SQLite has one writer at a
    time already (``BEGIN IMMEDIATE``, or a failed lock upgrade for a
    transaction that began as a reader)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtext(coalesce(current_schema(), '') || '.audit_log'))"
        )


_HEAD = select(audit_log.c.id, audit_log.c.row_hash).order_by(audit_log.c.id.desc()).limit(1)


class ChainWriter:
    """Appends rows to the chain within one transaction.

    The head (last id and hash) is read once, after taking the chain lock, and
    then carried along: nobody else can append until this transaction ends."""

    def __init__(
        self, conn: Connection, insert_one: Callable[[Mapping[str, Any]], None] | None = None
    ) -> None:
        self.conn = conn
        self._insert_one = insert_one  # a faster path for the common single row
        self._head: tuple[int, str] | None = None

    def lock(self) -> None:
        """Take the chain lock now (before the transaction's first row locks, so
        writers always lock in the same order)."""
        if self._head is None:
            _chain_lock(self.conn)
            got = self.conn.execute(_HEAD).first()
            self._head = (0, GENESIS) if got is None else (int(got[0]), got[1] or GENESIS)

    def append(
        self,
        entries: Sequence[Entry],
        *,
        at: dt.datetime,
        staff_id: int | None,
        command: str,
    ) -> None:
        """Write ``entries`` as the next rows of the chain (one executemany)."""
        if not entries:
            return
        self.lock()
        assert self._head is not None
        last_id, prev = self._head
        command_ = _clip(command, COMMAND_LENGTH)
        rows: list[dict[str, Any]] = []
        for entry in entries:
            before, after = jsonable(entry.before), jsonable(entry.after)
            salt = new_salt()
            row: dict[str, Any] = {
                "id": last_id + 1,
                "at": at,
                "staff_id": staff_id,
                "command": command_,
                "entity": entry.entity,
                "entity_id": _clip(entry.entity_id, ENTITY_ID_LENGTH),
                "customer_id": None if entry.customer_id is None else int(entry.customer_id),
                "action": entry.action,
                "before": before,
                "after": after,
                "values_salt": salt,
                "values_digest": values_digest(before, after, salt),
                "prev_hash": prev,
            }
            row["row_hash"] = row_hash(prev, row)
            rows.append(row)
            last_id, prev = row["id"], row["row_hash"]
        if len(rows) == 1 and self._insert_one is not None:
            self._insert_one(rows[0])
        else:
            self.conn.execute(audit_log.insert(), rows)
        self._head = (last_id, prev)


def redact_customer(conn: Connection, customer_id: int, *, also: Any = None) -> int:
    """Replace the recorded values of one customer's audit rows (and of the rows
    matching the condition ``also``: rows that copied the customer's data) with
    :data:`REDACTED` and erase their salt; everything else, ``values_digest``
    and the hashes stay.
    The only update of the table: the database triggers let it through only
    while the redaction marker of this transaction is set, and only as this
    exact change. Returns the number of rows redacted."""
    stmt = (
        update(audit_log)
        .where(
            audit_log.c.customer_id == bindparam("cid")
            if also is None
            else or_(audit_log.c.customer_id == bindparam("cid"), also)
        )
        .values(before=REDACTED, after=REDACTED, values_salt=None)
    )
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL {PG_REDACTION_SETTING} = 'on'")
        try:
            return conn.execute(stmt, {"cid": customer_id}).rowcount
        finally:
            conn.exec_driver_sql(f"SET LOCAL {PG_REDACTION_SETTING} = 'off'")
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        assert driver is not None  # in a transaction: the driver connection is there
        driver.execute(f"INSERT INTO {SQLITE_REDACTION_MARKER} (id) VALUES (1)")
        try:
            return conn.execute(stmt, {"cid": customer_id}).rowcount
        finally:
            driver.execute(f"DELETE FROM {SQLITE_REDACTION_MARKER}")
    return conn.execute(stmt, {"cid": customer_id}).rowcount


@attrs.frozen
class Verdict:
    """The outcome of :func:`verify`."""

    ok: bool
    rows: int  # rows checked (all of them when ok)
    head: str  # the row_hash of the last good row (GENESIS for an empty trail)
    broken_at: int | None = None  # id of the first row that does not verify
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


_VERIFY_COLUMNS = (
    audit_log.c.id,
    audit_log.c.at,
    audit_log.c.staff_id,
    audit_log.c.command,
    audit_log.c.entity,
    audit_log.c.entity_id,
    audit_log.c.customer_id,
    audit_log.c.action,
    audit_log.c.before,
    audit_log.c.after,
    audit_log.c.values_salt,
    audit_log.c.values_digest,
    audit_log.c.prev_hash,
    audit_log.c.row_hash,
)
_BATCH = (
    select(*_VERIFY_COLUMNS)
    .where(audit_log.c.id > bindparam("after_id"))
    .order_by(audit_log.c.id)
    .limit(bindparam("n"))
)
_LAST_FORGET = select(func.max(audit_log.c.id)).where(
    audit_log.c.entity == "customers", audit_log.c.action == "forget"
)


def _row_problem(row: Mapping[Any, Any], prev: str, last_forget: int) -> str | None:
    """Why ``row`` does not verify after a row hashed ``prev`` (None: it does)."""
    if row["prev_hash"] != prev:
        return (
            "its prev_hash does not match the row before it "
            "(a row was deleted, inserted or renumbered)"
        )
    if row["values_digest"] is None or row["row_hash"] is None:
        return "it has no hash (it was not written by the audit writer)"
    if values_digest(row["before"], row["after"], row["values_salt"]) != row["values_digest"]:
        redacted = row["before"] == REDACTED and row["after"] == REDACTED
        if not redacted:
            return "its recorded values do not match their digest (a value was edited)"
        if last_forget <= row["id"]:
            return "its values are redacted but no customer was forgotten after it"
    if row_hash(prev, row) != row["row_hash"]:
        return "its fields do not match its row_hash (the row was edited or forged)"
    return None


def verify(conn: Connection, *, batch: int = VERIFY_BATCH) -> Verdict:
    """Walk the whole chain in id order, ``batch`` rows per query; the first
    row that does not verify ends the walk."""
    last_forget = int(conn.execute(_LAST_FORGET).scalar() or 0)
    prev, after_id, count = GENESIS, -1, 0
    while True:
        rows = conn.execute(_BATCH, {"after_id": after_id, "n": batch}).mappings().all()
        for row in rows:
            problem = _row_problem(row, prev, last_forget)
            if problem is not None:
                return Verdict(False, count, prev, broken_at=int(row["id"]), reason=problem)
            prev, count = row["row_hash"], count + 1
        if len(rows) < batch:
            return Verdict(True, count, prev)
        after_id = int(rows[-1]["id"])


def backfill(conn: Connection, *, batch: int = VERIFY_BATCH) -> int:
    """Compute the chain over rows written before it existed (the migration's
    backfill: rows without a ``row_hash``, in id order, after the last chained
    row). Returns the number of rows chained."""
    last = conn.execute(
        select(audit_log.c.id, audit_log.c.row_hash)
        .where(audit_log.c.row_hash.is_not(None))
        .order_by(audit_log.c.id.desc())
        .limit(1)
    ).first()
    after_id, prev = (-1, GENESIS) if last is None else (int(last[0]), last[1])
    done = 0
    fill = (
        update(audit_log)
        .where(audit_log.c.id == bindparam("row_id"))
        .values(
            values_salt=bindparam("salt"),
            values_digest=bindparam("digest"),
            prev_hash=bindparam("prev"),
            row_hash=bindparam("hash"),
        )
    )
    while True:
        rows = conn.execute(_BATCH, {"after_id": after_id, "n": batch}).mappings().all()
        changes = []
        for row in rows:
            salt = new_salt()
            digest = values_digest(row["before"], row["after"], salt)
            got = row_hash(prev, {**row, "values_digest": digest})
            changes.append(
                {"row_id": row["id"], "salt": salt, "digest": digest, "prev": prev, "hash": got}
            )
            prev = got
        if changes:
            conn.execute(fill, changes)
            done += len(changes)
        if len(rows) < batch:
            return done
        after_id = int(rows[-1]["id"])
