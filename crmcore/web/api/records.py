"""A customer's interactions, transactions (one, or a batch: all or nothing) and
timeline (paged, newest page first)."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field, field_validator

from crmcore.errors import ValidationError
from crmcore.web.api.common import Page, PathId, Strict, plain, project
from crmcore.web.deps import request_crm

router = APIRouter(tags=["records"])
Crm = Depends(request_crm)
MAX_BATCH = 10_000


class InteractionIn(Strict):
    """A call, visit, message or note about the customer."""

    kind: str = Field(min_length=1, max_length=64)
    text: str = Field(default="", max_length=10_000)
    at: dt.datetime | None = None
    channel: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)


class TransactionIn(Strict):
    """A purchase (amount >= 0) or a refund (negative), in integer cents."""

    amount_cents: int = Field(ge=-(10**15), le=10**15)
    occurred_at: dt.datetime | None = None
    channel: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=128)
    kind: str = Field(default="purchase", pattern="^(purchase|refund)$")


class BatchLine(Strict):
    """One transaction of a batch, as a line of ``crm import transactions``."""

    customer_external_id: str = Field(min_length=1, max_length=128)
    occurred_at: str = Field(min_length=1, max_length=40)
    amount: str = Field(min_length=1, max_length=32, description="decimal text, e.g. 12.34")
    external_id: str | None = Field(default=None, max_length=128)
    channel: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, pattern="^(purchase|refund)$")

    @field_validator("*")
    @classmethod
    def no_nul(cls, value: Any) -> Any:
        """A NUL character is no text (PostgreSQL's bulk load refuses it)."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


class BatchIn(Strict):
    """Transactions written together: every one, or (on any error) none."""

    transactions: list[BatchLine] = Field(min_length=1, max_length=MAX_BATCH)


def _naive(at: dt.datetime | None) -> dt.datetime | None:
    """Times are naive local times (docs/architecture.md); an offset is refused."""
    if at is not None and at.tzinfo is not None:
        raise ValidationError(f"time {at.isoformat()}: give a local time without an offset")
    return at


@router.get("/customers/{customer_id}/interactions")
def interactions(
    customer_id: PathId, crm: Any = Crm, kind: str | None = Query(default=None, max_length=64)
) -> list[Any]:
    """The customer's interactions, oldest first."""
    return list(plain(crm, crm.records.interactions(customer_id, kind=kind)))


@router.post("/customers/{customer_id}/interactions", status_code=201)
def record_interaction(customer_id: PathId, body: InteractionIn, crm: Any = Crm) -> dict[str, Any]:
    """Record an interaction, by the caller."""
    me = crm.staff.acting_principal()
    it = crm.records.add_interaction(
        customer_id,
        body.kind,
        body.text,
        at=_naive(body.at),
        staff=me.staff_id if me is not None else None,
        channel=body.channel,
        data=body.data,
    )
    return dict(plain(crm, it))


@router.get("/customers/{customer_id}/transactions")
def transactions(
    customer_id: PathId, crm: Any = Crm, limit: int | None = Query(default=None, ge=1, le=10_000)
) -> list[Any]:
    """The customer's transactions, newest first."""
    return list(plain(crm, crm.records.transactions(customer_id, limit=limit)))


@router.post("/customers/{customer_id}/transactions", status_code=201)
def record_transaction(customer_id: PathId, body: TransactionIn, crm: Any = Crm) -> dict[str, Any]:
    """Record one transaction (the same ``external_id`` never counts twice)."""
    tx = crm.records.add_transaction(
        customer_id,
        body.amount_cents,
        occurred_at=_naive(body.occurred_at),
        channel=body.channel,
        external_id=body.external_id,
        kind=body.kind,
    )
    return dict(plain(crm, tx))


@router.post("/transactions/batch", status_code=201)
def record_batch(body: BatchIn, crm: Any = Crm) -> dict[str, Any]:
    """Write many transactions at once, as the importer does (needs an
    unrestricted principal): all or nothing; an error names the item by its
    line (the first item is line 1), as in a JSON-lines file."""
    from crmcore.importer import import_transactions

    lines = "".join(
        json.dumps({k: v for k, v in item.model_dump().items() if v is not None}) + "\n"
        for item in body.transactions
    )
    stream = io.BytesIO(lines.encode("utf-8"))
    summary = import_transactions(crm, "request body", fmt="jsonl", stream=stream)
    return dict(plain(crm, summary))


@router.get("/customers/{customer_id}/timeline", response_model=Page)
def timeline(
    customer_id: PathId,
    crm: Any = Crm,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=500),
    fields: str | None = Query(default=None, max_length=500),
) -> dict[str, Any]:
    """The customer's timeline: the latest ``limit`` entries (oldest first
    within the page); ``next_cursor`` reads the entries before them."""
    page = crm.records.timeline(customer_id, limit=limit, cursor=cursor)
    return {"items": project(plain(crm, list(page)), fields), "next_cursor": page.next_cursor}
