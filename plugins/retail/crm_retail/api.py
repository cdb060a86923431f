"""The retail HTTP routes, mounted under ``/api/v1/retail/`` (``crm_api_routers``).

Each route calls the service function its ``crm retail ...`` command calls, with
the CRM acting as the caller: another rep's customer answers 404 exactly like a
missing one. Imported only when the web application is built.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from crm_retail import members, points
from crm_retail.settings import tier_ladder
from crmcore.web.routes import CRMDep, RequestModel, listing

router = APIRouter()

LedgerKind = Literal["accrual", "redeem", "expire", "reward"]


class JoinRequest(RequestModel):
    """Make a customer a member (``crm retail member join``)."""

    customer: str = Field(min_length=1, max_length=200, description="customer id or reference")
    member_no: str | None = Field(None, description="card number (default: prefix + id)")
    birthday: dt.date | None = None
    at: dt.datetime | None = Field(None, description="when they joined (default: now)")


class RedeemRequest(RequestModel):
    """Redeem points of a member (``crm retail points redeem``)."""

    points: int = Field(gt=0, description="how many points to redeem")
    reason: str = Field("redeemed", max_length=500)
    ref: str | None = Field(None, max_length=64, description="a unique reference (a receipt)")


@router.post("/members", status_code=201, summary="Make a customer a member")
def join_member(body: JoinRequest, crm: CRMDep) -> dict[str, Any]:
    """The new member's card, tier and points (201)."""
    return members.join(
        crm, body.customer, member_no=body.member_no, birthday=body.birthday, at=body.at
    )


@router.get("/members", summary="Members you may see")
def list_members(crm: CRMDep, tier: str | None = None) -> dict[str, Any]:
    """Members by member number, optionally of one tier."""
    return listing(members.list_members(crm, tier=tier))


@router.get("/members/{customer}", summary="A member's card, tier, points and spend")
def show_member(customer: str, crm: CRMDep) -> dict[str, Any]:
    """Card number, tier, benefits, balance, rolling spend and the way to the next tier."""
    return members.member_info(crm, customer)


@router.get("/members/{customer}/points", summary="A member's balance and points history")
def points_history(customer: str, crm: CRMDep, kind: LedgerKind | None = None) -> dict[str, Any]:
    """The balance and the ledger (earned, redeemed, expired, rewarded), oldest first;
    ``kind`` keeps one kind of entry (the balance stays the whole ledger's)."""
    data = points.ledger(crm, customer)
    if kind is not None:
        data["entries"] = [e for e in data["entries"] if e["kind"] == kind]
    return data


@router.post("/members/{customer}/redemptions", status_code=201, summary="Redeem a member's points")
def redeem_points(customer: str, body: RedeemRequest, crm: CRMDep) -> dict[str, Any]:
    """The redemption's ledger entry and the new balance (201); more than the balance
    is refused and nothing changes."""
    return points.redeem(crm, customer, body.points, reason=body.reason, ref=body.ref)


@router.get("/tiers", summary="The configured tiers")
def list_tiers(crm: CRMDep) -> dict[str, Any]:
    """Each tier's threshold of rolling spend, point multiplier and benefits."""
    return tier_ladder(crm)
