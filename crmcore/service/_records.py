"""Interactions, transactions, stored timeline entries, the timeline and the card."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import Integer, and_, bindparam, case, func, literal, or_, select, union_all
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.elements import Label

from crmcore.access import Principal, visible_customer_check
from crmcore.entities import Interaction, TimelineEntry, TimelinePage, Transaction
from crmcore.errors import AccessDenied, Conflict, NotFound, PluginError, ValidationError
from crmcore.parse import MAX_CENTS, clean_text, format_money, parse_datetime
from crmcore.registry import TimelineSource
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
from crmcore.storage._driver import Prepared, connection, dialect_name, run
from crmcore.storage.engine import database_error


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
    operation's driver path, or a pooled driver connection's cursor)."""

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


# -- the timeline's streams ------------------------------------------------------------
def _stage_entry(r: Any) -> TimelineEntry:
    summary = (
        f"created as {r.to_stage}"
        if r.from_stage is None
        else f"stage {r.from_stage} -> {r.to_stage}" + (f": {r.reason}" if r.reason else "")
    )
    return TimelineEntry(
        at=r.at,
        kind="stage",
        source="core",
        summary=summary,
        data={"from": r.from_stage, "to": r.to_stage},
    )


def _interaction_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind=r.kind,
        source=r.source,
        summary=r.text or r.kind,
        data={"interaction_id": r.id},
    )


def _transaction_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="transaction",
        source="core",
        summary=f"{r.kind} {r.amount_cents / 100:.2f}" + (f" ({r.channel})" if r.channel else ""),
        data={"transaction_id": r.id, "amount_cents": r.amount_cents, "kind": r.kind},
    )


def _ticket_entry(r: Any) -> TimelineEntry:
    what = "opened" if r.from_state is None else f"{r.from_state} -> {r.to_state}"
    return TimelineEntry(
        at=r.at,
        kind="ticket",
        source=r.source,
        summary=f"ticket {r.ticket_id} {what}: {r.subject}",
        data={"ticket_id": r.ticket_id, "state": r.to_state},
    )


def _message_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind=f"message.{r.channel}",
        source=r.source,
        summary=f"{r.channel} {r.status}: {r.body}",
        data={"message_id": r.id},
    )


def _stored_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at, kind=r.kind, source=r.source, summary=r.summary, data=dict(r.data or {})
    )


_CORE_SOURCES = (
    TimelineSource(
        name="core.stage",
        query=lambda cid: select(stage_changes).where(stage_changes.c.customer_id == cid),
        entry=_stage_entry,
    ),
    TimelineSource(
        name="core.interaction",
        query=lambda cid: select(interactions).where(interactions.c.customer_id == cid),
        entry=_interaction_entry,
    ),
    TimelineSource(
        name="core.transaction",
        query=lambda cid: select(transactions, transactions.c.occurred_at.label("at")).where(
            transactions.c.customer_id == cid
        ),
        entry=_transaction_entry,
    ),
    TimelineSource(
        name="core.ticket",
        query=lambda cid: (
            select(ticket_events, tickets.c.subject, tickets.c.source)
            .join(tickets, tickets.c.id == ticket_events.c.ticket_id)
            .where(tickets.c.customer_id == cid)
        ),
        entry=_ticket_entry,
    ),
    TimelineSource(
        name="core.message",
        query=lambda cid: select(messages, messages.c.created_at.label("at")).where(
            messages.c.customer_id == cid, messages.c.channel != "event"
        ),
        entry=_message_entry,
    ),
    TimelineSource(
        name="core.entry",
        query=lambda cid: select(timeline_entries).where(timeline_entries.c.customer_id == cid),
        entry=_stored_entry,
    ),
)
_CORE_SOURCE_NAMES = frozenset(s.name for s in _CORE_SOURCES)


def _unlabel(col: Any) -> Any:
    """The expression behind a labelled column (for WHERE and ORDER BY)."""
    return col.element if isinstance(col, Label) else col


def _earlier(columns: Any, rank: int, before: tuple[Any, int, int]) -> Any:
    """Rows of stream ``rank`` (whose ``columns`` include ``at`` and ``id``)
    that come before the key ``before`` = (at, rank, id) in timeline order, as
    a bound on the time column (an index range) refined for the keys at that
    very time."""
    at, ident = _unlabel(columns.at), _unlabel(columns.id)
    b_at, b_rank, b_id = before
    if rank < b_rank:
        return at <= b_at
    if rank > b_rank:
        return at < b_at
    return and_(at <= b_at, or_(at < b_at, ident < b_id))


def _page_keys(q: Any, rank: int, before: tuple[Any, int, int] | None, limit: int) -> Any:
    """The keys (at, rank, id) of the newest ``limit + 1`` rows of one stream
    before ``before``: what one member of the page's UNION ALL reads. The
    stream's query is a plain subquery the database folds into this one, so
    the time bound, the order and the limit reach its table's index."""
    rows = q.subquery()
    keys = select(rows.c.at, rows.c.id)
    if before is not None:
        keys = keys.where(_earlier(rows.c, rank, before))
    newest = keys.order_by(rows.c.at.desc(), rows.c.id.desc()).limit(limit + 1).subquery()
    return select(newest.c.at, literal(rank, Integer).label("rank"), newest.c.id)


