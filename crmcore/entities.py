"""The core's value objects, handed to hooks and returned by the API.

They are frozen: a hook cannot corrupt state by mutating what it was given; it
returns a value or raises. Bulk paths stream tuples instead (see
docs/architecture.md): an entity costs about a microsecond to build.

Each class carries the ``attrs.frozen(...)`` decorator itself, not an alias of
it, because type checkers recognise attrs classes only by that decorator: with
it they know every field and the keyword-only ``__init__``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs


@attrs.frozen(slots=True, kw_only=True)
class Staff:
    """A member of staff: the actor behind every call and the owner of customers."""

    id: int
    key: str
    name: str
    roles: tuple[str, ...] = ()
    team: str | None = None
    supervisor_id: int | None = None
    active: bool = True
    departed_at: dt.datetime | None = None


@attrs.frozen(slots=True, kw_only=True)
class ContactPoint:
    """One way to reach a customer; values are stored normalised."""

    kind: str  # phone | email | other channel name
    value: str
    primary: bool = False


@attrs.frozen(slots=True, kw_only=True)
class Customer:
    """A person or organisation served. ``attributes`` hold plugin-declared fields."""

    id: int
    name: str
    external_id: str | None = None
    kind: str = "person"
    phone: str | None = None
    email: str | None = None
    consent_sms: bool = True
    consent_email: bool = True
    owner_id: int | None = None
    stage: str = "prospect"
    attributes: dict[str, Any] = attrs.field(factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@attrs.frozen(slots=True, kw_only=True)
class StageChange:
    """A recorded lifecycle transition."""

    customer_id: int
    from_stage: str | None
    to_stage: str
    reason: str
    at: dt.datetime
    by_staff_id: int | None = None


@attrs.frozen(slots=True, kw_only=True)
class Relationship:
    """A typed, directed link from a customer to another customer or to staff."""

    id: int
    kind: str
    from_customer_id: int
    to_customer_id: int | None = None
    to_staff_id: int | None = None
    since: dt.datetime | None = None
    active: bool = True
    note: str | None = None


@attrs.frozen(slots=True, kw_only=True)
class Interaction:
    """A touch: visit, call, SMS, email, complaint, survey or note."""

    id: int | None
    customer_id: int
    kind: str
    text: str
    at: dt.datetime
    staff_id: int | None = None
    channel: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    source: str = "core"


@attrs.frozen(slots=True, kw_only=True)
class Transaction:
    """A purchase or a refund; ``amount_cents`` is integer money (never float).

    ``kind`` is ``"purchase"`` (amount zero or more) or ``"refund"`` (a negative
    amount): a refund reduces the customer's spend but is not a purchase, so it
    changes neither their purchase count nor their first or last purchase."""

    id: int | None
    customer_id: int
    occurred_at: dt.datetime
    amount_cents: int
    channel: str | None = None
    external_id: str | None = None
    kind: str = "purchase"


@attrs.frozen(slots=True, kw_only=True)
class TransactionBatch:
    """Transactions written by one bulk call, for set-based plugin reactions.

    ``first_id``..``last_id`` is the id range of the rows written (ids are
    contiguous within a batch); ``customer_ids`` the distinct customers touched.
    Query ``crmcore.store.schema.transactions`` with that range to react in SQL.
    """

    first_id: int
    last_id: int
    count: int
    customer_ids: tuple[int, ...]


@attrs.frozen(slots=True, kw_only=True)
class CustomerBatch:
    """Customers created by one bulk call (contiguous id range)."""

    first_id: int
    last_id: int
    count: int


@attrs.frozen(slots=True, kw_only=True)
class Ticket:
    """A complaint or service request moving through a configured workflow."""

    id: int
    customer_id: int
    kind: str
    workflow: str
    state: str
    subject: str
    owner_id: int | None
    due_at: dt.datetime | None
    opened_at: dt.datetime
    closed_at: dt.datetime | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    source: str = "core"


@attrs.frozen(slots=True, kw_only=True)
class TicketMove:
    """One step of a ticket, with who owns the new step and when it is due."""

    ticket_id: int
    from_state: str | None
    to_state: str
    at: dt.datetime
    owner_id: int | None = None
    due_at: dt.datetime | None = None
    note: str | None = None


@attrs.frozen(slots=True, kw_only=True)
class Reminder:
    """A follow-up for a member of staff, due at a time."""

    id: int
    staff_id: int | None
    customer_id: int | None
    due_at: dt.datetime
    text: str
    done_at: dt.datetime | None = None
    source: str = "core"


@attrs.frozen(slots=True, kw_only=True)
class Message:
    """An outbound SMS/email/event in the outbox, delivered after commit.

    ``status`` is ``queued``, ``sending`` (an attempt began), ``sent``, ``dead``
    (given up after ``[outbox] max_attempts``) or ``cancelled`` (a messaging rule
    stopped it: consent withdrawn, a frequency cap); ``idempotency_key`` is the
    same on every attempt."""

    id: int
    channel: str
    to_address: str | None
    body: str
    idempotency_key: str
    customer_id: int | None = None
    template: str | None = None
    status: str = "queued"
    attempts: int = 0
    source: str = "core"
    last_error: str | None = None
    attempted_at: dt.datetime | None = None
    # ``marketing`` or ``transactional``; held until ``not_before`` (quiet hours)
    purpose: str = "transactional"
    not_before: dt.datetime | None = None
    # the template's values (``{"values": {...}}``) or an event's payload
    payload: dict[str, Any] | None = None
    # what the gateway reported: its own id, ``delivered`` | ``failed``, its error code
    provider_id: str | None = None
    delivery_status: str | None = None
    provider_error: str | None = None


@attrs.frozen(slots=True, kw_only=True)
class InboundMessage:
    """A message received from outside (e.g. an SMS reply), before routing."""

    id: int
    channel: str
    from_address: str
    text: str
    received_at: dt.datetime
    delivered_by: str | None = None  # the staff key or gateway channel that handed it in


@attrs.frozen(slots=True, kw_only=True)
class TimelineEntry:
    """One line of a customer's 360 timeline.

    A :class:`~crmcore.TimelineSource` builds these from a plugin's own rows,
    and ``crm.records.add_timeline_entry`` stores one; ``source`` names the plugin.

    >>> import datetime as dt
    >>> entry = TimelineEntry(
    ...     at=dt.datetime(2026, 1, 5, 9, 0), kind="greeting", source="greeter", summary="Hello!"
    ... )
    >>> entry.to_json()["at"]
    '2026-01-05T09:00:00'
    """

    at: dt.datetime
    kind: str
    source: str
    summary: str
    data: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON-able values (``at`` in ISO format)."""
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "source": self.source,
            "summary": self.summary,
            "data": self.data,
        }


class TimelinePage(list[TimelineEntry]):
    """A page of a customer's timeline, oldest first: a list of entries plus
    ``next_cursor``, which ``crm.records.timeline(..., cursor=...)`` takes to read the
    entries before this page (None when there are none)."""

    next_cursor: str | None

    def __init__(self, entries: Iterable[TimelineEntry] = (), next_cursor: str | None = None):
        super().__init__(entries)
        self.next_cursor = next_cursor
