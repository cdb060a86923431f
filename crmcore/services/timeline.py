"""The customer timeline: every stream, core and plugins, merged in time order, paged."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Integer, and_, literal, or_, select, union_all
from sqlalchemy.sql.elements import Label

from crmcore.entities import TimelineEntry, TimelinePage
from crmcore.errors import PluginError, ValidationError
from crmcore.registry import TimelineSource
from crmcore.schema import (
    interactions,
    messages,
    stage_changes,
    ticket_events,
    tickets,
    timeline_entries,
    transactions,
)
from crmcore.services.base import Service, operation
from crmcore.services.checks import check_time
from crmcore.services.refs import customer_row


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




class TimelineOps(Service):
    """``crm.records``' timeline operations."""

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
        cid = customer_row(self.db, customer, write=True).id
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
        cid = customer_row(self.db, customer).id
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

