"""``crm.records``: interactions and transactions, the timeline and the card."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import bindparam, case, select
from sqlalchemy import exc as sa_exc

from crmcore.db import Prepared
from crmcore.entities import Interaction, Transaction
from crmcore.errors import Conflict, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import customer_stats, interactions, transactions
from crmcore.services import rows as make
from crmcore.services.base import operation
from crmcore.services.card import CardOps
from crmcore.services.checks import INTERACTION_KINDS, check_amount, check_kind, check_time
from crmcore.services.refs import customer_id, customer_row, staff_id
from crmcore.services.timeline import TimelineOps
from crmcore.storage._driver import connection, dialect_name, run

_TX_KEYS = ("customer_id", "amount_cents", "occurred_at", "channel", "external_id", "kind")
_TX_INSERT = Prepared(transactions.insert().returning(transactions.c.id), keys=_TX_KEYS)


@functools.cache
def _stats_upsert(dialect: str) -> Prepared:
    """INSERT ... ON CONFLICT DO UPDATE for customer_stats (SQLite and PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
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

class RecordsService(TimelineOps, CardOps):
    """Interactions, transactions, stored timeline entries, the timeline, the
    card and the till's lookup."""

    area = "records"

    @operation()
    def add_interaction(
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
        row = customer_row(self.db, customer, write=True)
        if kind not in INTERACTION_KINDS:
            raise ValidationError(f"interaction kind {kind!r}; expected one of {INTERACTION_KINDS}")
        text = clean_text(text, field="text", max_len=10_000, multiline=True, required=False) or ""
        draft = Interaction(
            id=None,
            customer_id=row.id,
            kind=kind,
            text=text,
            at=check_time(at or self.now(), "at"),
            staff_id=staff_id(self.db, staff) if staff is not None else self.db.principal.staff_id,
            channel=channel,
            data=dict(data or {}),
            source=source,
        )
        self.hook.crm_validate_interaction(crm=self.crm, interaction=draft)
        values = attrs.asdict(draft)
        values.pop("id")
        res = self.db.execute(interactions.insert().values(**values))
        done = attrs.evolve(draft, id=res.inserted_primary_key[0])
        self.hook.crm_interaction_recorded(crm=self.crm, interaction=done)
        return done

    @operation(write=False)
    def interactions(self, customer: Any, *, kind: str | None = None) -> list[Interaction]:
        """The customer's interactions (visits, calls, messages, notes, ...), oldest first;
        ``kind`` keeps one kind."""
        cid = customer_row(self.db, customer).id
        stmt = select(interactions).where(interactions.c.customer_id == cid)
        if kind:
            stmt = stmt.where(interactions.c.kind == kind)
        return [
            make.interaction(r)
            for r in self.db.execute(stmt.order_by(interactions.c.at, interactions.c.id))
        ]

    @operation()
    def add_transaction(
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
        cid = customer_id(self.db, customer, write=True)
        kind = check_kind(kind, check_amount(amount_cents))
        external_id = clean_text(external_id, field="external id", max_len=128, required=False)
        if external_id:
            seen = connection(self.db).execute(
                select(transactions).where(transactions.c.external_id == external_id)
            ).first()
            if seen is not None:
                if seen.customer_id != cid:
                    # the id is taken by someone else's purchase: refuse without showing it
                    raise Conflict(
                        f"transaction id {external_id!r} is already recorded for another customer"
                    )
                return make.transaction(seen)
        values: dict[str, Any] = {  # Transaction's field order: the audit row's JSON keeps it
            "customer_id": cid,
            "amount_cents": check_amount(amount_cents),
            "occurred_at": check_time(occurred_at or self.now(), "occurred_at"),
            "channel": clean_text(channel, field="channel", max_len=32, required=False),
            "external_id": external_id,
            "kind": kind,
        }
        if kind == "refund" and connection(self.db).execute(_HAS_PURCHASE, {"cid": cid}).first() is None:
            raise ValidationError(f"refund for customer {cid}: they have no purchase to refund")
        self.hook.crm_validate_transaction(crm=self.crm, transaction=Transaction(id=None, **values))
        if external_id and dialect_name(self.db) == "postgresql":
            # A concurrent session may be recording the same id: its insert makes
            # ours wait, then fail on the unique key once it commits. Insert under
            # a savepoint and, on that failure, return the row it stored. (SQLite
            # serialises writers, so the check above already saw it.)
            try:
                with connection(self.db).begin_nested():
                    tid = self.db.insert_one(transactions, _TX_INSERT, values)
            except sa_exc.IntegrityError:
                seen = connection(self.db).execute(
                    select(transactions).where(transactions.c.external_id == external_id)
                ).first()
                if seen is None:
                    raise
                return make.transaction(seen)
        else:
            tid = self.db.insert_one(transactions, _TX_INSERT, values)
        done = Transaction(id=tid, **values)
        self._bump_stats(done)
        self.hook.crm_transaction_recorded(crm=self.crm, transaction=done)
        return done

    def _bump_stats(self, t: Transaction) -> None:
        """Fold one transaction into the customer's aggregates: one upsert (a
        refund: one update of the spend)."""
        if t.kind == "refund":
            run(self.db, _STATS_REFUND, {"cid": t.customer_id, "cents": t.amount_cents})
            return
        run(self.db, 
            _stats_upsert(dialect_name(self.db)),
            {"cid": t.customer_id, "at": t.occurred_at, "cents": t.amount_cents},
        )

    @operation(write=False)
    def transactions(self, customer: Any, *, limit: int | None = None) -> list[Transaction]:
        """The customer's transactions, newest first; ``limit`` keeps that many."""
        cid = customer_row(self.db, customer).id
        stmt = (
            select(transactions)
            .where(transactions.c.customer_id == cid)
            .order_by(transactions.c.occurred_at.desc(), transactions.c.id.desc())
        )
        if limit:
            stmt = stmt.limit(limit)
        return [make.transaction(r) for r in self.db.execute(stmt)]

