"""The messaging rules an operator sets in ``[messages]``, applied when a message
is queued and checked again just before it is sent.

- Consent per channel: a message to a customer needs their consent for the
  channel's medium (``consent_sms`` for an SMS channel of any kind,
  ``consent_email`` for e-mail) and the contact point's own; consent withdrawn
  after queueing cancels the message at send time.
- Quiet hours (``quiet_hours = "21:00-08:00"``, the deployment's local time):
  a *marketing* message queued or due inside the window is held until the
  window ends (``not_before``), never dropped.
- Frequency caps (``max_marketing_per_day``, ``max_marketing_per_week``, per
  customer, calendar day and ISO week): a marketing message over a cap is not
  queued, and one that would exceed it when sent is cancelled.

A message's purpose is its template's (``Template(purpose=...)``) unless the
caller names one; a message without either is transactional, which the quiet
hours and caps leave alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from crmcore.channels.settings import MEDIUM
from crmcore.errors import ValidationError
from crmcore.schema import customers, messages
from crmcore.storage._driver import connection

if TYPE_CHECKING:
    from crmcore.config import Config
    from crmcore.entities import Message
    from crmcore.registry import Template

PURPOSES = ("marketing", "transactional")
MARKETING = "marketing"
# the outbox states that count towards a frequency cap
_COUNTED = ("queued", "sending", "sent")


def parse_window(spec: str) -> tuple[dt.time, dt.time]:
    """``"21:00-08:00"`` as (start, end); a window may cross midnight."""
    try:
        start_text, end_text = spec.split("-")
        start = dt.time.fromisoformat(start_text.strip())
        end = dt.time.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM such as '21:00-08:00', got {spec!r}") from None
    if start == end:
        raise ValueError(f"{spec!r}: the window starts and ends at the same time")
    return start, end


def quiet_until(rules: Mapping[str, Any], at: dt.datetime) -> dt.datetime | None:
    """When the quiet-hours window holding ``at`` ends, or None when ``at`` is outside it."""
    if not rules.get("quiet_hours"):
        return None
    start, end = parse_window(rules["quiet_hours"])
    now = at.time()
    if start < end:
        inside = start <= now < end
        ends = dt.datetime.combine(at.date(), end)
    else:  # crosses midnight: inside from start to midnight, and from midnight to end
        inside = now >= start or now < end
        day = at.date() + dt.timedelta(days=1) if now >= start else at.date()
        ends = dt.datetime.combine(day, end)
    return ends if inside else None


def medium_of(config: Config, channel: str) -> str:
    """What a channel delivers over: ``sms`` or ``email`` for a configured channel of
    those kinds (whatever its name), else the channel's own name."""
    table = config.channels.get(channel)
    return MEDIUM[table["kind"]] if table is not None else channel


def purpose_of(template: Template | None, given: str | None) -> str:
    """The message's purpose: ``given``, else its template's, else transactional."""
    if given is not None:
        if given not in PURPOSES:
            raise ValidationError(
                f"message purpose: expected one of {list(PURPOSES)}, got {given!r}"
            )
        return given
    return getattr(template, "purpose", None) or "transactional"


def _periods(at: dt.datetime) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    day = dt.datetime.combine(at.date(), dt.time())
    week = day - dt.timedelta(days=day.weekday())
    return {
        "max_marketing_per_day": (day, day + dt.timedelta(days=1)),
        "max_marketing_per_week": (week, week + dt.timedelta(days=7)),
    }


def _over_cap(
    conn: Any,
    rules: Mapping[str, Any],
    customer_id: int,
    when: Any,
    at: dt.datetime,
    states: tuple[str, ...],
    exclude: int | None = None,
) -> str | None:
    """The cap that ``customer_id``'s marketing messages (timed by ``when``, in
    ``states``) already fill for the period holding ``at``, or None."""
    for setting, (begin, end) in _periods(at).items():
        cap = rules.get(setting)
        if cap is None:
            continue
        stmt = (
            select(func.count())
            .select_from(messages)
            .where(
                messages.c.customer_id == customer_id,
                messages.c.purpose == MARKETING,
                messages.c.status.in_(states),
                when >= begin,
                when < end,
            )
        )
        if exclude is not None:
            stmt = stmt.where(messages.c.id != exclude)
        if conn.execute(stmt).scalar_one() >= cap:
            return f"{setting} = {cap}"
    return None


def admit(crm: Any, *, customer_id: int | None, purpose: str) -> tuple[bool, dt.datetime | None]:
    """At enqueue: whether a message may be queued, and the time it is held until.

    A marketing message inside quiet hours is held until the window ends; one
    whose customer already has the capped number of marketing messages going out
    in that day or week is not queued. Read over the whole base: a cap counts
    every message to the customer, whoever queued it."""
    if purpose != MARKETING:
        return True, None
    rules = crm.config.messages
    held = quiet_until(rules, crm.now())
    if customer_id is not None:
        going_out = func.coalesce(messages.c.not_before, messages.c.created_at)
        if _over_cap(connection(crm.db), rules, customer_id, going_out, held or crm.now(), _COUNTED):
            return False, None
    return True, held


def recheck(crm: Any, msg: Message) -> str | None:
    """Just before ``msg`` is sent (inside a transaction): hold it again if quiet
    hours began, cancel it if consent was withdrawn or a cap filled up since it
    was queued. Returns ``"held"``, ``"cancelled"`` or None (send it)."""
    conn = connection(crm.db)
    now = crm.now()
    reason = _consent_gone(crm, msg)
    if reason is None and msg.purpose == MARKETING:
        until = quiet_until(crm.config.messages, now)
        if until is not None:
            crm.db.execute(update(messages).where(messages.c.id == msg.id).values(not_before=until))
            return "held"
        if msg.customer_id is not None:
            cap = _over_cap(
                conn,
                crm.config.messages,
                msg.customer_id,
                messages.c.sent_at,
                now,
                ("sent",),
                exclude=msg.id,
            )
            reason = f"frequency cap {cap} reached" if cap else None
    if reason is None:
        return None
    cancel(crm.db, messages.c.id == msg.id, reason)
    return "cancelled"


def cancel(db: Any, where: Any, reason: str) -> int:
    """Cancel the queued messages ``where`` selects, with the reason (through the
    query layer: scoped and audited); how many."""
    return int(
        db.execute(
            update(messages)
            .where(where, messages.c.status == "queued")
            .values(status="cancelled", last_error=f"cancelled: {reason}")
        ).rowcount
    )


def _consent_gone(crm: Any, msg: Message) -> str | None:
    """Why the customer behind ``msg`` no longer consents to it, or None."""
    from crmcore.services.messages import _ADDRESS

    medium = medium_of(crm.config, msg.channel)
    if medium not in _ADDRESS:
        return None
    flag = customers.c[_ADDRESS[medium][1]]
    if msg.customer_id is not None:
        consents = connection(crm.db).execute(
            select(flag).where(customers.c.id == msg.customer_id)
        ).scalar_one_or_none()
        if consents is not None and not consents:
            return f"the customer withdrew consent to {medium}"
    if msg.to_address is not None:
        owners = crm.messages.address_owners(medium, msg.to_address)
        if owners and not all(consent for _, consent in owners):
            return f"a customer at this address withdrew consent to {medium}"
    return None


def due(now: dt.datetime) -> Any:
    """The condition of a message whose hold (if any) is over at ``now``."""
    return or_(messages.c.not_before.is_(None), messages.c.not_before <= now)
