"""The customer card and the till's lookup by phone."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select

from crmcore.access import visible_customer_check
from crmcore.db import Prepared, database_error
from crmcore.errors import AccessDenied, Conflict, NotFound
from crmcore.schema import customer_labels, customer_stats, customers, transactions
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row
from crmcore.storage._driver import connection, run


# The card's statements, built and compiled once. Every path of the card and the
# till's lookup runs these same statements on the driver cursor; the customer is
# checked visible to the principal before anything of theirs is returned.
def _customer_with_stats(where: Any) -> Prepared:
    return Prepared(
        select(
            customers,
            customer_stats.c.customer_id.label("stats_customer_id"),
            customer_stats.c.first_at.label("stats_first_at"),
            customer_stats.c.last_at.label("stats_last_at"),
            customer_stats.c.tx_count.label("stats_tx_count"),
            customer_stats.c.spend_cents.label("stats_spend_cents"),
        )
        .select_from(
            customers.outerjoin(customer_stats, customer_stats.c.customer_id == customers.c.id)
        )
        .where(where)
        .limit(1)
    )


_CARD_BY_PHONE_STATS = _customer_with_stats(customers.c.phone == bindparam("phone"))
_CARD_BY_ID_STATS = _customer_with_stats(customers.c.id == bindparam("cid"))
_CARD_LABELS_P = Prepared(
    select(customer_labels.c.name, customer_labels.c.value)
    .where(customer_labels.c.customer_id == bindparam("cid"))
    .order_by(customer_labels.c.name)
)
_CARD_RECENT_P = Prepared(
    select(
        transactions.c.id,
        transactions.c.occurred_at,
        transactions.c.amount_cents,
        transactions.c.channel,
    )
    .where(transactions.c.customer_id == bindparam("cid"))
    .order_by(transactions.c.occurred_at.desc())
    .limit(bindparam("n"))
)
_STATS_KEYS = ("customer_id", "first_at", "last_at", "tx_count", "spend_cents")
_CARD_RECENT_KEYS = ("id", "occurred_at", "amount_cents", "channel")
_CHECKS: dict[Any, Prepared] = {}


def _prepared_check(stmt: Any) -> Prepared:
    """The :class:`Prepared` form of a visibility check statement (a few
    shapes, built once each by :func:`crmcore.access.visible_customer_check`)."""
    got = _CHECKS.get(stmt)
    if got is None:
        got = _CHECKS[stmt] = Prepared(stmt)
    return got


class _DriverRun:
    """``run(prepared, params) -> cursor`` straight on a driver connection
    (sqlite3's and psycopg's ``execute`` both return the cursor)."""

    __slots__ = ("driver", "dialect")

    def __init__(self, driver: Any, dialect: Any) -> None:
        self.driver = driver
        self.dialect = dialect

    def __call__(self, prepared: Prepared, params: Mapping[str, Any] | None) -> Any:
        sql = prepared.on(self.dialect)
        return self.driver.execute(sql.sql, sql.params(params))


class _CardReads:
    """The card's reads through ``run(prepared, params) -> cursor`` (the
    operation's :meth:`DB.run`, or a pooled driver connection's cursor)."""

    __slots__ = ("run", "dialect")

    def __init__(self, run: Any, dialect: Any) -> None:
        self.run = run
        self.dialect = dialect

    def first(self, prepared: Prepared, params: Mapping[str, Any]) -> Any:
        got = self.run(prepared, params).fetchone()
        return None if got is None else prepared.on(self.dialect).rows((got,))[0]

    def labels(self, cid: int) -> dict[str, Any]:
        return {r[0]: r[1] for r in self.run(_CARD_LABELS_P, {"cid": cid}).fetchall()}

    def card(self, entity: Any, row: Any, labels: dict[str, Any], limit: int) -> dict[str, Any]:
        """The card of ``entity``; ``row`` is its row of ``_customer_with_stats``."""
        recent = []
        convert = _recent_converters(self.dialect)  # only the columns that need it
        for r in self.run(_CARD_RECENT_P, {"cid": row.id, "n": limit}).fetchall():
            one = dict(zip(_CARD_RECENT_KEYS, r, strict=True))
            for key, proc in convert:
                one[key] = proc(one[key])
            recent.append(one)
        stats = None
        if row.stats_customer_id is not None:
            stats = dict(zip(_STATS_KEYS, row[-5:], strict=True))
        return {"customer": entity, "labels": labels, "stats": stats, "transactions": recent}


_CONVERTERS: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {}


def _recent_converters(dialect: Any) -> tuple[tuple[str, Any], ...]:
    """The result processors the recent purchases' columns need on ``dialect``
    (SQLite: timestamps come as text), by key."""
    got = _CONVERTERS.get((dialect.name, dialect.driver))
    if got is None:
        procs = _CARD_RECENT_P.on(dialect).results
        got = _CONVERTERS[(dialect.name, dialect.driver)] = tuple(
            (k, p) for k, p in zip(_CARD_RECENT_KEYS, procs, strict=True) if p is not None
        )
    return got




class CardOps(Service):
    """``crm.records``' card and till lookup."""

    # -- the customer card -----------------------------------------------------------
    @operation(write=False)
    def card(
        self, customer: Any = None, *, phone: str | None = None, transactions_limit: int = 50
    ) -> dict[str, Any]:
        """A customer card, by reference or by phone: the customer, their stored
        labels (segment, tier, ...) merged with each plugin's live
        classification (``crm_classify_customer``), aggregates and the last
        ``transactions_limit`` purchases. A phone on a customer the principal
        may not see answers like an unknown number. For the till's lookup by
        phone without the plugins' classification queries see
        :meth:`till_lookup`."""
        return self._card_in_operation(customer, phone, transactions_limit, live=True)

    def till_lookup(self, phone: str, *, transactions_limit: int = 50) -> dict[str, Any]:
        """The till's (or call centre's) card by phone: :meth:`card` with the
        stored labels only, no live classification, which costs the plugins'
        queries. Checked as the card is, for every principal, and the same
        result and the same refusals.

        Outside an open operation it reads in one read transaction on a pooled
        driver connection (the statements :meth:`card` runs, the principal's
        visibility as one point query): nothing in it writes, calls hooks or
        needs the audit trail, and SQLAlchemy's per-transaction work would be a
        fifth of its cost. A number it does not find on a live customer the
        principal may see (a merged record, an extra contact point, a hidden or
        unknown one) is looked up again by the card's own path, which follows
        merges and says why."""
        if not self.crm.in_transaction:
            found = self._till_on_driver(phone, transactions_limit)
            if found is not None:
                return found
        return self._till_checked(phone, transactions_limit)

    @operation(write=False)
    def _till_checked(self, phone: str, transactions_limit: int) -> dict[str, Any]:
        return self._card_in_operation(None, phone, transactions_limit, live=False)

    def _card_in_operation(
        self, customer: Any, phone: str | None, transactions_limit: int, *, live: bool
    ) -> dict[str, Any]:
        db = self.db
        reads = _CardReads(functools.partial(run, db), connection(db).dialect)
        if phone is not None:
            if not db.principal.active:
                raise AccessDenied(
                    f"{db.principal.key} has departed and may not see or change customers"
                )
            # a number on a customer the principal may not see answers as an unknown one
            unknown = NotFound(f"no customer with phone {phone!r}")
            row = reads.first(_CARD_BY_PHONE_STATS, {"phone": self.crm.customers.normalise_phone(phone)})
            if row is None or row.merged_into_id is not None:
                try:  # extra contact points, merged records
                    found = self.crm.customers.match(phone=phone)
                except Conflict:
                    raise unknown from None
                if found is None:
                    raise unknown
                try:  # visible, and where a merge led
                    cid = customer_row(self.db, found[0].id).id
                except NotFound:
                    raise unknown from None
                row = reads.first(_CARD_BY_ID_STATS, {"cid": cid})
            elif not db.can_see(row.id):
                raise unknown
        else:
            row = reads.first(_CARD_BY_ID_STATS, {"cid": customer_row(self.db, customer).id})
        entity = make.customer(row)
        labels = reads.labels(row.id)
        if live:
            for extra in self.hook.crm_classify_customer(crm=self.crm, customer=entity):
                labels.update(extra or {})
        return reads.card(entity, row, labels, transactions_limit)

    def _till_on_driver(self, phone: str, limit: int) -> dict[str, Any] | None:
        """:meth:`till_lookup` on a pooled driver connection in one read
        transaction; None when the number is not a live customer's that the
        principal may see (the checked path then answers)."""
        principal = self.crm.acting()
        if not principal.active:
            return None  # refused by the checked path
        number = self.crm.customers.normalise_phone(phone)
        check = visible_customer_check(principal)
        dialect = self.crm.engine.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        sqlite = dialect.name == "sqlite"
        pooled = self.crm.engine.raw_connection()
        try:
            driver = pooled.driver_connection
            assert driver is not None  # checked out: the driver connection is there

            reads = _CardReads(_DriverRun(driver, dialect), dialect)
            if sqlite:
                driver.execute("BEGIN")
            try:
                row = reads.first(_CARD_BY_PHONE_STATS, {"phone": number})
                if row is None or row.merged_into_id is not None:
                    return None
                if check is not None:
                    stmt, params = check
                    if reads.first(_prepared_check(stmt), {**params, "cid": row.id}) is None:
                        return None
                card = reads.card(make.customer(row), row, reads.labels(row.id), limit)
            finally:
                if sqlite:
                    driver.execute("COMMIT")
                else:
                    pooled.rollback()
        except dbapi_error as e:
            raise database_error(e) from None
        finally:
            pooled.close()
        return card
