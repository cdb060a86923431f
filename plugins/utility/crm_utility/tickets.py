"""Fast-response service tickets on the core ticket workflow.

A ticket opened in the ``utility.service`` workflow gets a response deadline and
(for types with a visit) an on-site deadline from the config, by type and area.
Moving it out of ``received`` is the response; moving it to ``on_site`` is the
arrival. The ``utility.escalate`` job escalates every missed deadline up the
owner's supervisor chain, one level per ``escalation.interval_minutes``, each
level recorded once.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, overload

from sqlalchemy import and_, case, func, or_, select, update

from crm_utility.accounts import get_point
from crm_utility.config import AREAS, NAME, TICKET_TYPES, cfg
from crm_utility.tables import escalations, service_points, service_tickets
from crmcore import TransitionError, ValidationError, Workflow

WORKFLOW = "utility.service"
SERVICE_WORKFLOW = Workflow(
    name=WORKFLOW,
    # 受理 received -> 派工 dispatched -> 到达现场 on_site -> 处理完毕 resolved -> 回访 revisit -> 归档 closed
    states=("received", "dispatched", "on_site", "resolved", "revisit", "closed"),
    transitions={
        "received": ("dispatched", "resolved"),  # an enquiry can be answered at once
        "dispatched": ("on_site", "resolved"),
        "on_site": ("resolved",),
        "resolved": ("revisit",),
        "revisit": (
            "closed",
            "dispatched",
        ),  # not satisfied on the revisit call: send the crew again
    },
    due_hours={"resolved": 72, "revisit": 24},
)
DEADLINES = ("response", "on_site")


@overload
def _minutes(spec: dict[str, Any], area: str) -> float: ...
@overload
def _minutes(spec: dict[str, Any] | None, area: str) -> float | None: ...


def _minutes(spec: dict[str, Any] | None, area: str) -> float | None:
    return None if spec is None else float(spec[area])


def on_opened(crm: Any, ticket: Any) -> None:
    """crm_ticket_opened for the utility workflow: type, area, deadlines."""
    if ticket.kind not in TICKET_TYPES:
        raise ValidationError(
            f"utility service ticket kind {ticket.kind!r}; expected one of {list(TICKET_TYPES)}"
        )
    data = ticket.data or {}
    point = None
    if data.get("meter_no"):
        point = get_point(crm, data["meter_no"])
        if point.customer_id != ticket.customer_id:
            raise ValidationError(
                f"meter {point.meter_no!r} belongs to customer {point.customer_id}, "
                f"not to customer {ticket.customer_id}"
            )
    area = data.get("area")
    if area is None and point is not None:
        area = point.area
    if area is None:
        areas = {
            r.area
            for r in crm.db.execute(
                select(service_points.c.area).where(
                    service_points.c.customer_id == ticket.customer_id
                )
            )
        }
        area = areas.pop() if len(areas) == 1 else cfg(crm)["default_area"]
    if area not in AREAS:
        raise ValidationError(f"area {area!r}; expected one of {list(AREAS)}")
    spec = cfg(crm)["deadlines"][ticket.kind]
    opened = ticket.opened_at
    response_due = opened + dt.timedelta(minutes=_minutes(spec["response_minutes"], area))
    on_site_min = _minutes(spec["on_site_minutes"], area)
    on_site_due = None if on_site_min is None else opened + dt.timedelta(minutes=on_site_min)
    crm.db.execute(
        service_tickets.insert().values(
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            service_point_id=None if point is None else point.id,
            type=ticket.kind,
            area=area,
            opened_at=opened,
            response_due=response_due,
            on_site_due=on_site_due,
        )
    )
    crm.tickets.update(ticket.id, due_at=response_due, data={"area": area})


def on_moved(crm: Any, ticket: Any, move: Any) -> None:
    """crm_ticket_moved: record response, arrival, resolution; refuse resolving
    a ticket whose type needs a visit before anyone was on site."""
    row = crm.db.execute(
        select(service_tickets).where(service_tickets.c.ticket_id == ticket.id)
    ).first()
    if row is None:
        return
    values: dict[str, Any] = {}
    to = move.to_state
    if to in ("dispatched", "resolved") and row.responded_at is None:
        values["responded_at"] = move.at
    if to == "on_site" and row.on_site_at is None:
        values["on_site_at"] = move.at
    if to == "resolved":
        if row.on_site_due is not None and row.on_site_at is None:
            raise TransitionError(
                f"ticket {ticket.id} ({row.type}): move it to on_site when the crew arrives, "
                "before resolving it"
            )
        values["resolved_at"] = move.at
    if to == "closed":
        values["closed_at"] = move.at
    if values:
        crm.db.execute(
            update(service_tickets).where(service_tickets.c.ticket_id == ticket.id).values(**values)
        )
    if to == "dispatched" and row.on_site_due is not None and row.on_site_at is None:
        crm.tickets.update(ticket.id, due_at=row.on_site_due)


def open_service_ticket(
    crm: Any,
    customer: Any,
    subject: str,
    *,
    type: str,
    meter_no: str | None = None,
    area: str | None = None,
    owner: Any = None,
    channel: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    data = {k: v for k, v in {"meter_no": meter_no, "area": area, "channel": channel}.items() if v}
    with crm.transaction(command="utility ticket open"):
        t = crm.tickets.open(
            customer, subject, kind=type, workflow=WORKFLOW, owner=owner, data=data, at=at
        )
        return service_ticket(crm, t.id)


def _json(row: Any, ticket: Any) -> dict[str, Any]:
    return {
        "ticket_id": row.ticket_id,
        "customer_id": row.customer_id,
        "type": row.type,
        "area": row.area,
        "state": ticket.state,
        "owner_id": ticket.owner_id,
        "subject": ticket.subject,
        "opened_at": row.opened_at,
        "response_due": row.response_due,
        "responded_at": row.responded_at,
        "on_site_due": row.on_site_due,
        "on_site_at": row.on_site_at,
        "resolved_at": row.resolved_at,
        "closed_at": row.closed_at,
    }


def service_ticket(crm: Any, ticket_id: Any) -> dict[str, Any]:
    with crm.transaction(write=False):
        t = crm.tickets.get(ticket_id)
        row = crm.db.execute(
            select(service_tickets).where(service_tickets.c.ticket_id == t.id)
        ).first()
        if row is None:
            raise ValidationError(
                f"ticket {t.id} is not a utility service ticket (workflow {t.workflow})"
            )
        esc = crm.db.execute(
            select(escalations).where(escalations.c.ticket_id == t.id).order_by(escalations.c.id)
        ).all()
        return _json(row, t) | {
            "escalations": [
                {"deadline": e.deadline, "level": e.level, "to_staff_id": e.to_staff_id, "at": e.at}
                for e in esc
            ]
        }


def move_service_ticket(
    crm: Any,
    ticket_id: Any,
    to_state: str,
    *,
    note: str | None = None,
    owner: Any = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Move a service ticket one step (the core's ``crm ticket move``), refusing a
    ticket of another workflow; the ticket with its deadlines afterwards."""
    with crm.transaction(command="utility ticket move"):
        service_ticket(crm, ticket_id)
        t = crm.tickets.move(ticket_id, to_state, note=note, owner=owner, at=at)
        return service_ticket(crm, t.id)


