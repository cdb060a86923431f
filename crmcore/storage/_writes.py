"""The query layer's write path: the permission and kind checks of a change,
the before and after images of an UPDATE or DELETE, the visibility checks of a
restricted principal's change (in a savepoint, so a refused change is undone
even if the caller catches the refusal), and the audit rows of every change.

:class:`WriteChecks` is a base of :class:`crmcore.storage.query.DB`; its
public methods are the DB's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Table, Update, and_, func, or_, select, tuple_
from sqlalchemy.engine import Connection, Dialect

from crmcore.access import Principal, visible_customer_check
from crmcore.errors import AccessDenied, NotFound
from crmcore.schema import audit_log, customers
from crmcore.storage._driver import Prepared
from crmcore.storage.audit import PROTECTED_TABLES, ChainWriter, Entry, redact_customer
from crmcore.storage.scope import Catalog

AUDIT_ROW_LIMIT = 1000  # above this many rows a set-based change is audited as one summary row
UNAUDITED = {"audit_log", "customer_stats", "job_runs", "inbound_messages"}


class WriteChecks:
    """Checks, before and after images, and audit rows of the DB's changes."""

    _conn: Connection
    _chain: ChainWriter
    principal: Principal
    now: Any
    command: str
    catalog: Catalog

    def can_see(self, customer_id: int) -> bool:
        """Whether the principal may see this customer: one point query that
        follows the customer's own owner, relationship and ticket rows
        (:func:`crmcore.access.visible_customer_check`), never a list of
        everything the principal may see."""
        check = visible_customer_check(self.principal)
        if check is None:
            return True
        stmt, params = check
        return self._conn.execute(stmt, {**params, "cid": customer_id}).first() is not None

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
        refuse_protected(table.name)
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
            before = [dict(r._mapping) for r in self._conn.execute(probe, params)]
            if restricted:
                self._refuse_locked(table, before)
        after_by_key: dict[str, dict[str, Any]] | None = None
        if restricted and before and isinstance(stmt, Update):
            # a refused change is undone even if the caller catches the refusal
            with self._conn.begin_nested():
                result = self._conn.execute(scoped, params)
                after_by_key = self._check_changed_rows(table, before)
        else:
            result = self._conn.execute(scoped, params)
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
            for r in self._conn.execute(select(table).where(cond)):
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
            seen += self._conn.execute(
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
            rows = [] if from_select else [_insert_values(stmt, self._conn.dialect)]
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
            with self._conn.begin_nested():
                result = self._conn.execute(stmt, params)
                self._check_inserted_rows(table, result)
        else:
            result = self._conn.execute(stmt, params)
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
        n = redact_customer(self._conn, customer_id, also=also)
        self.audit(
            "customers",
            str(customer_id),
            "forget",
            None,
            {"audit_rows_redacted": n},
            customer_id=customer_id,
        )
        return n


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
AUDIT_INSERT = Prepared(audit_log.insert(), keys=_AUDIT_KEYS)


_PROTECTED_WRITE = re.compile(
    r"\b(?:insert(?:\s+or\s+\w+)?\s+into|replace\s+into|update(?:\s+or\s+\w+)?|delete\s+from"
    r"|truncate(?:\s+table)?|drop\s+table(?:\s+if\s+exists)?|alter\s+table)"
    r"\s+(?:only\s+)?(?:[\"`\[]?\w+[\"`\]]?\.)?[\"`\[]?(?:"
    + "|".join(sorted(PROTECTED_TABLES))
    + r")\b",
    re.IGNORECASE,
)


def refuse_protected(table_name: str) -> None:
    """The audit trail is append-only: only its writer adds rows (and only the
    redaction of a forgotten customer changes them), for every principal."""
    if table_name in PROTECTED_TABLES:
        raise AccessDenied(
            f"{table_name} is append-only: only the audit writer adds rows; the change was refused"
        )


def refuse_protected_sql(sql: str) -> None:
    found = _PROTECTED_WRITE.search(sql)
    if found is not None:
        name = next(t for t in PROTECTED_TABLES if t in found.group(0).lower())
        refuse_protected(name)


def _insert_values(stmt: Any, dialect: Dialect) -> dict[str, Any]:
    """The values ``insert(...).values(...)`` gives its table's columns, from the
    compiled statement (SQLAlchemy's public view of them): its parameters, less
    the columns left to their Python-side defaults (``insert_prefetch``). A
    column given SQL rather than a value has none here."""
    table = stmt.table
    compiled = stmt.compile(dialect=dialect)
    defaulted = {c.key for c in compiled.insert_prefetch}
    return {k: v for k, v in compiled.params.items() if k in table.c and k not in defaulted}


def _pk_text(row: Mapping[Any, Any], pk: list[Any]) -> str:
    return ",".join(str(row[c.name]) for c in pk)


def _diff(before: Mapping[str, Any], after: Mapping[str, Any] | None) -> tuple[dict, dict]:
    if after is None:
        return dict(before), {}
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
