"""Scheduled jobs: escalate late requests, remind sales staff of their buyers.

Both select the rows due in one statement and are idempotent for the same
``at``: escalation levels only rise, and every reminder has a key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select, update

from crmcore import Job
from crmcore.schema import customers, relationships, staff

from . import NAME
from .places import BUYER_ROLES, unit_path
from .requests import OPEN_WORK, _place
from .settings import settings
from .tables import requests, teams, unit_owners, units


def escalate(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Level 1 when a request's deadline passes with work outstanding: a reminder
    for the team leader's supervisor (else management). Level 2 when it is still
    outstanding ``second_escalation_after_hours`` later: management. A reopened
    request starts again at level 0 with its new deadline."""
    s = settings(crm)
    second = at - s.second_escalation_after
    leader = staff.alias("leader")
    rows = crm.db.execute(
        select(requests, leader.c.supervisor_id, customers.c.name)
        .join(customers, customers.c.id == requests.c.customer_id)
        .outerjoin(teams, teams.c.id == requests.c.team_id)
        .outerjoin(leader, leader.c.id == teams.c.leader_id)
        .where(
            requests.c.state.in_(OPEN_WORK),
            or_(
                and_(requests.c.escalation_level < 1, requests.c.deadline_at < at),
                and_(requests.c.escalation_level < 2, requests.c.deadline_at <= second),
            ),
        )
        .order_by(requests.c.id)
    ).all()
    done = []
    for r in rows:
        level = 2 if r.deadline_at <= second else 1
        targets: list[Any] = list(s.management_staff)
        if level == 1 and r.supervisor_id is not None:
            targets = [r.supervisor_id]
        late = at - r.deadline_at
        hours = int(late.total_seconds() // 3600)
        text = (
            f"escalation level {level}: request {r.id} ({r.category} at {_place(crm, r)}, "
            f"{r.name}) is {hours} h past its deadline {r.deadline_at:%Y-%m-%d %H:%M}, "
            f"still {r.state}"
        )
        for who in targets:
            person = crm.staff.get(who)
            if person.active:
                crm.tickets.add_reminder(
                    person,
                    text,
                    at,
                    customer=r.customer_id,
                    source=NAME,
                    key=f"real_estate:escalate:{r.id}:{r.reopen_count}:{level}:{person.key}",
                )
        crm.db.execute(
            update(requests)
            .where(requests.c.id == r.id)
            .values(escalation_level=level, escalated_at=at)
        )
        crm.tickets.update(r.ticket_id, data={"escalation_level": level})
        done.append({"request": r.id, "level": level, "notified": len(targets)})
    return {"escalated": len(done), "requests": done}


def buyer_followups(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Before handover, each buyer's sales staff get a follow-up reminder every
    ``buyer_followup_days`` (counted from the purchase), and a handover
    reminder ``handover_notice_days`` before the unit's handover."""
    s = settings(crm)
    rows = crm.db.execute(
        select(unit_owners, units.c.handover_at, customers.c.name, staff.c.id.label("staff_id"))
        .join(units, units.c.id == unit_owners.c.unit_id)
        .join(customers, customers.c.id == unit_owners.c.customer_id)
        .join(
            relationships,
            and_(
                relationships.c.from_customer_id == unit_owners.c.customer_id,
                relationships.c.kind == "sales",
                relationships.c.active.is_(True),
            ),
        )
        .join(staff, and_(staff.c.id == relationships.c.to_staff_id, staff.c.active.is_(True)))
        .where(
            unit_owners.c.until.is_(None),
            unit_owners.c.role.in_(BUYER_ROLES),
            unit_owners.c.since <= at,
            or_(units.c.handover_at.is_(None), units.c.handover_at > at),
        )
        .order_by(unit_owners.c.id, staff.c.id)
    ).all()
    follow = notice = 0
    for r in rows:
        path = unit_path(crm, r.unit_id)
        when = f"{r.handover_at:%Y-%m-%d}" if r.handover_at else "not scheduled"
        period = (at - r.since).days // s.buyer_followup_days
        crm.tickets.add_reminder(
            r.staff_id,
            f"follow up buyer {r.name} of unit {path} (handover {when})",
            at,
            customer=r.customer_id,
            key=f"real_estate:buyer:{r.id}:{r.staff_id}:{period}",
            source=NAME,
        )
        follow += 1
        if r.handover_at is not None and at >= r.handover_at - s.handover_notice:
            crm.tickets.add_reminder(
                r.staff_id,
                f"handover of unit {path} to {r.name} on {when}: confirm the "
                "appointment, inspection and keys",
                at,
                customer=r.customer_id,
                source=NAME,
                key=f"real_estate:handover:{r.id}:{r.staff_id}:{r.handover_at:%Y%m%d}",
            )
            notice += 1
    return {"buyers": len(rows), "followups": follow, "handover_notices": notice}


JOBS = [
    Job(
        name="real_estate.escalate",
        run=escalate,
        schedule="every 15 minutes",
        description="escalate requests past their deadline (level 1 supervisor, 2 management)",
    ),
    Job(
        name="real_estate.buyer_followups",
        run=buyer_followups,
        schedule="0 7 * * *",
        description="remind sales staff to follow up buyers before handover",
    ),
]
