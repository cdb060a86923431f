"""The after-sales centre: repair and complaint requests as core tickets.

A request is a ticket in the ``real_estate.repair`` workflow::

    received -> dispatched -> in_progress -> completed -> revisit -> closed
                    ^                                        |
                    +------------- reopen -------------------+

The plugin's ``crm_ticket_moved`` hook keeps the request row in step with its
ticket (so ``crm ticket move`` works too) and enforces the rules: a request is
dispatched only to a team, a reopened request goes back to the same team with a
new deadline and counts against it, and a request closes only after an owner
revisit that found it fixed.

Longer than most modules: the request workflow's rules read each other's state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select, update

from crmcore import Conflict, NotFound, TransitionError, ValidationError, Workflow
from crmcore.parse import clean_text
from crmcore.schema import customers, staff

from . import NAME
from .places import building_path, building_row, team_row, unit_path, unit_row
from .settings import Settings, settings
from .tables import (
    buildings,
    incident_requests,
    incidents,
    projects,
    requests,
    revisits,
    teams,
    unit_owners,
    units,
)
from .warranty import classify

WORKFLOW = "real_estate.repair"
STATES = ("received", "dispatched", "in_progress", "completed", "revisit", "closed")
OPEN_WORK = ("received", "dispatched", "in_progress")  # work outstanding: the deadline runs
KINDS = ("repair", "complaint")
SATISFACTION = range(1, 6)

REPAIR_WORKFLOW = Workflow(
    name=WORKFLOW,
    states=STATES,
    transitions={
        "received": ("dispatched",),
        "dispatched": ("in_progress",),
        "in_progress": ("completed",),
        "completed": ("revisit",),
        "revisit": ("closed", "dispatched"),  # closed when fixed, else reopened
    },
)


def _request_row(crm: Any, request_id: Any) -> Any:
    try:
        rid = int(request_id)
    except (TypeError, ValueError):
        raise NotFound(f"request {request_id!r}: expected a request number") from None
    row = crm.db.execute(select(requests).where(requests.c.id == rid)).first()
    if row is None:
        raise NotFound(f"request {rid} not found")
    return row


def _place(crm: Any, row: Any) -> str:
    if row.unit_id is not None:
        return unit_path(crm, row.unit_id)
    return f"{building_path(crm, row.building_id)} (common parts)"


def request_dict(crm: Any, rid: int) -> dict[str, Any]:
    stmt = (
        select(
            requests,
            customers.c.name.label("customer"),
            teams.c.code.label("team"),
            incident_requests.c.incident_id,
        )
        .join(customers, customers.c.id == requests.c.customer_id)
        .outerjoin(teams, teams.c.id == requests.c.team_id)
        .outerjoin(incident_requests, incident_requests.c.request_id == requests.c.id)
        .where(requests.c.id == rid)
    )
    r = crm.db.execute(stmt).one()
    return {
        "id": r.id,
        "ticket_id": r.ticket_id,
        "customer_id": r.customer_id,
        "customer": r.customer,
        "place": _place(crm, r),
        "kind": r.kind,
        "category": r.category,
        "channel": r.channel,
        "urgency": r.urgency,
        "description": r.description,
        "state": r.state,
        "reported_at": r.reported_at,
        "warranty": r.warranty,
        "warranty_reason": r.warranty_reason,
        "warranty_until": r.warranty_until,
        "team": r.team,
        "dispatched_at": r.dispatched_at,
        "deadline_at": r.deadline_at,
        "completed_at": r.completed_at,
        "on_time": r.on_time,
        "escalation_level": r.escalation_level,
        "reopen_count": r.reopen_count,
        "satisfaction": r.satisfaction,
        "closed_at": r.closed_at,
        "incident_id": r.incident_id,
    }


# -- warranty ------------------------------------------------------------------------------
def _handover_of(crm: Any, unit_id: int | None, building_id: int) -> dt.datetime | None:
    if unit_id is not None:
        return crm.db.execute(select(units.c.handover_at).where(units.c.id == unit_id)).scalar()
    b = crm.db.execute(
        select(buildings.c.handover_at).where(buildings.c.id == building_id)
    ).scalar()
    if b is not None:
        return b
    return crm.db.execute(  # common parts: from the building's first unit handover
        select(func.min(units.c.handover_at)).where(units.c.building_id == building_id)
    ).scalar()


def _design_life(crm: Any, s: Settings, building_id: int) -> int:
    years = crm.db.execute(
        select(projects.c.design_life_years)
        .join(buildings, buildings.c.project_id == projects.c.id)
        .where(buildings.c.id == building_id)
    ).scalar()
    return years or s.design_life_years


def check_warranty(
    crm: Any,
    category: str,
    *,
    unit: Any = None,
    building: Any = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Classify a defect of ``category`` at a unit (or common parts) without filing it."""
    with crm.transaction(write=False):
        s = settings(crm)
        unit_id, building_id, place = _locate(crm, unit, building)
        c = _classify(crm, s, category, unit_id, building_id, place, at or crm.now())
        return {
            "category": category,
            "place": place,
            "at": at or crm.now(),
            "warranty": c.status,
            "reason": c.reason,
            "until": c.until,
        }


