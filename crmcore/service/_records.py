"""Interactions, transactions, stored timeline entries, the timeline and the card."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import bindparam, case, func, select
from sqlalchemy import exc as sa_exc

from crmcore.access import Principal, visible_customer_check
from crmcore.db import Prepared, database_error
from crmcore.entities import Interaction, TimelineEntry, Transaction
from crmcore.errors import AccessDenied, Conflict, NotFound, ValidationError
from crmcore.parse import MAX_CENTS, clean_text, format_money, parse_datetime
from crmcore.schema import (
    customer_labels,
    customer_stats,
    customers,
    interactions,
    live_customers,
    messages,
    stage_changes,
    ticket_events,
    tickets,
    timeline_entries,
    transactions,
)
from crmcore.service import _rows
from crmcore.service._base import CRMBase, operation


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
_CHECKS: dict[int, Prepared] = {}


def _prepared_check(stmt: Any) -> Prepared:
    """The :class:`Prepared` form of a visibility check statement (one per shape)."""
    got = _CHECKS.get(id(stmt))
    if got is None:
        got = _CHECKS[id(stmt)] = Prepared(stmt)
    return got


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
        recent_sql = _CARD_RECENT_P.on(self.dialect)
        recent = recent_sql.rows(self.run(_CARD_RECENT_P, {"cid": row.id, "n": limit}).fetchall())
        stats = None
        if row.stats_customer_id is not None:
            stats = dict(zip(_STATS_KEYS, row[-5:], strict=True))
        return {
            "customer": entity,
            "labels": labels,
            "stats": stats,
            "transactions": [dict(zip(_CARD_RECENT_KEYS, r, strict=True)) for r in recent],
        }


_TX_KEYS = ("customer_id", "amount_cents", "occurred_at", "channel", "external_id", "kind")
_TX_INSERT = Prepared(transactions.insert().returning(transactions.c.id), keys=_TX_KEYS)


@functools.cache
def _stats_upsert(dialect: str) -> Prepared:
    """INSERT ... ON CONFLICT DO UPDATE for customer_stats (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    cs = customer_stats
    stmt = insert(cs).values(
        customer_id=bindparam("cid"),
        first_at=bindparam("at"),
        last_at=bindparam("at"),
        tx_count=1,
        spend_cents=bindparam("cents"),
    )
    new = stmt.excluded
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=[cs.c.customer_id],
            set_={
                "first_at": case((new.first_at < cs.c.first_at, new.first_at), else_=cs.c.first_at),
                "last_at": case((new.last_at > cs.c.last_at, new.last_at), else_=cs.c.last_at),
                "tx_count": cs.c.tx_count + 1,
                "spend_cents": cs.c.spend_cents + new.spend_cents,
            },
        )
    )


# A refund reduces the spend of a customer who has a purchase (so a stats row)
_STATS_REFUND = Prepared(
    customer_stats.update()
    .where(customer_stats.c.customer_id == bindparam("cid"))
    .values(spend_cents=customer_stats.c.spend_cents + bindparam("cents"))
)
_HAS_PURCHASE = (
    select(transactions.c.id)
    .where(transactions.c.customer_id == bindparam("cid"), transactions.c.kind == "purchase")
    .limit(1)
)
TRANSACTION_KINDS = ("purchase", "refund")


INTERACTION_KINDS = ("visit", "call", "sms", "email", "complaint", "survey", "note", "purchase")


def check_time(at: Any, what: str) -> dt.datetime:
    """A date or datetime given to the API, in the calendar range every time
    field accepts (:func:`crmcore.parse.parse_datetime`)."""
    if not isinstance(at, dt.date):
        raise ValidationError(f"{what}: expected a date-time, got {type(at).__name__}")
    return parse_datetime(at, field=what)


def check_amount(amount_cents: Any) -> int:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise ValidationError(f"amount: expected integer cents, got {amount_cents!r}")
    if abs(amount_cents) > MAX_CENTS:
        raise ValidationError(
            f"amount: {format_money(amount_cents)} yuan is out of range "
            f"(at most {format_money(MAX_CENTS)})"
        )
    return amount_cents