def list_service_tickets(
    crm: Any, *, open_only: bool = False, type: str | None = None
) -> list[dict]:
    with crm.transaction(write=False):
        stmt = select(service_tickets).order_by(service_tickets.c.ticket_id)
        if open_only:
            stmt = stmt.where(service_tickets.c.closed_at.is_(None))
        if type is not None:
            stmt = stmt.where(service_tickets.c.type == type)
        return [_json(r, crm.tickets.get(r.ticket_id)) for r in crm.db.execute(stmt)]


# -- escalation -------------------------------------------------------------------
def _supervisor_chain(crm: Any, staff_id: int | None, levels: int) -> list[Any]:
    """The owner's supervisor, theirs, ... (departed members are passed over)."""
    from crmcore.schema import staff

    chain: list[Any] = []
    seen: set[int] = set()
    current = staff_id
    while current is not None and len(chain) < levels and current not in seen:
        seen.add(current)
        row = crm.db.execute(select(staff).where(staff.c.id == current)).first()
        if row is None or row.supervisor_id is None:
            break
        sup = crm.db.execute(select(staff).where(staff.c.id == row.supervisor_id)).first()
        if sup is None:
            break
        if sup.active:
            chain.append(sup)
        current = sup.id
    return chain


def escalate(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The ``utility.escalate`` job: escalate every open utility ticket past a
    deadline; level n is due ``(n - 1) * interval_minutes`` after the deadline.
    Levels are recorded in order and once (idempotent for the same ``at``)."""
    from crmcore.schema import tickets

    esc_cfg = cfg(crm)["escalation"]
    interval = dt.timedelta(minutes=esc_cfg["interval_minutes"])
    st = service_tickets
    overdue = (
        select(st, tickets.c.owner_id, tickets.c.subject)
        .join(tickets, tickets.c.id == st.c.ticket_id)
        .where(
            tickets.c.closed_at.is_(None),
            st.c.resolved_at.is_(None),
            or_(
                and_(st.c.responded_at.is_(None), st.c.response_due < at),
                and_(
                    st.c.on_site_due.is_not(None), st.c.on_site_at.is_(None), st.c.on_site_due < at
                ),
            ),
        )
        .order_by(st.c.ticket_id)
    )
    recorded, unassigned = [], []
    for row in crm.db.execute(overdue).all():
        done = {
            (e.deadline, e.level)
            for e in crm.db.execute(
                select(escalations.c.deadline, escalations.c.level).where(
                    escalations.c.ticket_id == row.ticket_id
                )
            )
        }
        chain = _supervisor_chain(crm, row.owner_id, esc_cfg["max_levels"])
        for deadline, due, met in (
            ("response", row.response_due, row.responded_at),
            ("on_site", row.on_site_due, row.on_site_at),
        ):
            if due is None or met is not None or due >= at:
                continue
            target = min(esc_cfg["max_levels"], 1 + math.floor((at - due) / interval))
            for level in range(1, target + 1):
                if (deadline, level) in done:
                    continue
                if level > len(chain):
                    unassigned.append(
                        {"ticket_id": row.ticket_id, "deadline": deadline, "level": level}
                    )
                    break
                boss = chain[level - 1]
                crm.db.execute(
                    escalations.insert().values(
                        ticket_id=row.ticket_id,
                        customer_id=row.customer_id,
                        deadline=deadline,
                        level=level,
                        due_at=due,
                        to_staff_id=boss.id,
                        at=at,
                    )
                )
                late = int((at - due).total_seconds() // 60)
                crm.tickets.add_reminder(
                    boss.id,
                    f"escalation level {level}: {row.type} ticket {row.ticket_id} missed its "
                    f"{deadline.replace('_', '-')} deadline {due:%Y-%m-%d %H:%M} by {late} min: {row.subject}",
                    at,
                    customer=row.customer_id,
                    key=f"utility:escalate:{row.ticket_id}:{deadline}:{level}",
                    source=NAME,
                )
                recorded.append(
                    {
                        "ticket_id": row.ticket_id,
                        "deadline": deadline,
                        "level": level,
                        "to": boss.key,
                    }
                )
    return {"escalated": len(recorded), "escalations": recorded, "no_higher_level": unassigned}


# -- compliance --------------------------------------------------------------------
def compliance(
    crm: Any, start: dt.date, end: dt.date, *, as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """Deadline compliance of utility tickets opened from ``start`` to ``end``
    (inclusive), per type. A deadline is met when the step happened by it,
    missed when it happened late or is still pending past it, else pending."""
    if end < start:
        raise ValidationError(f"period: {end} is before {start}")
    with crm.transaction(write=False):
        as_of = as_of or crm.now()
        st = service_tickets
        lo = dt.datetime.combine(start, dt.time())
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())

        def counts(done: Any, due: Any) -> list[Any]:
            met = func.sum(
                case((and_(due.is_not(None), done.is_not(None), done <= due), 1), else_=0)
            )
            missed = func.sum(
                case(
                    (and_(due.is_not(None), or_(done > due, and_(done.is_(None), due < as_of))), 1),
                    else_=0,
                )
            )
            pending = func.sum(
                case((and_(due.is_not(None), done.is_(None), due >= as_of), 1), else_=0)
            )
            return [met, missed, pending]

        stmt = (
            select(
                st.c.type,
                func.count(),
                *counts(st.c.responded_at, st.c.response_due),
                *counts(st.c.on_site_at, st.c.on_site_due),
            )
            .where(st.c.opened_at >= lo, st.c.opened_at < hi)
            .group_by(st.c.type)
            .order_by(st.c.type)
        )
        by_type: dict[str, Any] = {}
        for r in crm.db.execute(stmt):
            entry: dict[str, Any] = {"tickets": int(r[1])}
            for i, name in ((2, "response"), (5, "on_site")):
                met, missed, pending = (int(r[i] or 0), int(r[i + 1] or 0), int(r[i + 2] or 0))
                decided = met + missed
                entry[name] = {
                    "met": met,
                    "missed": missed,
                    "pending": pending,
                    "rate": None if decided == 0 else round(met / decided, 4),
                }
            by_type[r[0]] = entry
        esc = crm.db.execute(
            select(st.c.type, func.count())
            .select_from(escalations.join(st, st.c.ticket_id == escalations.c.ticket_id))
            .where(st.c.opened_at >= lo, st.c.opened_at < hi)
            .group_by(st.c.type)
        ).all()
        for t, n in esc:
            by_type[t]["escalations"] = int(n)
        for entry in by_type.values():
            entry.setdefault("escalations", 0)
        return {"from": start.isoformat(), "to": end.isoformat(), "as_of": as_of, "types": by_type}
