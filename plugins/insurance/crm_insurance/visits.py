"""Agent visits verified by the customer's own satisfaction SMS.

An agent records a visit; the customer then texts the company number from their
own phone. :func:`route_inbound` (the ``crm_route_inbound`` hook) decides:

- the sender (already E.164 from the core) is looked up on the customers'
  records: ``customers.phone`` and ``contact_points`` of kind ``phone``;
- if one of those customers has a **pending** visit made no earlier than the
  window (``visit_window_hours``, default 48) before the reply, the most recent
  such visit becomes ``verified``, storing reply time, number, text and score;
- otherwise the reply is stored unmatched with a reason: ``unknown_number``
  (on no customer's record: e.g. the agent's own phone), ``no_visit`` (the
  sender's customer has no visit), ``duplicate`` (their last visit is verified
  already), ``late`` (their last visit's window had closed).

An SMS is considered a visit reply when its sender is a customer with a visit
or its text holds a satisfaction score; any other SMS is left to other plugins.
A visit still pending after its window is reported as ``expired``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import desc, select, union, update

from crm_insurance import NAME, settings
from crm_insurance.scores import LABELS, parse_score
from crm_insurance.tables import replies, visits
from crmcore import NotFound, ValidationError
from crmcore.present import show_phone
from crmcore.schema import contact_points, live_customers


def record_visit(
    crm: Any, customer: Any, *, agent: Any = None, at: dt.datetime | None = None, note: str = ""
) -> dict[str, Any]:
    """Record that ``agent`` (default: the acting member of staff) visited ``customer``."""
    with crm.transaction(command="insurance visit add"):
        settings.require(crm, "write", "record a visit")
        c = crm.customers.get(customer)
        if agent is None:
            if crm.db.principal.staff_id is None:
                raise ValidationError("visit: give the visiting agent (--agent STAFF)")
            agent = crm.db.principal.staff_id
        a = settings.staff_by_ref(crm, agent)
        when = at or crm.now()
        if when > crm.now():
            raise ValidationError(f"visit time {when:%Y-%m-%d %H:%M} is in the future")
        note = (note or "").strip()
        if len(note) > 2000:
            raise ValidationError("visit note: at most 2000 characters")
        interaction = crm.records.add_interaction(
            c.id,
            "visit",
            note or f"visit by agent {a.key}",
            at=when,
            staff=a.id,
            data={"insurance": "visit"},
            source=NAME,
        )
        res = crm.db.execute(
            visits.insert().values(
                customer_id=c.id,
                agent_id=a.id,
                visited_at=when,
                note=note,
                status="pending",
                interaction_id=interaction.id,
                created_at=crm.now(),
            )
        )
        return visit_view(crm, _visit(crm, res.inserted_primary_key[0]), {a.id: a.key})


def _visit(crm: Any, visit_id: int) -> Any:
    return crm.db.execute(select(visits).where(visits.c.id == visit_id)).one()


def visit_view(crm: Any, row: Any, keys: dict[int, str] | None = None) -> dict[str, Any]:
    keys = keys if keys is not None else {s.id: s.key for s in crm.staff.list()}
    status = row.status
    if status == "pending" and row.visited_at + settings.window(crm) < crm.now():
        status = "expired"
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "agent": keys.get(row.agent_id),
        "visited_at": row.visited_at,
        "status": status,
        "note": row.note,
        "reply_at": row.reply_at,
        "reply_phone": show_phone(crm, row.reply_phone),
        "reply_text": row.reply_text,
        "score": row.score,
    }


def list_visits(
    crm: Any, *, customer: Any = None, agent: Any = None, status: str | None = None
) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        settings.require(crm, "read", "list visits")
        stmt = select(visits).order_by(visits.c.visited_at, visits.c.id)
        if customer is not None:
            stmt = stmt.where(visits.c.customer_id == crm.customers.get(customer).id)
        if agent is not None:
            stmt = stmt.where(visits.c.agent_id == crm.staff.get(agent).id)
        keys = {s.id: s.key for s in crm.staff.list()}
        out = [visit_view(crm, r, keys) for r in crm.db.execute(stmt)]
        if status is not None:
            settings.check_choice(status, ("pending", "verified", "expired"), "visit status")
            out = [v for v in out if v["status"] == status]
        return out


def show_visit(crm: Any, visit_id: int) -> dict[str, Any]:
    """One visit (of a customer the caller may see) and whether the customer's SMS
    verified it; another rep's visit is not found, as a missing one."""
    with crm.transaction(write=False):
        settings.require(crm, "read", "show a visit")
        row = crm.db.execute(select(visits).where(visits.c.id == visit_id)).first()
        if row is None:
            raise NotFound(f"visit {visit_id} not found")
        return visit_view(crm, row)


