"""The real-estate HTTP routes, mounted under ``/api/v1/real_estate/`` (``crm_api_routers``).

Each route calls the service function its ``crm real-estate ...`` command calls,
with the CRM acting as the caller: another rep's customer or request answers 404
exactly like a missing one, and an incident lists only the requests the caller may
see. Imported only when the web application is built.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from crm_real_estate import requests as req
from crmcore.web.routes import CRMDep, RequestModel, listing

router = APIRouter()

RequestState = Literal["received", "dispatched", "in_progress", "completed", "revisit", "closed"]


class RepairRequest(RequestModel):
    """File a repair request or complaint (``crm real-estate request open``)."""

    customer: str = Field(min_length=1, max_length=200, description="customer id or reference")
    category: str = Field(min_length=1, max_length=64)
    channel: str = Field(min_length=1, max_length=32, description="phone, visit, fax, online")
    text: str = Field(min_length=1, max_length=4000, description="what is wrong, where")
    unit: str | None = Field(None, description="PROJECT/BUILDING/UNIT")
    building: str | None = Field(None, description="PROJECT/BUILDING, for the common parts")
    urgency: str | None = Field(None, description="emergency, urgent, normal (default normal)")
    kind: Literal["repair", "complaint"] = "repair"
    at: dt.datetime | None = Field(None, description="when it was reported (default: now)")


class DispatchRequest(RequestModel):
    """Send a received request to a maintenance team (``crm real-estate request dispatch``)."""

    team: str | None = Field(None, description="default: the team covering its category")


@router.post("/requests", status_code=201, summary="File a repair request")
def open_request(body: RepairRequest, crm: CRMDep) -> dict[str, Any]:
    """The request with its warranty decision and deadline (201)."""
    return req.open_request(
        crm,
        body.customer,
        category=body.category,
        channel=body.channel,
        text=body.text,
        unit=body.unit,
        building=body.building,
        urgency=body.urgency,
        kind=body.kind,
        at=body.at,
    )


@router.get("/requests", summary="Repair requests you may see")
def list_requests(
    crm: CRMDep,
    state: RequestState | None = None,
    open: bool = False,
    team: str | None = None,
    overdue: bool = False,
    customer: str | None = None,
) -> dict[str, Any]:
    """Requests of the customers you may see, filtered like ``request list``."""
    return listing(
        req.list_requests(
            crm, state=state, open_only=open, team=team, overdue=overdue, customer=customer
        )
    )


@router.get("/requests/{request_id}", summary="A repair request")
def show_request(request_id: int, crm: CRMDep) -> dict[str, Any]:
    """The request with its history and revisits."""
    return req.get_request(crm, request_id)


@router.post("/requests/{request_id}/dispatch", summary="Dispatch a repair request")
def dispatch_request(request_id: int, body: DispatchRequest, crm: CRMDep) -> dict[str, Any]:
    """The request, now with its team; only a received request is dispatched."""
    return req.dispatch(crm, request_id, body.team)


@router.get("/incidents", summary="Owner-rights incidents")
def list_incidents(crm: CRMDep, open: bool = False) -> dict[str, Any]:
    """Clusters of requests in one building."""
    return listing(req.list_incidents(crm, open_only=open))


@router.get("/incidents/{incident_id}", summary="An incident and its requests")
def show_incident(incident_id: int, crm: CRMDep) -> dict[str, Any]:
    """The incident and those of its requests you may see."""
    return req.get_incident(crm, incident_id)
