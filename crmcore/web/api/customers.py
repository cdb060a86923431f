"""Customers: create, read (by id, ``?external_id=``, ``?phone=``), list with
filters and a keyset cursor, update with ``If-Match``, stage moves, merge,
forget; their contact points, relationships and labels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from sqlalchemy import select

from crmcore.errors import ValidationError
from crmcore.schema import customer_labels, live_customers
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
    lock_customer,
    plain,
    project,
    require_match,
    with_etag,
)
from crmcore.web.deps import request_crm

router = APIRouter(prefix="/customers", tags=["customers"])
Crm = Depends(request_crm)


class CustomerIn(Strict):
    """A new customer."""

    name: str = Field(min_length=1, max_length=300)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    external_id: str | None = Field(default=None, max_length=128)
    owner: str | None = Field(default=None, max_length=64, description="staff key")
    kind: str = Field(default="person", max_length=32)
    stage: str | None = Field(default=None, max_length=32)
    attributes: dict[str, Any] = Field(default_factory=dict)
    consent_sms: bool = True
    consent_email: bool = True


class CustomerPatch(Strict):
    """Fields to change; attributes are merged (a null value removes one)."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    external_id: str | None = Field(default=None, max_length=128)
    owner: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=32)
    attributes: dict[str, Any] | None = None
    consent_sms: bool | None = None
    consent_email: bool | None = None


class StageMove(Strict):
    """A lifecycle move."""

    stage: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=2000)


class MergeIn(Strict):
    """The customer merged into this one (it stops existing on its own)."""

    other: Id


class ContactPointIn(Strict):
    """An extra phone number or e-mail address."""

    kind: str = Field(pattern="^(phone|email)$")
    value: str = Field(min_length=1, max_length=254)
    consent: bool = True


class RelationshipIn(Strict):
    """A link from this customer to another customer or to a member of staff."""

    kind: str = Field(min_length=1, max_length=64)
    to_customer: Id | None = None
    to_staff: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class LabelIn(Strict):
    """A label's value (null removes it)."""

    value: str | None = Field(max_length=64)


class Customer(Strict):
    """A customer as the API shows it."""

    id: int
    name: str
    external_id: str | None
    kind: str
    phone: str | None
    email: str | None
    consent_sms: bool
    consent_email: bool
    owner_id: int | None
    stage: str
    attributes: dict[str, Any]
    created_at: str | None
    updated_at: str | None


@router.post("", status_code=201, response_model=Customer)
def create_customer(body: CustomerIn, response: Response, crm: Any = Crm) -> dict[str, Any]:
    """Add a customer (an existing one with the same phone or e-mail is a conflict)."""
    c = crm.customers.add(**body.model_dump(), on_match="error")
    response.headers["Location"] = f"/api/v1/customers/{c.id}"
    return with_etag(response, plain(crm, c))


@router.get("", response_model=Page)
def list_customers(
    crm: Any = Crm,
    stage: str | None = Query(default=None, max_length=32),
    owner: str | None = Query(default=None, max_length=64, description="staff key"),
    label: str | None = Query(default=None, max_length=130, description="NAME=VALUE"),
    external_id: str | None = Query(default=None, max_length=128),
    phone: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=200),
    fields: str | None = Query(default=None, max_length=500),
) -> dict[str, Any]:
    """The customers the caller may see, by id, one page at a time."""
    if external_id is not None or phone is not None:
        found = crm.customers.match(external_id=external_id, phone=phone)
        items = [] if found is None else [plain(crm, found[0])]
        return {"items": project(items, fields), "next_cursor": None}
    after = decode_cursor(cursor)
    with crm.transaction(write=False):
        where = crm.customers.listing_filter(stage, owner)
        if label is not None:
            name, eq, value = label.partition("=")
            if not eq or not name:
                raise ValidationError(f"label {label!r}: expected NAME=VALUE")
            where.append(
                live_customers.c.id.in_(
                    select(customer_labels.c.customer_id).where(
                        customer_labels.c.name == name, customer_labels.c.value == value
                    )
                )
            )
        if after is not None:
            where.append(live_customers.c.id > after[0])
        stmt = select(live_customers).where(*where).order_by(live_customers.c.id).limit(limit + 1)
        rows = crm.db.execute(stmt).all()
        entities = [_rows.customer(r) for r in rows[:limit]]
    more = len(rows) > limit
    items = plain(crm, entities)
    return {
        "items": project(items, fields),
        "next_cursor": encode_cursor([entities[-1].id]) if more else None,
    }