def list_replies(crm: Any, *, matched: bool | None = None) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        settings.require(crm, "read", "list SMS replies")
        stmt = select(replies).order_by(replies.c.received_at, replies.c.id)
        if matched is not None:
            stmt = stmt.where(replies.c.matched.is_(matched))
        return [
            {
                "id": r.id,
                "message_id": r.inbound_message_id,
                "customer_id": r.customer_id,
                "from": show_phone(crm, r.from_address),
                "text": r.text,
                "received_at": r.received_at,
                "matched": bool(r.matched),
                "visit_id": r.visit_id,
                "reason": r.reason,
                "detail": r.detail,
                "score": r.score,
            }
            for r in crm.db.execute(stmt)
        ]


def _senders(crm: Any, phone: str) -> list[int]:
    """Customers with this (E.164) number on record: main phone or a phone contact point."""
    by_phone = select(live_customers.c.id.label("cid")).where(live_customers.c.phone == phone)
    by_contact = select(contact_points.c.customer_id.label("cid")).where(
        contact_points.c.kind == "phone", contact_points.c.value == phone
    )
    rows = crm.db.execute(union(by_phone, by_contact)).all()
    return sorted({r.cid for r in rows})


def route_inbound(crm: Any, message: Any) -> str | None:
    """The ``crm_route_inbound`` hook: verify a visit, or store why not."""
    if message.channel != "sms":
        return None
    phone, text, at = message.from_address, message.text, message.received_at
    score = parse_score(text)
    senders = _senders(crm, phone)
    v = visits
    match = None
    if senders:
        match = crm.db.execute(
            select(v)
            .where(
                v.c.customer_id.in_(senders),
                v.c.status == "pending",
                v.c.visited_at <= at,
                v.c.visited_at >= at - settings.window(crm),
            )
            .order_by(desc(v.c.visited_at), desc(v.c.id))
            .limit(1)
        ).first()
    if match is not None:
        done = crm.db.execute(
            update(v)
            .where(v.c.id == match.id, v.c.status == "pending")
            .values(status="verified", reply_at=at, reply_phone=phone, reply_text=text, score=score)
        ).rowcount
        if done == 1:
            res = crm.db.execute(
                replies.insert().values(
                    inbound_message_id=message.id,
                    customer_id=match.customer_id,
                    from_address=phone,
                    text=text,
                    received_at=at,
                    matched=True,
                    visit_id=match.id,
                    reason="verified",
                    detail=f"visit {match.id} verified",
                    score=score,
                )
            )
            crm.db.execute(
                update(v).where(v.c.id == match.id).values(reply_id=res.inserted_primary_key[0])
            )
            rated = f", score {score} ({LABELS[score]})" if score else ", no score"
            crm.records.add_timeline_entry(
                match.customer_id,
                "insurance.visit_verified",
                f"visit {match.id} verified by the customer's SMS{rated}",
                at=at,
                data={"visit_id": match.id, "message_id": message.id, "score": score},
                source=NAME,
            )
            return f"insurance: verified visit {match.id}{rated}"
        # verified by a concurrent reply in the meantime: this one is a duplicate

    last = None
    if senders:
        last = crm.db.execute(
            select(v)
            .where(v.c.customer_id.in_(senders), v.c.visited_at <= at)
            .order_by(desc(v.c.visited_at), desc(v.c.id))
            .limit(1)
        ).first()
    if last is None and score is None:
        return None  # not a visit reply: leave it to others
    hours = settings.config(crm)["visit_window_hours"]
    if not senders:
        reason, detail = "unknown_number", "the number is not on any customer's record"
    elif last is None:
        reason = "no_visit"
        detail = f"the number belongs to customer {senders[0]}, who has no visit to verify"
    elif last.status == "verified":
        reason = "duplicate"
        detail = f"visit {last.id} was already verified at {last.reply_at:%Y-%m-%d %H:%M}"
    else:
        late_by = at - last.visited_at
        reason = "late"
        detail = (
            f"visit {last.id} was {late_by.total_seconds() / 3600:.1f} h earlier; "
            f"the window is {hours:g} h"
        )
    crm.db.execute(
        replies.insert().values(
            inbound_message_id=message.id,
            customer_id=last.customer_id if last is not None else (senders[0] if senders else None),
            from_address=phone,
            text=text,
            received_at=at,
            matched=False,
            visit_id=last.id if last is not None else None,
            reason=reason,
            detail=detail,
            score=score,
        )
    )
    return f"insurance: reply not matched ({reason}): {detail}"
