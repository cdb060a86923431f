"""What a gateway pushes back: delivery receipts and customers' replies.

The web route ``POST /api/v1/hooks/sms/{channel}`` (:mod:`crmcore.web.sms_hooks`)
verifies a push, turns it into :class:`Receipt` and :class:`Reply` events with
the channel's parser and hands them to :func:`apply`, acting as the system
principal. Each event is recorded by the gateway's own id (``gateway_events``):
a push the gateway repeats is recognised and not applied twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from sqlalchemy import func, or_, select, update

from crmcore.clock import fixed_time
from crmcore.errors import ValidationError
from crmcore.schema import gateway_events, messages
from crmcore.storage._driver import connection

MAX_EVENTS = 1000  # per push


@attrs.frozen(kw_only=True)
class Receipt:
    """A delivery report for one sent message, found by our idempotency key
    (``reference``) or the gateway's id for it (``provider_id``)."""

    gateway_id: str
    delivered: bool
    reference: str | None = None
    provider_id: str | None = None
    error: str | None = None
    at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class Reply:
    """An SMS a customer sent back (routed through ``crm.messages.receive_sms``)."""

    gateway_id: str
    from_phone: str
    text: str
    at: dt.datetime | None = None


def text_field(item: dict[str, Any], name: str, where: str, *, required: bool = True) -> str | None:
    """``item[name]`` as text (a number is taken as its digits); ValidationError naming it."""
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"{where}: missing {name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(f"{where}: {name!r}: expected text, got {type(value).__name__}")
    text = str(value)
    if len(text) > 2000:
        raise ValidationError(f"{where}: {name!r}: {len(text)} characters; at most 2000")
    return text


def event_time(value: str | None, zone: str | None, where: str) -> dt.datetime | None:
    """A gateway's timestamp as the deployment's local time (an offset is converted)."""
    if value is None:
        return None
    try:
        return fixed_time(value, zone)
    except ValueError:
        raise ValidationError(f"{where}: not a date-time: {value!r}") from None


def items_of(document: Any, where: str) -> list[dict[str, Any]]:
    """A push's events: one JSON object or an array of them."""
    items = document if isinstance(document, list) else [document]
    if len(items) > MAX_EVENTS:
        raise ValidationError(f"{where}: {len(items)} events in one push; at most {MAX_EVENTS}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError(f"{where}: event {i}: expected a JSON object")
    return items


def _seen(db: Any, channel: str, kind: str, gateway_id: str, at: dt.datetime) -> bool:
    """Whether this event was applied before; records it if not."""
    known = connection(db).execute(
        select(func.count())
        .select_from(gateway_events)
        .where(
            gateway_events.c.channel == channel,
            gateway_events.c.kind == kind,
            gateway_events.c.gateway_id == gateway_id,
        )
    ).scalar_one()
    if known:
        return True
    db.execute(
        gateway_events.insert().values(
            channel=channel, kind=kind, gateway_id=gateway_id, received_at=at
        )
    )
    return False


def apply(crm: Any, channel: str, events: list[Receipt | Reply]) -> dict[str, int]:
    """Apply a push's events in one transaction (``crm`` acts as the system).

    A receipt sets its message's ``delivery_status`` (``delivered`` or
    ``failed``), ``provider_error`` (the provider's code) and ``delivered_at``,
    only for a message of this channel. A reply goes to ``crm.messages.receive_sms`` with
    ``delivered_by=channel`` (plugins route it; an unsubscribe word withdraws
    consent). Returns counts of what was applied, repeated or unmatched."""
    counts = {"receipts": 0, "replies": 0, "duplicates": 0, "unmatched": 0}
    with crm.transaction():
        db = crm.db
        for event in events:
            kind = "receipt" if isinstance(event, Receipt) else "reply"
            if _seen(db, channel, kind, event.gateway_id, crm.now()):
                counts["duplicates"] += 1
                continue
            if isinstance(event, Reply):
                crm.messages.receive_sms(event.from_phone, event.text, at=event.at, delivered_by=channel)
                counts["replies"] += 1
                continue
            matches = []
            if event.reference is not None:
                matches.append(messages.c.idempotency_key == event.reference)
            if event.provider_id is not None:
                matches.append(messages.c.provider_id == event.provider_id)
            if not matches:
                counts["unmatched"] += 1
                continue
            values: dict[str, Any] = {
                "delivery_status": "delivered" if event.delivered else "failed",
                "provider_error": None if event.delivered else (event.error or "unknown")[:200],
                "delivered_at": event.at or crm.now(),
            }
            if event.provider_id is not None:
                values["provider_id"] = func.coalesce(messages.c.provider_id, event.provider_id)
            changed = db.execute(
                update(messages)
                .where(messages.c.channel == channel, or_(*matches))
                .values(**values)
            ).rowcount
            counts["receipts" if changed else "unmatched"] += 1
    return counts