@router.get("/{customer_id}", response_model=Customer)
def get_customer(customer_id: PathId, response: Response, crm: Any = Crm) -> dict[str, Any]:
    """One customer (a merged id answers the customer it was merged into)."""
    return with_etag(response, plain(crm, crm.customers.get(customer_id)))


@router.patch("/{customer_id}", response_model=Customer)
def update_customer(
    customer_id: PathId, body: CustomerPatch, request: Request, response: Response, crm: Any = Crm
) -> dict[str, Any]:
    """Change fields; ``If-Match`` with the ETag read is required (428 without,
    412 when the customer changed since)."""
    changes = body.model_dump(exclude_unset=True)
    with crm.transaction():
        current = crm.customers.get(customer_id)
        lock_customer(crm, current.id)
        require_match(request, plain(crm, crm.customers.get(current.id)))
        updated = crm.customers.update(current.id, **changes) if changes else current
    return with_etag(response, plain(crm, updated))


@router.post("/{customer_id}/stage")
def move_stage(customer_id: PathId, body: StageMove, crm: Any = Crm) -> dict[str, Any]:
    """Move the customer to another lifecycle stage (as the workflow allows)."""
    return dict(plain(crm, crm.customers.change_stage(customer_id, body.stage, reason=body.reason)))


@router.get("/{customer_id}/stages")
def stage_history(customer_id: PathId, crm: Any = Crm) -> list[Any]:
    """The customer's stage changes, oldest first."""
    return list(plain(crm, crm.customers.stage_history(customer_id)))


@router.post("/{customer_id}/merge", response_model=Customer)
def merge(customer_id: PathId, body: MergeIn, response: Response, crm: Any = Crm) -> dict[str, Any]:
    """Merge customer ``other`` into this one."""
    return with_etag(response, plain(crm, crm.customers.merge(customer_id, body.other)))


@router.post("/{customer_id}/forget")
def forget(customer_id: PathId, crm: Any = Crm) -> dict[str, Any]:
    """Erase the customer's personal data (needs 'pii')."""
    return dict(plain(crm, crm.customers.forget(customer_id)))


@router.get("/{customer_id}/contact-points")
def contact_points(customer_id: PathId, crm: Any = Crm) -> list[Any]:
    """The customer's extra phone numbers and e-mail addresses."""
    return list(plain(crm, crm.customers.contact_points(customer_id)))


@router.post("/{customer_id}/contact-points", status_code=201)
def add_contact_point(customer_id: PathId, body: ContactPointIn, crm: Any = Crm) -> list[Any]:
    """Add a phone number or e-mail address; answers the customer's list."""
    with crm.transaction():
        crm.customers.add_contact_point(customer_id, body.kind, body.value, consent=body.consent)
        return list(plain(crm, crm.customers.contact_points(customer_id)))


@router.get("/{customer_id}/relationships")
def relationships(customer_id: PathId, crm: Any = Crm) -> list[Any]:
    """The customer's active relationships."""
    return list(plain(crm, crm.customers.relationships(customer_id)))


@router.post("/{customer_id}/relationships", status_code=201)
def add_relationship(customer_id: PathId, body: RelationshipIn, crm: Any = Crm) -> dict[str, Any]:
    """Link the customer to another customer or to a member of staff."""
    rel = crm.customers.add_relationship(
        body.kind,
        customer_id,
        to_customer=body.to_customer,
        to_staff=body.to_staff,
        note=body.note,
    )
    return dict(plain(crm, rel))


@router.get("/{customer_id}/labels")
def labels(customer_id: PathId, crm: Any = Crm) -> dict[str, Any]:
    """The customer's labels (segments, ABC/RFM classes and the plugins' labels)."""
    return dict(plain(crm, crm.customers.labels(customer_id)))


@router.put("/{customer_id}/labels/{name}")
def set_label(customer_id: PathId, name: str, body: LabelIn, crm: Any = Crm) -> dict[str, Any]:
    """Set (or, with null, remove) one label; answers all the customer's labels."""
    with crm.transaction():
        crm.customers.set_label(customer_id, name, body.value)
        return dict(plain(crm, crm.customers.labels(customer_id)))
