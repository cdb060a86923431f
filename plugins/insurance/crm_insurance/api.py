"""The insurance HTTP routes, mounted under ``/api/v1/insurance/`` (``crm_api_routers``).

Each route calls the service function its ``crm insurance ...`` command calls, with
the CRM acting as the caller: another agent's customer or visit answers 404 exactly
like a missing one. A visit is verified by the customer's own satisfaction SMS
(handed in by the SMS gateway through the core's inbound route), never by the agent:
``/visits/{id}`` shows whether it was, ``/replies`` why each reply did or did not
verify one. Imported only when the web application is built.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from crm_insurance import orphans, visits
from crmcore.web.routes import CRMDep, RequestModel, listing

router = APIRouter()

VisitStatus = Literal["pending", "verified", "expired"]


class VisitRequest(RequestModel):
    """Record a visit (``crm insurance visit add``)."""

    customer: str = Field(min_length=1, max_length=200, description="customer id or reference")
    agent: str | None = Field(None, description="the visiting agent's staff key (default: you)")
    at: dt.datetime | None = Field(None, description="when the visit took place (default: now)")
    note: str = Field("", max_length=2000)


class ReassignRequest(RequestModel):
    """Give orphan customers a new agent (``crm insurance orphans reassign``)."""

    customers: list[str] = Field(default_factory=list, max_length=10_000)
    all: bool = Field(False, description="every orphan customer (instead of a list)")
    to: str | None = Field(None, description="new agent (default: least loaded in the team)")


@router.post("/visits", status_code=201, summary="Record an agent's visit")
def record_visit(body: VisitRequest, crm: CRMDep) -> dict[str, Any]:
    """The visit, pending until the customer's satisfaction SMS verifies it (201)."""
    return visits.record_visit(crm, body.customer, agent=body.agent, at=body.at, note=body.note)


@router.get("/visits", summary="Visits you may see")
def list_visits(
    crm: CRMDep,
    customer: str | None = None,
    agent: str | None = None,
    status: VisitStatus | None = None,
) -> dict[str, Any]:
    """Visits oldest first, of one customer or agent, or in one status."""
    return listing(visits.list_visits(crm, customer=customer, agent=agent, status=status))


@router.get("/visits/{visit_id}", summary="A visit and its verification")
def show_visit(visit_id: int, crm: CRMDep) -> dict[str, Any]:
    """The visit, its status and the verifying reply (time, number, text, score)."""
    return visits.show_visit(crm, visit_id)


@router.get("/replies", summary="Satisfaction SMS replies and their effect")
def list_replies(crm: CRMDep, matched: bool | None = None) -> dict[str, Any]:
    """Replies considered, each with the visit it verified or why it did not."""
    return listing(visits.list_replies(crm, matched=matched))


@router.get("/orphans", summary="Orphan customers")
def list_orphans(crm: CRMDep) -> dict[str, Any]:
    """Customers all of whose policies' agents have departed, and since when."""
    return listing(orphans.list_orphans(crm))


@router.post("/orphans/reassignments", status_code=201, summary="Reassign orphan customers")
def reassign_orphans(body: ReassignRequest, crm: CRMDep) -> dict[str, Any]:
    """Each customer's new agent and first-visit reminder (201); all or nothing."""
    return listing(orphans.reassign(crm, body.customers, to=body.to, all_=body.all))
