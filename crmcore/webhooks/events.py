"""The core's events, as webhook payloads: ids, stages, amounts and times, never
personal data (a receiver reads the rest through the API, under its own access).

Each function is called from the core's hook implementation of the same event
(:mod:`crmcore.defaults`), inside the change's transaction."""

from __future__ import annotations

from typing import Any

from crmcore.webhooks import publish


def customer_created(crm: Any, customer: Any) -> None:
    publish(
        crm,
        "customer.created",
        {
            "customer_id": customer.id,
            "external_id": customer.external_id,
            "kind": customer.kind,
            "stage": customer.stage,
            "owner_id": customer.owner_id,
        },
        customer_id=customer.id,
    )


def stage_changed(crm: Any, customer: Any, change: Any) -> None:
    publish(
        crm,
        "customer.stage_changed",
        {
            "customer_id": customer.id,
            "from": change.from_stage,
            "to": change.to_stage,
            "reason": change.reason,
            "at": change.at,
        },
        customer_id=customer.id,
    )


def transaction_recorded(crm: Any, transaction: Any) -> None:
    publish(
        crm,
        "transaction.recorded",
        {
            "transaction_id": transaction.id,
            "customer_id": transaction.customer_id,
            "kind": transaction.kind,
            "amount_cents": transaction.amount_cents,
            "occurred_at": transaction.occurred_at,
            "external_id": transaction.external_id,
            "channel": transaction.channel,
        },
        customer_id=transaction.customer_id,
    )


def batch_imported(crm: Any, event: str, batch: Any) -> None:
    """One event per import batch (``customers.imported``, ``transactions.imported``),
    not one per row: the id range to fetch."""
    publish(
        crm, event, {"first_id": batch.first_id, "last_id": batch.last_id, "count": batch.count}
    )


def ticket_moved(crm: Any, ticket: Any, move: Any) -> None:
    publish(
        crm,
        "ticket.moved",
        {
            "ticket_id": ticket.id,
            "customer_id": ticket.customer_id,
            "workflow": ticket.workflow,
            "kind": ticket.kind,
            "from": move.from_state,
            "to": move.to_state,
            "at": move.at,
            "owner_id": move.owner_id,
        },
        customer_id=ticket.customer_id,
    )