def check_kind(kind: Any, amount_cents: int) -> str:
    """A transaction's kind, checked against the sign of its amount: a purchase
    is zero or more, a refund is negative. A negative amount is never taken for
    a purchase: a refund must be said to be one."""
    if kind not in TRANSACTION_KINDS:
        raise ValidationError(f"transaction kind {kind!r}: expected purchase or refund")
    if kind == "purchase" and amount_cents < 0:
        raise ValidationError(
            f"amount {amount_cents / 100:.2f} is negative: a refund must be recorded as "
            "kind 'refund'"
        )
    if kind == "refund" and amount_cents >= 0:
        raise ValidationError(
            f"refund amount {amount_cents / 100:.2f}: a refund's amount is negative (e.g. -12.34)"
        )
    return str(kind)


class RecordsMixin(CRMBase):
    @operation()
    def record_interaction(
        self,
        customer: Any,
        kind: str,
        text: str = "",
        *,
        at: dt.datetime | None = None,
        staff: Any = None,
        channel: str | None = None,
        data: Mapping[str, Any] | None = None,
        source: str = "core",
    ) -> Interaction:
        """Record a touch (visit, call, sms, email, complaint, survey, note, purchase)."""
        row = self._customer_row(customer, write=True)
        if kind not in INTERACTION_KINDS:
            raise ValidationError(f"interaction kind {kind!r}; expected one of {INTERACTION_KINDS}")
        text = clean_text(text, field="text", max_len=10_000, multiline=True, required=False) or ""
        draft = Interaction(
            id=None,
            customer_id=row.id,
            kind=kind,
            text=text,
            at=check_time(at or self.now(), "at"),
            staff_id=self._staff_id(staff) if staff is not None else self.db.principal.staff_id,
            channel=channel,
            data=dict(data or {}),
            source=source,
        )
        self.hook.crm_validate_interaction(crm=self, interaction=draft)
        values = attrs.asdict(draft)
        values.pop("id")
        res = self.db.execute(interactions.insert().values(**values))
        done = attrs.evolve(draft, id=res.inserted_primary_key[0])
        self.hook.crm_interaction_recorded(crm=self, interaction=done)
        return done

    @operation(write=False)
    def interactions_of(self, customer: Any, *, kind: str | None = None) -> list[Interaction]:
        """The customer's interactions (visits, calls, messages, notes, ...), oldest first;
        ``kind`` keeps one kind."""
        cid = self._customer_row(customer).id
        stmt = select(interactions).where(interactions.c.customer_id == cid)
        if kind:
            stmt = stmt.where(interactions.c.kind == kind)
        return [
            _rows.interaction(r)
            for r in self.db.execute(stmt.order_by(interactions.c.at, interactions.c.id))
        ]

    @operation()
    def record_transaction(
        self,
        customer: Any,
        amount_cents: int,
        *,
        occurred_at: dt.datetime | None = None,
        channel: str | None = None,
        external_id: str | None = None,
        kind: str = "purchase",
    ) -> Transaction:
        """Record a purchase (or, with ``kind="refund"``, a refund: a negative
        amount) in integer cents. The same ``external_id`` never counts twice: a
        repeat for the same customer returns the stored transaction unchanged; the
        id already used for another customer is a :class:`Conflict` that shows
        nothing of that other transaction. A refund reduces the
        customer's spend but is not a purchase: their purchase count and first
        and last purchase stay as they were; it needs a purchase to refund."""
        cid = self._customer_id(customer, write=True)
        kind = check_kind(kind, check_amount(amount_cents))
        external_id = clean_text(external_id, field="external id", max_len=128, required=False)
        if external_id:
            seen = self.db.conn.execute(
                select(transactions).where(transactions.c.external_id == external_id)
            ).first()
            if seen is not None:
                if seen.customer_id != cid:
                    # the id is taken by someone else's purchase: refuse without showing it
                    raise Conflict(
                        f"transaction id {external_id!r} is already recorded for another customer"
                    )
                return _rows.transaction(seen)
        values = {  # the order of Transaction's fields: the audit row's JSON keeps it
            "customer_id": cid,
            "amount_cents": check_amount(amount_cents),
            "occurred_at": check_time(occurred_at or self.now(), "occurred_at"),
            "channel": clean_text(channel, field="channel", max_len=32, required=False),
            "external_id": external_id,
            "kind": kind,
        }
        if kind == "refund" and self.db.conn.execute(_HAS_PURCHASE, {"cid": cid}).first() is None:
            raise ValidationError(f"refund for customer {cid}: they have no purchase to refund")
        self.hook.crm_validate_transaction(crm=self, transaction=Transaction(id=None, **values))
        if external_id and self.db.conn.dialect.name == "postgresql":
            # A concurrent session may be recording the same id: its insert makes
            # ours wait, then fail on the unique key once it commits. Insert under
            # a savepoint and, on that failure, return the row it stored. (SQLite
            # serialises writers, so the check above already saw it.)
            try:
                with self.db.conn.begin_nested():
                    tid = self.db.insert_one(transactions, _TX_INSERT, values)
            except sa_exc.IntegrityError:
                seen = self.db.conn.execute(
                    select(transactions).where(transactions.c.external_id == external_id)
                ).first()
                if seen is None:
                    raise
                return _rows.transaction(seen)
        else:
            tid = self.db.insert_one(transactions, _TX_INSERT, values)
        done = Transaction(id=tid, **values)
        self._bump_stats(done)
        self.hook.crm_transaction_recorded(crm=self, transaction=done)
        return done

    def _bump_stats(self, t: Transaction) -> None:
        """Fold one transaction into the customer's aggregates: one upsert (a
        refund: one update of the spend)."""
        if t.kind == "refund":
            self.db.run(_STATS_REFUND, {"cid": t.customer_id, "cents": t.amount_cents})
            return
        self.db.run(
            _stats_upsert(self.db.conn.dialect.name),
            {"cid": t.customer_id, "at": t.occurred_at, "cents": t.amount_cents},
        )

    @operation(write=False)
    def transactions_of(self, customer: Any, *, limit: int | None = None) -> list[Transaction]:
        """The customer's transactions, newest first; ``limit`` keeps that many."""
        cid = self._customer_row(customer).id
        stmt = (
            select(transactions)
            .where(transactions.c.customer_id == cid)
            .order_by(transactions.c.occurred_at.desc(), transactions.c.id.desc())
        )
        if limit:
            stmt = stmt.limit(limit)
        return [_rows.transaction(r) for r in self.db.execute(stmt)]

    # -- timeline ---------------------------------------------------------------------
    @operation()
    def add_timeline_entry(
        self,
        customer: Any,
        kind: str,
        summary: str,
        *,
        at: dt.datetime | None = None,
        data: Mapping[str, Any] | None = None,
        source: str = "core",
    ) -> TimelineEntry:
        """Store an entry on the customer's timeline (e.g. a tier change with its reason)."""
        cid = self._customer_row(customer, write=True).id
        entry = TimelineEntry(
            at=check_time(at or self.now(), "at"),
            kind=kind,
            source=source,
            summary=summary,
            data=dict(data or {}),
        )
        self.db.execute(
            timeline_entries.insert().values(
                customer_id=cid,
                at=entry.at,
                kind=kind,
                source=source,
                summary=summary,
                data=entry.data,
            )
        )
        return entry

    @operation(write=False)
    def timeline(self, customer: Any, *, limit: int | None = None) -> list[TimelineEntry]:
        """Everything about one customer, core and plugins, oldest first."""
        row = self._customer_row(customer)
        cid, db = row.id, self.db
        out: list[TimelineEntry] = []
        for r in db.execute(select(stage_changes).where(stage_changes.c.customer_id == cid)):
            summary = (
                f"created as {r.to_stage}"
                if r.from_stage is None
                else f"stage {r.from_stage} -> {r.to_stage}" + (f": {r.reason}" if r.reason else "")
            )
            out.append(
                TimelineEntry(
                    at=r.at,
                    kind="stage",
                    source="core",
                    summary=summary,
                    data={"from": r.from_stage, "to": r.to_stage},
                )
            )
        for r in db.execute(select(interactions).where(interactions.c.customer_id == cid)):
            out.append(
                TimelineEntry(
                    at=r.at,
                    kind=r.kind,
                    source=r.source,
                    summary=r.text or r.kind,
                    data={"interaction_id": r.id},
                )
            )
        for r in db.execute(select(transactions).where(transactions.c.customer_id == cid)):
            out.append(
                TimelineEntry(
                    at=r.occurred_at,
                    kind="transaction",
                    source="core",
                    summary=f"{r.kind} {r.amount_cents / 100:.2f}"
                    + (f" ({r.channel})" if r.channel else ""),
                    data={
                        "transaction_id": r.id,
                        "amount_cents": r.amount_cents,
                        "kind": r.kind,
                    },
                )
            )
        evs = (
            select(ticket_events, tickets.c.subject, tickets.c.source)
            .join(tickets, tickets.c.id == ticket_events.c.ticket_id)
            .where(tickets.c.customer_id == cid)
        )
        for r in db.execute(evs):
            what = "opened" if r.from_state is None else f"{r.from_state} -> {r.to_state}"
            out.append(
                TimelineEntry(
                    at=r.at,
                    kind="ticket",
                    source=r.source,
                    summary=f"ticket {r.ticket_id} {what}: {r.subject}",
                    data={"ticket_id": r.ticket_id, "state": r.to_state},
                )
            )
        for r in db.execute(
            select(messages).where(messages.c.customer_id == cid, messages.c.channel != "event")
        ):
            out.append(
                TimelineEntry(
                    at=r.created_at,
                    kind=f"message.{r.channel}",
                    source=r.source,
                    summary=f"{r.channel} {r.status}: {r.body}",
                    data={"message_id": r.id},
                )
            )
        for r in db.execute(select(timeline_entries).where(timeline_entries.c.customer_id == cid)):
            out.append(
                TimelineEntry(
                    at=r.at,
                    kind=r.kind,
                    source=r.source,
                    summary=r.summary,
                    data=dict(r.data or {}),
                )
            )
        customer_entity = _rows.customer(row)
        for entries in self.hook.crm_timeline(crm=self, customer=customer_entity):
            out.extend(entries or ())
        out.sort(key=lambda e: e.at)  # stable: same-time entries keep source order
        return out[-limit:] if limit else out

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
        if self._db is None:
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
        reads = _CardReads(db.run, db.conn.dialect)
        if phone is not None:
            if not db.principal.active:
                raise AccessDenied(
                    f"{db.principal.key} has departed and may not see or change customers"
                )
            # a number on a customer the principal may not see answers as an unknown one
            unknown = NotFound(f"no customer with phone {phone!r}")
            row = reads.first(_CARD_BY_PHONE_STATS, {"phone": self.normalise_phone(phone)})
            if row is None or row.merged_into_id is not None:
                try:  # extra contact points, merged records
                    found = self.match_customer(phone=phone)
                except Conflict:
                    raise unknown from None
                if found is None:
                    raise unknown
                row = reads.first(_CARD_BY_ID_STATS, {"cid": found[0].id})
            elif not db.can_see(row.id):
                raise unknown
        else:
            row = reads.first(_CARD_BY_ID_STATS, {"cid": self._customer_row(customer).id})
        entity = _rows.customer(row)
        labels = reads.labels(row.id)
        if live:
            for extra in self.hook.crm_classify_customer(crm=self, customer=entity):
                labels.update(extra or {})
        return reads.card(entity, row, labels, transactions_limit)

    def _till_on_driver(self, phone: str, limit: int) -> dict[str, Any] | None:
        """:meth:`till_lookup` on a pooled driver connection in one read
        transaction; None when the number is not a live customer's that the
        principal may see (the checked path then answers)."""
        principal = self._principal_ref
        if not isinstance(principal, Principal):
            principal = self._resolved_principal or self._resolve_once()
        if not principal.active:
            return None  # refused by the checked path
        number = self.normalise_phone(phone)
        check = visible_customer_check(principal)
        dialect = self.engine.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        sqlite = dialect.name == "sqlite"
        pooled = self.engine.raw_connection()
        try:
            driver = pooled.driver_connection

            def run(prepared: Prepared, params: Mapping[str, Any] | None) -> Any:
                sql = prepared.on(dialect)
                cur = pooled.cursor()
                cur.execute(sql.sql, sql.params(params))
                return cur

            reads = _CardReads(run, dialect)
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
                card = reads.card(_rows.customer(row), row, reads.labels(row.id), limit)
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

    def _resolve_once(self) -> Principal:
        """The CRM's principal, resolved in a read of its own (then kept)."""
        with self.transaction(write=False) as db:
            return db.principal

    @operation(write=False)
    def count_customers(self, *, stage: str | None = None, owner: Any = None) -> int:
        """How many live customers the principal may see (in ``stage``, of ``owner``):
        the total of what :meth:`list_customers` pages through."""
        where = self._listing_filter(stage, owner)  # type: ignore[attr-defined]
        return int(self.db.scalar(select(func.count()).select_from(live_customers).where(*where)))
