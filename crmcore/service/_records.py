"""Interactions, transactions, stored timeline entries, the timeline and the card."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import bindparam, case, func, select
from sqlalchemy import exc as sa_exc

from crmcore.access import Principal
from crmcore.db import Prepared
from crmcore.entities import Interaction, TimelineEntry, Transaction
from crmcore.errors import Conflict, NotFound, ValidationError
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

_CARD_BY_PHONE = select(customers).where(customers.c.phone == bindparam("phone")).limit(1)
_CARD_LABELS = select(customer_labels.c.name, customer_labels.c.value).where(
    customer_labels.c.customer_id == bindparam("cid")
)
_CARD_STATS = select(customer_stats).where(customer_stats.c.customer_id == bindparam("cid"))
_CARD_RECENT = (
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


# The card of an unrestricted principal: customer and aggregates in one query, on the driver.
_CARD_BY_PHONE_STATS = Prepared(
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
    .where(customers.c.phone == bindparam("phone"))
    .limit(1)
)
_CARD_LABELS_P = Prepared(_CARD_LABELS)
_CARD_RECENT_P = Prepared(_CARD_RECENT)
_STATS_KEYS = ("customer_id", "first_at", "last_at", "tx_count", "spend_cents")


def _driver_card(
    entity: Any, row: Any, labels: dict[str, Any], recent: list[Any], recent_sql: Any
) -> dict[str, Any]:
    """The card from driver-level rows: ``row`` of ``_CARD_BY_PHONE_STATS``, the
    raw rows of ``_CARD_RECENT_P`` (compiled as ``recent_sql``)."""
    at = recent_sql.results[1] or _same  # SQLite: timestamps come as text
    stats = None
    if row.stats_customer_id is not None:
        stats = dict(zip(_STATS_KEYS, row[-5:], strict=True))
    return {
        "customer": entity,
        "labels": labels,
        "stats": stats,
        "transactions": [
            {"id": i, "occurred_at": at(when), "amount_cents": cents, "channel": ch}
            for i, when, cents, ch in recent
        ],
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


_CARD_RECENT_KEYS = ("id", "occurred_at", "amount_cents", "channel")

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


def _same(value: Any) -> Any:
    return value


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
    def card(
        self,
        customer: Any = None,
        *,
        phone: str | None = None,
        transactions_limit: int = 50,
        classify: bool = True,
    ) -> dict[str, Any]:
        """A customer card: the customer, stored labels (segment, tier, ...),
        aggregates and the last ``transactions_limit`` purchases; with ``classify``
        also each plugin's live classification (``crm_classify_customer``), which
        costs the plugins' queries — a till or call-centre lookup may skip it.
        Look up by reference or by phone.

        The till's lookup (by phone, no live classification, an unrestricted
        principal given as such, SQLite, outside an open operation) is read in
        one transaction on a pooled driver connection: nothing in it needs
        scoping, hooks or the audit trail, and SQLAlchemy's per-transaction work
        was a fifth of its cost."""
        if phone is not None and not classify and self._db is None:
            ref = self._principal_ref
            if isinstance(ref, Principal) and ref.unrestricted:
                if self.engine.dialect.name == "sqlite":
                    found = self._card_on_driver(phone, transactions_limit)
                    if found is not None:
                        return found
        return self._card(customer, phone, transactions_limit, classify)

    def _card_on_driver(self, phone: str, limit: int) -> dict[str, Any] | None:
        """The card of a live customer with this phone, read straight on a pooled
        SQLite connection in one read transaction; None when there is no such
        customer (the full path then looks further and says why)."""
        number = self.normalise_phone(phone)
        dialect = self.engine.dialect
        by_phone, labels_q, recent_q = (
            _CARD_BY_PHONE_STATS.on(dialect),
            _CARD_LABELS_P.on(dialect),
            _CARD_RECENT_P.on(dialect),
        )
        pooled = self.engine.raw_connection()
        try:
            conn = pooled.driver_connection
            conn.execute("BEGIN")
            try:
                got = conn.execute(by_phone.sql, by_phone.params({"phone": number})).fetchone()
                if got is None:
                    return None
                row = by_phone.rows((got,))[0]
                if row.merged_into_id is not None:
                    return None
                cid = row.id
                labels = dict(conn.execute(labels_q.sql, labels_q.params({"cid": cid})).fetchall())
                recent = conn.execute(
                    recent_q.sql, recent_q.params({"cid": cid, "n": limit})
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        finally:
            pooled.close()
        return _driver_card(_rows.customer(row), row, labels, recent, recent_q)

    @operation(write=False)
    def _card(
        self, customer: Any, phone: str | None, transactions_limit: int, classify: bool
    ) -> dict[str, Any]:
        db = self.db
        if phone is not None and db.principal.unrestricted:
            # nothing to scope: three queries on the driver, as a hand-written lookup would
            row = db.fetch_first(_CARD_BY_PHONE_STATS, {"phone": self.normalise_phone(phone)})
            if row is not None and row.merged_into_id is None:
                cid = row.id
                labels = {r[0]: r[1] for r in db.run(_CARD_LABELS_P, {"cid": cid}).fetchall()}
                entity = _rows.customer(row)
                if classify:
                    for extra in self.hook.crm_classify_customer(crm=self, customer=entity):
                        labels.update(extra or {})
                recent = db.run(_CARD_RECENT_P, {"cid": cid, "n": transactions_limit}).fetchall()
                return _driver_card(entity, row, labels, recent, _CARD_RECENT_P.on(db.conn.dialect))
        conn = db.conn
        if phone is not None:
            # a number on a customer the principal may not see answers as an unknown one
            unknown = NotFound(f"no customer with phone {phone!r}")
            row = conn.execute(_CARD_BY_PHONE, {"phone": self.normalise_phone(phone)}).first()
            if row is None or row.merged_into_id is not None:
                try:  # extra contact points, merged records
                    found = self.match_customer(phone=phone)
                except Conflict:
                    raise unknown from None
                if found is None:
                    raise unknown
                row = self._customer_row(found[0].id)
            elif not db.can_see(row.id):
                raise unknown
        else:
            row = self._customer_row(customer)
        cid = row.id
        labels = {r.name: r.value for r in conn.execute(_CARD_LABELS, {"cid": cid})}
        entity = _rows.customer(row)
        if classify:
            for extra in self.hook.crm_classify_customer(crm=self, customer=entity):
                labels.update(extra or {})
        stats = conn.execute(_CARD_STATS, {"cid": cid}).first()
        recent = conn.execute(_CARD_RECENT, {"cid": cid, "n": transactions_limit}).all()
        return {
            "customer": entity,
            "labels": labels,
            "stats": dict(stats._mapping) if stats else None,
            "transactions": [dict(zip(_CARD_RECENT_KEYS, r, strict=True)) for r in recent],
        }

    @operation(write=False)
    def count_customers(self, *, stage: str | None = None, owner: Any = None) -> int:
        """How many live customers the principal may see (in ``stage``, of ``owner``):
        the total of what :meth:`list_customers` pages through."""
        where = self._listing_filter(stage, owner)  # type: ignore[attr-defined]
        return int(self.db.scalar(select(func.count()).select_from(live_customers).where(*where)))
