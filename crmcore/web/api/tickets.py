"""Tickets (open, move, list by queue: a workflow state) and reminders (add,
due, done)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field
from sqlalchemy import select

from crmcore.schema import tickets
from crmcore.services import rows as _rows
from crmcore.web.api.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Id,
    Page,
    PathId,
    Strict,
    decode_cursor,
    encode_cursor,
    plain,
    project,
    with_etag,
)
from crmcore.web.api.records import _naive
from crmcore.web.deps import request_crm

router = APIRouter(tags=["tickets"])
Crm = Depends(request_crm)


class TicketIn(Strict):
    """A new ticket about a customer."""

    customer: Id
    subject: str = Field(min_length=1, max_length=500)
    kind: str = Field(default="complaint", max_length=64)
    workflow: str = Field(default="default", max_length=64)
    owner: str | None = Field(default=None, max_length=64, description="staff key")
    due_at: dt.datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class TicketMoveIn(Strict):
    """A move to another state of the ticket's workflow."""

    state: str = Field(min_length=1, max_length=64)
    owner: str | None = Field(default=None, max_length=64)
    due_at: dt.datetime | None = None
    note: str | None = Field(default=None, max_length=2000)


class ReminderIn(Strict):
    """A reminder for a member of staff (default: the caller)."""

    text: str = Field(min_length=1, max_length=2000)
    due_at: dt.datetime
    staff: str | None = Field(default=None, max_length=64)
    customer: Id | None = None


class ReminderDone(Strict):
    """What came of it."""

    outcome: str | None = Field(default=None, max_length=2000)


@router.post("/tickets", status_code=201)
def open_ticket(body: TicketIn, response: Response, crm: Any = Crm) -> dict[str, Any]:
    """Open a ticket in the first state of its workflow."""
    t = crm.tickets.open(
        body.customer,
        body.subject,
        kind=body.kind,
        workflow=body.workflow,
        owner=body.owner,
        due_at=_naive(body.due_at),
        data=body.data,
    )
    response.headers["Location"] = f"/api/v1/tickets/{t.id}"
    return with_etag(response, plain(crm, t))


@router.get("/tickets", response_model=Page)
def list_tickets(
    crm: Any = Crm,
    queue: str | None = Query(default=None, max_length=64, description="a workflow state"),
    kind: str | None = Query(default=None, max_length=64),
    customer: Id | None = None,
    open_only: bool = False,
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=200),
    fields: str | None = Query(default=None, max_length=500),
) -> dict[str, Any]:
    """The tickets the caller may see, by id, one page at a time."""
    after = decode_cursor(cursor)
    with crm.transaction(write=False):
        stmt = select(tickets).order_by(tickets.c.id).limit(limit + 1)
        if customer is not None:
            stmt = stmt.where(tickets.c.customer_id == crm.customers.get(customer).id)
        if queue is not None:
            stmt = stmt.where(tickets.c.state == queue)
        if kind is not None:
            stmt = stmt.where(tickets.c.kind == kind)
        if open_only:
            stmt = stmt.where(tickets.c.closed_at.is_(None))
        if after is not None:
            stmt = stmt.where(tickets.c.id > after[0])
        rows = crm.db.execute(stmt).all()
    found = [_rows.ticket(r) for r in rows[:limit]]
    return {
        "items": project(plain(crm, found), fields),
        "next_cursor": encode_cursor([found[-1].id]) if len(rows) > limit else None,
    }


@router.get("/tickets/{ticket_id}")
def get_ticket(ticket_id: PathId, response: Response, crm: Any = Crm) -> dict[str, Any]:
    """One ticket."""
    return with_etag(response, plain(crm, crm.tickets.get(ticket_id)))


@router.post("/tickets/{ticket_id}/move")
def move_ticket(
    ticket_id: PathId, body: TicketMoveIn, response: Response, crm: Any = Crm
) -> dict[str, Any]:
    """Move a ticket to another state (as its workflow allows)."""
    t = crm.tickets.move(
        ticket_id, body.state, owner=body.owner, due_at=_naive(body.due_at), note=body.note
    )
    return with_etag(response, plain(crm, t))


@router.get("/tickets/{ticket_id}/history")
def ticket_history(ticket_id: PathId, crm: Any = Crm) -> list[Any]:
    """The ticket's moves, oldest first."""
    return list(plain(crm, crm.tickets.history(ticket_id)))


@router.post("/reminders", status_code=201)
def add_reminder(body: ReminderIn, crm: Any = Crm) -> dict[str, Any]:
    """Add a reminder."""
    staff = body.staff
    if staff is None:
        me = crm.staff.acting_principal()
        staff = me.key if me is not None else None
    r = crm.tickets.add_reminder(staff, body.text, _naive(body.due_at), customer=body.customer)
    return dict(plain(crm, r))


@router.get("/reminders/due")
def due_reminders(
    crm: Any = Crm,
    at: dt.datetime | None = None,
    staff: str | None = Query(default=None, max_length=64),
) -> list[Any]:
    """Open reminders due by ``at`` (default now)."""
    return list(plain(crm, crm.tickets.due_reminders(at=_naive(at), staff=staff)))


@router.post("/reminders/{reminder_id}/done")
def complete_reminder(reminder_id: PathId, body: ReminderDone, crm: Any = Crm) -> dict[str, Any]:
    """Mark a reminder done."""
    return dict(plain(crm, crm.tickets.complete_reminder(reminder_id, outcome=body.outcome)))