def _encode_cursor(at: dt.datetime, stream: str, ident: int) -> str:
    raw = json.dumps([at.isoformat(), stream, ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: Any, sources: list[TimelineSource]) -> tuple[Any, int, int]:
    """(at, rank, id) of a cursor from :func:`_encode_cursor`; a clear error otherwise."""
    bad = ValidationError(f"timeline cursor {str(cursor)[:80]!r} is not one a timeline page gave")
    if not isinstance(cursor, str) or not cursor or len(cursor) > 400:
        raise bad
    try:
        at_text, stream, ident = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        at = dt.datetime.fromisoformat(at_text)
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(stream, str) or isinstance(ident, bool) or not isinstance(ident, int):
        raise bad
    ranks = {source.name: rank for rank, source in enumerate(sources)}
    if stream not in ranks:
        raise ValidationError(
            f"timeline cursor {cursor[:80]!r}: its stream {stream!r} is not enabled"
        )
    return at, ranks[stream], ident


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
            seen = connection(self.db).execute(
                select(transactions).where(transactions.c.external_id == external_id)
            ).first()
            if seen is not None:
                if seen.customer_id != cid:
                    # the id is taken by someone else's purchase: refuse without showing it
                    raise Conflict(
                        f"transaction id {external_id!r} is already recorded for another customer"
                    )
                return _rows.transaction(seen)
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
        self.hook.crm_validate_transaction(crm=self, transaction=Transaction(id=None, **values))
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
            run(self.db, _STATS_REFUND, {"cid": t.customer_id, "cents": t.amount_cents})
            return
        run(self.db, 
            _stats_upsert(dialect_name(self.db)),
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
    def timeline(
        self, customer: Any, *, limit: int | None = None, cursor: str | None = None
    ) -> TimelinePage:
        """Everything about one customer, core and plugins, oldest first.

        Entries are ordered by time, then by stream (the core's: stage changes,
        interactions, transactions, tickets, messages, stored entries; then the
        plugins' ``crm_timeline_sources`` by name), then by id. With ``limit``
        the page is the latest ``limit`` entries (before ``cursor``, when
        given), cut in the database: one UNION ALL of every stream's newest
        rows reads only the page's keys, then only the page's rows are read.
        The page's ``next_cursor`` (opaque) reads the entries before it."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValidationError(f"timeline limit {limit!r}: expected a whole number >= 1")
        cid = self._customer_row(customer).id
        sources = self._timeline_sources()
        before = _decode_cursor(cursor, sources) if cursor is not None else None
        if limit is None:
            return self._whole_timeline(cid, sources, before)
        db = self.db
        arms = [
            _page_keys(source.query(cid), rank, before, limit)
            for rank, source in enumerate(sources)
        ]
        page = union_all(*arms).subquery("timeline_keys")
        keys = db.execute(
            select(page.c.at, page.c.rank, page.c.id)
            .order_by(page.c.at.desc(), page.c.rank.desc(), page.c.id.desc())
            .limit(limit + 1)
        ).all()
        more, keys = len(keys) > limit, keys[:limit]
        wanted: dict[int, list[int]] = {}
        for _, rank, ident in keys:
            wanted.setdefault(rank, []).append(ident)
        built: dict[tuple[int, int], TimelineEntry] = {}
        for rank, ids in wanted.items():
            source = sources[rank]
            q = source.query(cid)
            for r in db.execute(q.where(_unlabel(q.selected_columns.id).in_(ids))).all():
                built[(rank, r.id)] = source.entry(r)
        entries = [built[(rank, ident)] for _, rank, ident in reversed(keys)]
        oldest = keys[-1] if keys else None
        next_cursor = (
            _encode_cursor(oldest[0], sources[oldest[1]].name, oldest[2])
            if more and oldest is not None
            else None
        )
        return TimelinePage(entries, next_cursor)

    def _timeline_sources(self) -> list[TimelineSource]:
        """The core's streams, then the enabled plugins' by name (names unique)."""
        theirs: dict[str, TimelineSource] = {}
        for declared in self.hook.crm_timeline_sources():
            for source in declared or ():
                if not isinstance(source, TimelineSource):
                    raise PluginError(
                        f"crm_timeline_sources returned {type(source).__name__}; "
                        "expected crmcore.TimelineSource"
                    )
                if source.name in theirs or source.name in _CORE_SOURCE_NAMES:
                    raise PluginError(f"timeline stream {source.name!r} is declared twice")
                theirs[source.name] = source
        return [*_CORE_SOURCES, *(theirs[name] for name in sorted(theirs))]

    def _whole_timeline(
        self, cid: int, sources: list[TimelineSource], before: tuple[Any, int, int] | None
    ) -> TimelinePage:
        """Every entry (before ``before``), read stream by stream and merged."""
        keyed: list[tuple[tuple[Any, int, int], TimelineEntry]] = []
        for rank, source in enumerate(sources):
            q = source.query(cid)
            if before is not None:
                q = q.where(_earlier(q.selected_columns, rank, before))
            keyed.extend(((r.at, rank, r.id), source.entry(r)) for r in self.db.execute(q).all())
        keyed.sort(key=lambda pair: pair[0])
        return TimelinePage([entry for _, entry in keyed])

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
        reads = _CardReads(functools.partial(run, db), connection(db).dialect)
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
                try:  # visible, and where a merge led
                    cid = self._customer_row(found[0].id).id
                except NotFound:
                    raise unknown from None
                row = reads.first(_CARD_BY_ID_STATS, {"cid": cid})
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
        where = self._listing_filter(stage, owner)
        return int(self.db.scalar(select(func.count()).select_from(live_customers).where(*where)))
