"""Staff are told: a reminder that falls due, a ticket past its step's due
time, reach the assigned member of staff once.

The job ``core.notify_due`` finds, in one statement over the whole base, the
due reminders and overdue open tickets whose (subject, due time, member of
staff) has no notification yet, and in the job's transaction writes one row
each to ``staff_notifications`` (the console inbox, a local table) and, for a
member who chose another channel (``crm inbox channel email --to ...``), one
outbox message to their address, keyed like the notification, which the outbox
worker delivers. A ticket that moves to its next step (a new due time) or is
escalated to someone else (a new owner) is a new notification; re-running the
job for the same time writes nothing twice (the unique ``key``).

The inbox is read through :func:`inbox` and :func:`mark_read`: a member of
staff reads only their own notifications; an admin may read anyone's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, and_, cast, exists, literal, null, select, union_all, update

from crmcore.errors import AccessDenied, NotFound, ValidationError
from crmcore.parse import clean_key
from crmcore.registry import Job
from crmcore.schema import (
    messages,
    reminders,
    staff,
    staff_channels,
    staff_notifications,
    tickets,
)
from crmcore.services.refs import staff_row
from crmcore.storage._driver import connection

INBOX = "inbox"
TITLE_MAX = 200


def _not_told(about: str, about_id: Any, due_at: Any, staff_id: Any) -> Any:
    n = staff_notifications.c
    return ~exists().where(
        n.about == about, n.about_id == about_id, n.due_at == due_at, n.staff_id == staff_id
    )


def due_statement(at: dt.datetime) -> Any:
    """The one SELECT of everything to tell as of ``at``: due reminders and
    overdue open tickets not yet notified to their (active) member of staff,
    with that member's channel and address."""
    r, t = reminders.c, tickets.c
    due_reminders = select(
        literal("reminder").label("about"),
        r.id.label("about_id"),
        r.staff_id.label("staff_id"),
        r.due_at.label("due_at"),
        r.text.label("text"),
        cast(null(), String(32)).label("state"),
        r.customer_id.label("customer_id"),
    ).where(
        r.done_at.is_(None),
        r.staff_id.is_not(None),
        r.due_at <= at,
        _not_told("reminder", r.id, r.due_at, r.staff_id),
    )
    overdue_tickets = select(
        literal("ticket").label("about"),
        t.id.label("about_id"),
        t.owner_id.label("staff_id"),
        t.due_at.label("due_at"),
        t.subject.label("text"),
        t.state.label("state"),
        t.customer_id.label("customer_id"),
    ).where(
        t.closed_at.is_(None),
        t.owner_id.is_not(None),
        t.due_at.is_not(None),
        t.due_at < at,
        _not_told("ticket", t.id, t.due_at, t.owner_id),
    )
    due = union_all(due_reminders, overdue_tickets).subquery("due")
    return (
        select(due, staff_channels.c.channel, staff_channels.c.address)
        .join(staff, and_(staff.c.id == due.c.staff_id, staff.c.active.is_(True)))
        .outerjoin(staff_channels, staff_channels.c.staff_id == due.c.staff_id)
        .order_by(due.c.due_at, due.c.about, due.c.about_id)
    )


def _texts(row: Any) -> tuple[str, str, str]:
    """Title, body and link of one notification."""
    when = row.due_at.isoformat(sep=" ", timespec="minutes")
    if row.about == "reminder":
        title = f"reminder {row.about_id} due {when}"
        return title, row.text, f"reminder/{row.about_id}"
    title = f"ticket {row.about_id} ({row.state}) past its due time {when}"
    return title, row.text, f"ticket/{row.about_id}"


