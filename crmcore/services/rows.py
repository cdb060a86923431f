"""Row -> entity conversions (one place, so every entity is built the same way).

The services import it as ``make`` (``make.customer(row)``)."""

from __future__ import annotations

from typing import Any

from crmcore.entities import (
    Customer,
    Interaction,
    Message,
    Relationship,
    Reminder,
    Staff,
    Ticket,
    Transaction,
)


def customer(row: Any) -> Customer:
    return Customer(
        id=row.id,
        name=row.name,
        external_id=row.external_id,
        kind=row.kind,
        phone=row.phone,
        email=row.email,
        consent_sms=bool(row.consent_sms),
        consent_email=bool(row.consent_email),
        owner_id=row.owner_id,
        stage=row.stage,
        attributes=dict(row.attributes or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def staff(row: Any) -> Staff:
    return Staff(
        id=row.id,
        key=row.key,
        name=row.name,
        roles=tuple(row.roles or ()),
        team=row.team,
        supervisor_id=row.supervisor_id,
        active=bool(row.active),
        departed_at=row.departed_at,
    )


def relationship(row: Any) -> Relationship:
    return Relationship(
        id=row.id,
        kind=row.kind,
        from_customer_id=row.from_customer_id,
        to_customer_id=row.to_customer_id,
        to_staff_id=row.to_staff_id,
        since=row.since,
        active=bool(row.active),
        note=row.note,
    )


def interaction(row: Any) -> Interaction:
    return Interaction(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        text=row.text,
        at=row.at,
        staff_id=row.staff_id,
        channel=row.channel,
        data=dict(row.data or {}),
        source=row.source,
    )


def transaction(row: Any) -> Transaction:
    return Transaction(
        id=row.id,
        customer_id=row.customer_id,
        occurred_at=row.occurred_at,
        amount_cents=row.amount_cents,
        channel=row.channel,
        external_id=row.external_id,
        kind=row.kind,
    )


def ticket(row: Any) -> Ticket:
    return Ticket(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        workflow=row.workflow,
        state=row.state,
        subject=row.subject,
        owner_id=row.owner_id,
        due_at=row.due_at,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        data=dict(row.data or {}),
        source=row.source,
    )


def reminder(row: Any) -> Reminder:
    return Reminder(
        id=row.id,
        staff_id=row.staff_id,
        customer_id=row.customer_id,
        due_at=row.due_at,
        text=row.text,
        done_at=row.done_at,
        source=row.source,
    )


def message(row: Any) -> Message:
    return Message(
        id=row.id,
        channel=row.channel,
        to_address=row.to_address,
        body=row.body,
        idempotency_key=row.idempotency_key,
        customer_id=row.customer_id,
        template=row.template,
        status=row.status,
        attempts=row.attempts,
        source=row.source,
        last_error=row.last_error,
        attempted_at=row.attempted_at,
        purpose=row.purpose,
        not_before=row.not_before,
        payload=row.payload,
        provider_id=row.provider_id,
        delivery_status=row.delivery_status,
        provider_error=row.provider_error,
    )