def _classify(
    crm: Any,
    s: Settings,
    category: str,
    unit_id: int | None,
    building_id: int,
    place: str,
    at: dt.datetime,
) -> Any:
    if category not in s.categories:
        raise ValidationError(f"category {category!r}: expected one of {', '.join(s.categories)}")
    return classify(
        category=category,
        spec=s.categories[category],
        handover_at=_handover_of(crm, unit_id, building_id),
        reported_at=at,
        design_life_years=_design_life(crm, s, building_id),
        seasons=s.seasons,
        place=place,
    )


def _locate(crm: Any, unit: Any, building: Any) -> tuple[int | None, int, str]:
    if (unit is None) == (building is None):
        raise ValidationError(
            "give exactly one of: a unit (PROJECT/BUILDING/UNIT), "
            "a building for its common parts (PROJECT/BUILDING)"
        )
    if unit is not None:
        u = unit_row(crm, unit)
        return u.id, u.building_id, unit_path(crm, u.id)
    b = building_row(crm, building)
    return None, b.id, f"{building_path(crm, b.id)} (common parts)"


def set_warranty(crm: Any, request_id: Any, status: str, reason: str) -> dict[str, Any]:
    """Override the classification (e.g. damage caused by the owner's renovation)."""
    with crm.transaction(command="real-estate request warranty"):
        if status not in ("in", "out", "n/a"):
            raise ValidationError(f"warranty {status!r}: expected in, out or n/a")
        reason = (
            clean_text(reason, field="--reason", max_len=2000, multiline=True, required=False) or ""
        )
        if not reason:
            raise ValidationError("a warranty override needs a --reason")
        r = _request_row(crm, request_id)
        text = f"set by {crm.principal.key}: {reason} (was {r.warranty}: {r.warranty_reason})"
        crm.db.execute(
            update(requests)
            .where(requests.c.id == r.id)
            .values(warranty=status, warranty_reason=text, warranty_overridden=True)
        )
        crm.records.add_timeline_entry(
            r.customer_id,
            "real_estate.warranty",
            f"request {r.id}: warranty {status}, {text}",
            data={"request_id": r.id},
            source=NAME,
        )
        return request_dict(crm, r.id)