def notify_due(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The job: tell every member of staff what fell due by ``at``, once."""
    conn = connection(crm.db)
    rows = conn.execute(due_statement(at)).all()
    now = crm.now()
    notes: list[dict[str, Any]] = []
    outgoing: list[dict[str, Any]] = []
    for row in rows:
        key = f"notify:{row.about}:{row.about_id}:{row.due_at.isoformat()}:{row.staff_id}"
        title, body, link = _texts(row)
        channel = row.channel if row.channel and row.address else INBOX
        notes.append(
            {
                "staff_id": row.staff_id,
                "about": row.about,
                "about_id": row.about_id,
                "due_at": row.due_at,
                "title": title[:TITLE_MAX],
                "body": body,
                "link": link,
                "channel": channel,
                "created_at": now,
                "read_at": None,
                "key": key,
            }
        )
        if channel != INBOX:
            outgoing.append(
                {
                    "customer_id": None,
                    "channel": channel,
                    "to_address": row.address,
                    "template": None,
                    "body": f"{title}: {body}",
                    "idempotency_key": key,
                    "status": "queued",
                    "attempts": 0,
                    "created_at": now,
                    "source": "core",
                }
            )
    if notes:
        conn.execute(staff_notifications.insert(), notes)
    if outgoing:
        crm.db.execute(messages.insert(), outgoing)
    return {
        "reminders": sum(1 for n in notes if n["about"] == "reminder"),
        "tickets": sum(1 for n in notes if n["about"] == "ticket"),
        "by_outbox": len(outgoing),
    }


NOTIFY_JOB = Job(
    name="core.notify_due",
    run=notify_due,
    schedule="every 5 minutes",
    description="tell staff of reminders falling due and tickets past their step's due time",
)


# -- the inbox -------------------------------------------------------------------
def _reader(crm: Any, staff_key: str | None) -> int:
    """The staff id whose inbox the acting principal reads: their own, or (an
    admin) the one named by ``staff_key``."""
    p = crm.db.principal
    if not p.active:
        raise AccessDenied(f"{p.key} has departed and has no inbox")
    if staff_key is not None and staff_key != p.key:
        if not p.can("admin"):
            raise AccessDenied(f"{p.key} may read only their own inbox")
        return int(staff_row(crm.db, staff_key).id)
    if p.staff_id is None:
        raise ValidationError(f"{p.key} is not a member of staff: name one with --staff")
    return int(p.staff_id)


def inbox(
    crm: Any, *, unread: bool = False, staff_key: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The acting member's notifications (an admin: ``staff_key``'s), newest first."""
    with crm.transaction(write=False, command="inbox"):
        sid = _reader(crm, staff_key)
        n = staff_notifications.c
        stmt = select(staff_notifications).where(n.staff_id == sid)
        if unread:
            stmt = stmt.where(n.read_at.is_(None))
        rows = connection(crm.db).execute(stmt.order_by(n.created_at.desc(), n.id.desc()).limit(limit))
        return [_note(r) for r in rows]


def mark_read(crm: Any, notification_id: int) -> dict[str, Any]:
    """Mark one of the acting member's notifications read (an admin: anyone's).
    Someone else's answers exactly like one that does not exist."""
    with crm.transaction(command="inbox read"):
        p = crm.db.principal
        if not p.active:
            raise AccessDenied(f"{p.key} has departed and has no inbox")
        n = staff_notifications.c
        cond = n.id == notification_id
        if not p.can("admin"):
            cond = and_(cond, n.staff_id == p.staff_id)
        conn = connection(crm.db)
        row = conn.execute(select(staff_notifications).where(cond)).first()
        if row is None:
            raise NotFound(f"notification {notification_id} not found")
        if row.read_at is None:
            conn.execute(
                update(staff_notifications).where(n.id == row.id).values(read_at=crm.now())
            )
            row = conn.execute(select(staff_notifications).where(n.id == row.id)).one()
        return _note(row)


def set_channel(
    crm: Any, channel: str, *, to: str | None = None, staff_key: str | None = None
) -> dict[str, Any]:
    """Where the acting member (an admin: ``staff_key``) is told: ``inbox`` (the
    default), or a channel with their address there (``email`` and an e-mail
    address, ``sms`` and a phone number, ...)."""
    channel = clean_key(channel, field="channel", max_len=32)
    with crm.transaction(command="inbox channel"):
        sid = _reader(crm, staff_key)
        conn = connection(crm.db)
        conn.execute(staff_channels.delete().where(staff_channels.c.staff_id == sid))
        address = None
        if channel != INBOX:
            if not to:
                raise ValidationError(f"inbox channel {channel}: give your address there with --to")
            address = crm.messages.address_for(channel, to)
            conn.execute(
                staff_channels.insert().values(staff_id=sid, channel=channel, address=address)
            )
        key = conn.execute(select(staff.c.key).where(staff.c.id == sid)).scalar_one()
    return {"staff": key, "channel": channel, "address": address}


def _note(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "about": row.about,
        "about_id": row.about_id,
        "title": row.title,
        "body": row.body,
        "link": row.link,
        "channel": row.channel,
        "created_at": row.created_at,
        "read_at": row.read_at,
    }
