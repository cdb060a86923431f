"""The utility HTTP routes, mounted under ``/api/v1/utility/`` (``crm_api_routers``).

Each route calls the service function its ``crm utility ...`` command calls, with
the CRM acting as the caller: another rep's customer, meter or ticket answers 404
exactly like a missing one. Imported only when the web application is built.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from crm_utility import accounts, readings, tickets
from crmcore.web.routes import CRMDep, RequestModel, listing

router = APIRouter()

TicketType = Literal["fault_repair", "complaint", "enquiry", "new_connection"]
Area = Literal["urban", "rural", "remote"]
Channel = Literal["hotline", "online", "counter", "field"]


class Reading(RequestModel):
    """One interval: its start and the energy in it."""

    at: dt.datetime = Field(description="start of the interval")
    kwh: Decimal = Field(ge=0)
    kvarh: Decimal | None = Field(None, ge=0)


class ReadingsRequest(RequestModel):
    """Interval readings of one meter, stored all or nothing (``crm utility readings import``)."""

    interval: Literal[15, 60] | None = Field(None, description="minutes (default: detected)")
    readings: list[Reading] = Field(min_length=1, max_length=100_000)


class TicketRequest(RequestModel):
    """Open a fast-response service ticket (``crm utility ticket open``)."""

    customer: str = Field(min_length=1, max_length=200, description="customer id or reference")
    type: TicketType
    subject: str = Field(min_length=1, max_length=500)
    meter_no: str | None = None
    area: Area | None = Field(None, description="default: the service point's area")
    owner: str | None = Field(None, description="staff key")
    channel: Channel | None = None


class MoveRequest(RequestModel):
    """Move a service ticket one step of its workflow (``crm ticket move``)."""

    to_state: str = Field(min_length=1, max_length=32)
    note: str | None = Field(None, max_length=2000)
    owner: str | None = Field(None, description="hand it to this staff key")


class KeyRequest(RequestModel):
    """Flag a service point's customer key by hand, or back to the rules (null)."""

    key: bool | None


def _csv(body: ReadingsRequest) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at", "kwh", "kvarh"])
    for r in body.readings:
        writer.writerow([r.at.isoformat(), r.kwh, "" if r.kvarh is None else r.kvarh])
    return out.getvalue()


@router.post("/meters/{meter_no}/readings", status_code=201, summary="Record meter readings")
def record_readings(meter_no: str, body: ReadingsRequest, crm: CRMDep) -> dict[str, Any]:
    """What was stored (201); a bad reading refuses them all, naming each bad one by
    its position (line 2 is the first reading)."""
    with crm.transaction(command="utility readings import"):
        accounts.get_point(crm, meter_no)  # another rep's meter is a 404, as a missing one
        return readings.import_readings(
            crm, _csv(body), source="request", meter_no=meter_no, interval=body.interval
        )


@router.get("/meters/{meter_no}/readings", summary="Daily statistics of a meter's readings")
def list_readings(meter_no: str, start: dt.date, end: dt.date, crm: CRMDep) -> dict[str, Any]:
    """Each day with readings from ``start`` to ``end``: peak, valley, load factor, bands."""
    return listing(readings.days_stats(crm, meter_no, start, end))


@router.get("/meters/{meter_no}/readings/{day}", summary="A meter's load curve on one day")
def day_curve(meter_no: str, day: dt.date, crm: CRMDep) -> dict[str, Any]:
    """The day's readings as a curve, with its statistics."""
    return readings.day_stats(crm, meter_no, day)


@router.get("/meters", summary="Service points you may see")
def list_meters(crm: CRMDep, customer: str | None = None, key: bool = False) -> dict[str, Any]:
    """Service points, of one customer or all; ``key=true`` keeps key customers' points."""
    return listing(accounts.list_points(crm, customer, key_only=key))


@router.get("/key-customers", summary="Key customers' service points")
def key_customers(crm: CRMDep) -> dict[str, Any]:
    """The service points whose customer is key (by the rules or by hand)."""
    return listing(accounts.list_points(crm, key_only=True))


@router.put("/meters/{meter_no}/key", summary="Flag a customer key by hand")
def set_key(meter_no: str, body: KeyRequest, crm: CRMDep) -> dict[str, Any]:
    """The service point afterwards, and whether its customer is now key."""
    return accounts.set_key(crm, meter_no, body.key)


@router.post("/tickets", status_code=201, summary="Open a service ticket")
def open_ticket(body: TicketRequest, crm: CRMDep) -> dict[str, Any]:
    """The new ticket with its response and on-site deadlines (201)."""
    return tickets.open_service_ticket(
        crm,
        body.customer,
        body.subject,
        type=body.type,
        meter_no=body.meter_no,
        area=body.area,
        owner=body.owner,
        channel=body.channel,
    )


@router.get("/tickets", summary="Service tickets you may see")
def list_tickets(crm: CRMDep, open: bool = False, type: TicketType | None = None) -> dict[str, Any]:
    """Service tickets and their deadlines; ``open=true`` leaves out closed ones."""
    return listing(tickets.list_service_tickets(crm, open_only=open, type=type))


@router.get("/tickets/{ticket_id}", summary="A service ticket")
def show_ticket(ticket_id: int, crm: CRMDep) -> dict[str, Any]:
    """The ticket, its deadlines and its escalations."""
    return tickets.service_ticket(crm, ticket_id)


@router.post("/tickets/{ticket_id}/moves", status_code=201, summary="Move a service ticket")
def move_ticket(ticket_id: int, body: MoveRequest, crm: CRMDep) -> dict[str, Any]:
    """The ticket after the move (201: the move is recorded as a ticket event)."""
    return tickets.move_service_ticket(
        crm, ticket_id, body.to_state, note=body.note, owner=body.owner
    )
