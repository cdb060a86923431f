"""The audit trail (auditor, admin), analytics results (the ABC/RFM labels and
any other label, counted), the outbox's state, and staff (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import func, select

from crmcore.errors import AccessDenied
from crmcore.schema import customer_labels, live_customers, messages
from crmcore.web.api.common import Id, Strict, plain
from crmcore.web.deps import request_crm

router = APIRouter(tags=["admin"])
Crm = Depends(request_crm)


class StaffIn(Strict):
    """A new member of staff."""

    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(default_factory=lambda: ["rep"], min_length=1, max_length=20)
    team: str | None = Field(default=None, max_length=64)
    supervisor: str | None = Field(default=None, max_length=64)


class LeaveIn(Strict):
    """Who takes over the departing member's customers and open work."""

    handover_to: str | None = Field(default=None, max_length=64)


@router.get("/audit")
def audit(
    crm: Any = Crm,
    customer: Id | None = None,
    entity: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[Any]:
    """Audit rows, oldest first (needs 'audit' or 'admin'; values masked without 'pii')."""
    with crm.transaction(write=False):
        return list(plain(crm, crm.admin.audit_trail(customer, entity=entity, limit=limit)))


@router.get("/analytics/labels/{name}")
def label_counts(name: str, crm: Any = Crm) -> dict[str, int]:
    """How many visible live customers carry each value of label ``name``
    (``abc``, ``rfm`` and the plugins' labels), one grouped query."""
    with crm.transaction(write=False):
        stmt = (
            select(customer_labels.c.value, func.count())
            .join(live_customers, live_customers.c.id == customer_labels.c.customer_id)
            .where(customer_labels.c.name == name[:64])
            .group_by(customer_labels.c.value)
            .order_by(customer_labels.c.value)
        )
        return {str(value): int(n) for value, n in crm.db.execute(stmt)}


@router.get("/outbox")
def outbox(
    crm: Any = Crm,
    status: str | None = Query(default=None, pattern="^(queued|sending|sent|failed)$"),
) -> dict[str, Any]:
    """The outbox's messages the caller may see, counted by state, and those of ``status``."""
    with crm.transaction(write=False):
        stmt = select(messages.c.status, func.count()).group_by(messages.c.status)
        counts = {str(state): int(n) for state, n in crm.db.execute(stmt)}
        listed = plain(crm, crm.messages.outbox(status=status)) if status else []
    return {"counts": counts, "messages": listed}


def _require_admin(crm: Any, what: str) -> None:
    me = crm.staff.acting_principal()
    if me is None or not me.can("admin"):
        raise AccessDenied(f"{me.key if me else 'nobody'} may not {what}: needs 'admin'")


@router.get("/staff")
def list_staff(crm: Any = Crm, active_only: bool = False) -> list[Any]:
    """Every member of staff (admin)."""
    _require_admin(crm, "list staff")
    return list(plain(crm, crm.staff.list(active_only=active_only)))


@router.post("/staff", status_code=201)
def add_staff(body: StaffIn, crm: Any = Crm) -> dict[str, Any]:
    """Add a member of staff (admin)."""
    _require_admin(crm, "add staff")
    made = crm.staff.add(
        body.key, body.name, roles=body.roles, team=body.team, supervisor=body.supervisor
    )
    return dict(plain(crm, made))


@router.post("/staff/{key}/leave")
def staff_leave(key: str, body: LeaveIn, crm: Any = Crm) -> dict[str, Any]:
    """A member of staff leaves, handing over to another (admin); their tokens and
    sessions stop working at once."""
    _require_admin(crm, "record a departure")
    return dict(plain(crm, crm.staff.leave(key, handover_to=body.handover_to)))