# -- intake --------------------------------------------------------------------------------
def open_request(
    crm: Any,
    customer: Any,
    *,
    category: str,
    channel: str,
    text: str,
    unit: Any = None,
    building: Any = None,
    urgency: str | None = None,
    kind: str = "repair",
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """File a repair request or complaint from any channel for a customer linked
    to the unit (or, for common parts, to a unit in the building)."""
    with crm.transaction(command="real-estate request open"):
        s = settings(crm)
        if kind not in KINDS:
            raise ValidationError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        if channel not in s.channels:
            raise ValidationError(f"channel {channel!r}: expected one of {', '.join(s.channels)}")
        urgency = urgency or s.default_urgency
        if urgency not in s.deadline_hours:
            raise ValidationError(
                f"urgency {urgency!r}: expected one of {', '.join(s.deadline_hours)}"
            )
        text = (
            clean_text(text, field="request text", max_len=4000, multiline=True, required=False)
            or ""
        )
        if not text:
            raise ValidationError("request text: required (what is wrong, where)")
        if category not in s.categories:
            raise ValidationError(
                f"category {category!r}: expected one of {', '.join(s.categories)}"
            )
        c = crm.customers.get(customer)
        unit_id, building_id, place = _locate(crm, unit, building)
        when = at or crm.now()
        _require_link(crm, c, unit_id, building_id, place, when)
        cls = _classify(crm, s, category, unit_id, building_id, place, when)
        deadline = when + dt.timedelta(hours=s.deadline_hours[urgency])
        team = _team_for_request(crm, category, building_id) if s.auto_dispatch else None
        ticket = crm.tickets.open(
            c,
            f"{kind} {category} at {place} ({channel}): {text}",
            kind=kind,
            workflow=WORKFLOW,
            due_at=deadline,
            source=NAME,
            at=when,
            data={"real_estate_request": True, "category": category, "place": place},
        )
        res = crm.db.execute(
            requests.insert().values(
                ticket_id=ticket.id,
                customer_id=c.id,
                unit_id=unit_id,
                building_id=building_id,
                kind=kind,
                category=category,
                channel=channel,
                urgency=urgency,
                description=text,
                state=ticket.state,
                reported_at=when,
                warranty=cls.status,
                warranty_reason=cls.reason,
                warranty_until=cls.until,
                warranty_overridden=False,
                deadline_at=deadline,
                team_id=team.id if team is not None else None,
                escalation_level=0,
                reopen_count=0,
            )
        )
        rid = res.inserted_primary_key[0]
        crm.records.add_timeline_entry(
            c,
            "real_estate.warranty",
            f"request {rid}: {cls.reason}",
            at=when,
            data={"request_id": rid, "warranty": cls.status},
            source=NAME,
        )
        crm.messages.enqueue(
            "sms",
            customer=c,
            template="real_estate.received",
            key=f"real_estate:received:{rid}",
            values={"name": c.name, "ref": rid, "deadline": f"{deadline:%Y-%m-%d %H:%M}"},
            source=NAME,
        )
        if team is not None:
            crm.tickets.move(
                ticket.id,
                "dispatched",
                owner=team.leader_id,
                due_at=deadline,
                note=f"dispatched to team {team.code}",
            )
        _detect_incident(crm, s, rid)
        return request_dict(crm, rid)


def _require_link(
    crm: Any, c: Any, unit_id: int | None, building_id: int, place: str, when: dt.datetime
) -> None:
    cond = [
        unit_owners.c.customer_id == c.id,
        unit_owners.c.since <= when,
        (unit_owners.c.until.is_(None)) | (unit_owners.c.until > when),
    ]
    if unit_id is not None:
        stmt = select(unit_owners.c.id).where(unit_owners.c.unit_id == unit_id, *cond)
    else:
        stmt = (
            select(unit_owners.c.id)
            .join(units, units.c.id == unit_owners.c.unit_id)
            .where(units.c.building_id == building_id, *cond)
        )
    if crm.db.execute(stmt.limit(1)).first() is None:
        raise ValidationError(
            f"customer {c.id} ({c.name}) is not an owner, co-owner or tenant of {place}: "
            "link them with 'crm real-estate owner add' first"
        )


def _team_for_request(crm: Any, category: str, building_id: int) -> Any:
    from .places import team_for

    return team_for(crm, category, building_id)


# -- dispatch and the work ---------------------------------------------------------------------
def _leader(crm: Any, team_id: int) -> Any:
    return crm.db.execute(
        select(staff).join(teams, teams.c.leader_id == staff.c.id).where(teams.c.id == team_id)
    ).one()


def _dispatch(crm: Any, rid: int, team: Any) -> None:
    r = _request_row(crm, rid)
    crm.db.execute(update(requests).where(requests.c.id == rid).values(team_id=team.id))
    crm.tickets.move(
        r.ticket_id,
        "dispatched",
        owner=team.leader_id,
        due_at=r.deadline_at,
        note=f"dispatched to team {team.code}",
    )


def dispatch(crm: Any, request_id: Any, team: Any = None) -> dict[str, Any]:
    """Dispatch a received request to ``team`` (default: the team covering its
    category and building)."""
    with crm.transaction(command="real-estate request dispatch"):
        r = _request_row(crm, request_id)
        if r.state != "received":
            raise TransitionError(
                f"request {r.id} is {r.state}, not received: only new requests are dispatched "
                "(a reopened one goes back to its team by itself)"
            )
        t = (
            team_row(crm, team)
            if team is not None
            else _team_for_request(crm, r.category, r.building_id)
        )
        if t is None:
            raise ValidationError(
                f"no maintenance team covers {r.category} in {building_path(crm, r.building_id)}: "
                f"give --team, or add a cover with 'crm real-estate team cover'"
            )
        _dispatch(crm, r.id, t)
        return request_dict(crm, r.id)


def start(crm: Any, request_id: Any, note: str | None = None) -> dict[str, Any]:
    with crm.transaction(command="real-estate request start"):
        r = _request_row(crm, request_id)
        crm.tickets.move(r.ticket_id, "in_progress", due_at=r.deadline_at, note=note)
        return request_dict(crm, r.id)


def complete(crm: Any, request_id: Any, note: str | None = None) -> dict[str, Any]:
    """The team reports the work done (a dispatched request passes through in_progress)."""
    with crm.transaction(command="real-estate request complete"):
        r = _request_row(crm, request_id)
        if r.state == "dispatched":
            crm.tickets.move(r.ticket_id, "in_progress", due_at=r.deadline_at)
        revisit_due = crm.now() + settings(crm).revisit_after  # the ticket's next due time
        crm.tickets.move(r.ticket_id, "completed", due_at=revisit_due, note=note)
        return request_dict(crm, r.id)


def revisit(
    crm: Any,
    request_id: Any,
    *,
    satisfaction: int,
    fixed: bool = True,
    note: str | None = None,
) -> dict[str, Any]:
    """Record the owner revisit after completion: satisfaction 1-5 and whether
    the defect is fixed. Fixed closes the request; not fixed reopens it to the
    same team."""
    with crm.transaction(command="real-estate request revisit"):
        if isinstance(satisfaction, bool) or satisfaction not in SATISFACTION:
            raise ValidationError(f"satisfaction {satisfaction!r}: expected 1 to 5")
        r = _request_row(crm, request_id)
        if r.state not in ("completed", "revisit"):
            raise TransitionError(
                f"request {r.id} is {r.state}: the owner revisit follows completion"
            )
        note = clean_text(note, field="--note", max_len=4000, multiline=True, required=False)
        seen = crm.db.execute(
            select(revisits.c.id).where(
                revisits.c.request_id == r.id, revisits.c.round == r.reopen_count
            )
        ).first()
        if seen is not None:
            raise Conflict(f"request {r.id}: this completion was already revisited")
        crm.db.execute(
            revisits.insert().values(
                request_id=r.id,
                customer_id=r.customer_id,
                team_id=r.team_id,
                round=r.reopen_count,
                at=crm.now(),
                satisfaction=satisfaction,
                fixed=fixed,
                note=note,
                by_staff_id=crm.principal.staff_id,
            )
        )
        crm.db.execute(
            update(requests).where(requests.c.id == r.id).values(satisfaction=satisfaction)
        )
        crm.records.add_interaction(
            r.customer_id,
            "survey",
            f"revisit of request {r.id} ({r.category} at {_place(crm, r)}): satisfaction "
            f"{satisfaction}/5, {'fixed' if fixed else 'not fixed, reopened'}"
            + (f" - {note}" if note else ""),
            channel="phone",
            data={"request_id": r.id, "satisfaction": satisfaction, "fixed": fixed},
            source=NAME,
        )
        if r.state == "completed":
            crm.tickets.move(
                r.ticket_id, "revisit", due_at=r.completed_at + settings(crm).revisit_after
            )
        crm.tickets.move(r.ticket_id, "closed" if fixed else "dispatched", note=note)
        return request_dict(crm, r.id)


# -- the ticket hooks ---------------------------------------------------------------------
def on_ticket_opened(crm: Any, ticket: Any) -> None:
    if ticket.workflow == WORKFLOW and not ticket.data.get("real_estate_request"):
        raise ValidationError(
            f"tickets in the {WORKFLOW} workflow are opened with "
            "'crm real-estate request open' (they need a unit, category and channel)"
        )


def on_ticket_moved(crm: Any, ticket: Any, move: Any) -> None:
    """Keep the request in step with its ticket and enforce the plugin's rules."""
    if ticket.workflow != WORKFLOW:
        return
    r = crm.db.execute(select(requests).where(requests.c.ticket_id == ticket.id)).first()
    if r is None:
        return
    s = settings(crm)
    now, to = move.at, move.to_state
    values: dict[str, Any] = {"state": to}
    due: dt.datetime | None = None
    owner = None
    if to == "dispatched":
        if r.team_id is None:
            raise TransitionError(
                f"request {r.id} has no maintenance team: dispatch it with "
                f"'crm real-estate request dispatch {r.id} --team TEAM'"
            )
        if move.from_state == "revisit":  # reopened: same team, new deadline, counts against it
            due = now + dt.timedelta(hours=s.deadline_hours[r.urgency])
            owner = _leader(crm, r.team_id).id
            values |= {
                "reopen_count": r.reopen_count + 1,
                "deadline_at": due,
                "escalation_level": 0,
                "escalated_at": None,
                "completed_at": None,
                "on_time": None,
            }
        else:
            values["dispatched_at"] = now
            due = r.deadline_at
    elif to == "in_progress":
        values["started_at"] = r.started_at or now
        due = r.deadline_at
    elif to == "completed":
        values |= {"completed_at": now, "on_time": now <= r.deadline_at and r.reopen_count == 0}
        due = now + s.revisit_after
        _ask_for_revisit(crm, s, r, due)
    elif to == "revisit":
        due = (r.completed_at or now) + s.revisit_after
    elif to == "closed":
        ok = crm.db.execute(
            select(revisits.c.id).where(
                revisits.c.request_id == r.id,
                revisits.c.round == r.reopen_count,
                revisits.c.fixed.is_(True),
            )
        ).first()
        if ok is None:
            raise TransitionError(
                f"request {r.id}: record the owner revisit first "
                f"('crm real-estate request revisit {r.id} --satisfaction 1-5')"
            )
        values["closed_at"] = now
    crm.db.execute(update(requests).where(requests.c.id == r.id).values(**values))
    if owner is not None or (due is not None and ticket.due_at != due):
        crm.tickets.update(ticket.id, owner=owner, due_at=due)


def _ask_for_revisit(crm: Any, s: Settings, r: Any, due: dt.datetime) -> None:
    c = crm.customers.get(r.customer_id)
    place = _place(crm, r)
    crm.messages.enqueue(
        "sms",
        customer=c,
        template="real_estate.completed",
        key=f"real_estate:completed:{r.id}:{r.reopen_count}",
        values={"name": c.name, "ref": r.id},
        source=NAME,
    )
    who = s.revisit_staff or c.owner_id
    if who is None:
        return
    crm.tickets.add_reminder(
        who,
        f"revisit {c.name} about request {r.id} ({r.category} at {place}): fixed? satisfaction 1-5",
        due,
        customer=c,
        key=f"real_estate:revisit:{r.id}:{r.reopen_count}",
        source=NAME,
    )


# -- listing -----------------------------------------------------------------------------------
def get_request(crm: Any, request_id: Any) -> dict[str, Any]:
    with crm.transaction(write=False):
        r = _request_row(crm, request_id)
        data = request_dict(crm, r.id)
        data["history"] = [
            {"from": m.from_state, "to": m.to_state, "at": m.at, "note": m.note}
            for m in crm.tickets.history(r.ticket_id)
        ]
        data["revisits"] = [
            {
                "round": v.round,
                "at": v.at,
                "satisfaction": v.satisfaction,
                "fixed": v.fixed,
                "note": v.note,
            }
            for v in crm.db.execute(
                select(revisits).where(revisits.c.request_id == r.id).order_by(revisits.c.id)
            )
        ]
        return data


def list_requests(
    crm: Any,
    *,
    state: str | None = None,
    open_only: bool = False,
    team: Any = None,
    overdue: bool = False,
    customer: Any = None,
    at: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        stmt = select(requests.c.id).order_by(requests.c.id)
        if state is not None:
            if state not in STATES:
                raise ValidationError(f"state {state!r}: expected one of {', '.join(STATES)}")
            stmt = stmt.where(requests.c.state == state)
        if open_only:
            stmt = stmt.where(requests.c.state != "closed")
        if team is not None:
            stmt = stmt.where(requests.c.team_id == team_row(crm, team).id)
        if overdue:
            stmt = stmt.where(
                and_(requests.c.state.in_(OPEN_WORK), requests.c.deadline_at < (at or crm.now()))
            )
        if customer is not None:
            stmt = stmt.where(requests.c.customer_id == crm.customers.get(customer).id)
        return [request_dict(crm, r.id) for r in crm.db.execute(stmt)]


# -- incidents (the owner-rights emergency mechanism) -------------------------------------------
def _detect_incident(crm: Any, s: Settings, rid: int) -> None:
    """N requests of one category in one building within the window raise one
    incident; later requests of that cluster join it while it is open.

    The cluster is read over the whole base (``crm.db.unscoped``, audited): it
    is a fact about the building, whoever files the request that completes it.
    Its request ids are only linked to the incident (shared working data) and
    reported to the management staff, never shown to the filing principal."""
    r = crm.db.execute(select(requests).where(requests.c.id == rid)).one()  # just filed
    open_key = f"{r.building_id}:{r.category}"
    inc = crm.db.execute(select(incidents).where(incidents.c.open_key == open_key)).first()
    if inc is not None:
        crm.db.execute(
            incident_requests.insert().values(
                incident_id=inc.id, request_id=rid, linked_at=crm.now()
            )
        )
        return
    linked = select(incident_requests.c.request_id)
    with crm.db.unscoped("real estate: requests of one building and category form an incident"):
        cluster = crm.db.execute(
            select(requests.c.id)
            .where(
                requests.c.building_id == r.building_id,
                requests.c.category == r.category,
                requests.c.reported_at > r.reported_at - s.incident_window,
                requests.c.reported_at <= r.reported_at,
                requests.c.id.not_in(linked),
            )
            .order_by(requests.c.id)
        ).all()
    if len(cluster) < s.incident_threshold:
        return
    now = crm.now()
    res = crm.db.execute(
        incidents.insert().values(
            building_id=r.building_id,
            category=r.category,
            status="open",
            open_key=open_key,
            opened_at=now,
        )
    )
    iid = res.inserted_primary_key[0]
    crm.db.insert_rows(
        incident_requests,
        [{"incident_id": iid, "request_id": c.id, "linked_at": now} for c in cluster],
        what=f"incident {iid}",
    )
    where = building_path(crm, r.building_id)
    text = (
        f"owner-rights incident {iid}: {len(cluster)} {r.category} requests in {where} "
        f"within {s.incident_window.days} days - act now"
    )
    for key in s.management_staff:
        crm.tickets.add_reminder(key, text, now, key=f"real_estate:incident:{iid}:{key}", source=NAME)
    crm.messages.emit_after_commit(
        "real_estate.incident_opened",
        {
            "incident_id": iid,
            "building": where,
            "category": r.category,
            "requests": [c.id for c in cluster],
        },
        key=f"real_estate:incident:{iid}",
        source=NAME,
    )


def incident_dict(crm: Any, row: Any) -> dict[str, Any]:
    ids = [
        x.request_id
        for x in crm.db.execute(
            select(incident_requests.c.request_id)
            .where(incident_requests.c.incident_id == row.id)
            .order_by(incident_requests.c.request_id)
        )
    ]
    return {
        "id": row.id,
        "building": building_path(crm, row.building_id),
        "category": row.category,
        "status": row.status,
        "opened_at": row.opened_at,
        "closed_at": row.closed_at,
        "note": row.note,
        "request_count": len(ids),
        "requests": ids,
    }


def list_incidents(crm: Any, *, open_only: bool = False) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        stmt = select(incidents).order_by(incidents.c.id)
        if open_only:
            stmt = stmt.where(incidents.c.status == "open")
        return [incident_dict(crm, r) for r in crm.db.execute(stmt)]


def get_incident(crm: Any, incident_id: int) -> dict[str, Any]:
    with crm.transaction(write=False):
        row = crm.db.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"incident {incident_id} not found")
        data = incident_dict(crm, row)
        data["details"] = [  # the requests this principal may see
            {
                "id": r.id,
                "customer_id": r.customer_id,
                "state": r.state,
                "reported_at": r.reported_at,
                "description": r.description,
            }
            for r in crm.db.execute(
                select(requests).where(requests.c.id.in_(data["requests"])).order_by(requests.c.id)
            )
        ]
        return data


def close_incident(crm: Any, incident_id: int, note: str) -> dict[str, Any]:
    with crm.transaction(command="real-estate incident close"):
        note = clean_text(note, field="--note", max_len=4000, multiline=True, required=False) or ""
        if not note:
            raise ValidationError("closing an incident needs a --note (what was done)")
        row = crm.db.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"incident {incident_id} not found")
        if row.status != "open":
            raise TransitionError(f"incident {incident_id} is already closed")
        crm.db.execute(
            update(incidents)
            .where(incidents.c.id == row.id)
            .values(status="closed", open_key=None, closed_at=crm.now(), note=note)
        )
        return incident_dict(
            crm, crm.db.execute(select(incidents).where(incidents.c.id == row.id)).one()
        )
