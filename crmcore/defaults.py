"""The core's own hook implementations, registered like any plugin (name ``core``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookimpl
from crmcore.registry import Channel, Job, Workflow

if TYPE_CHECKING:
    from crmcore.entities import (
        Customer,
        CustomerBatch,
        InboundMessage,
        Interaction,
        StageChange,
        Ticket,
        TicketMove,
        Transaction,
        TransactionBatch,
    )
    from crmcore.lifecycle_rules import StageChangeBatch
    from crmcore.registry import TimelineSource
    from crmcore.service import CRM

# lifecycle monitoring and follow-ups answer through the hooks below (crmcore.lifecycle_hooks)
from crmcore import lifecycle_hooks  # noqa: E402

DEFAULT_WORKFLOW = Workflow(
    name="default",
    # 核实 verify -> 审查 review -> 整改 rectify -> 回访 revisit -> 归档 archive: the complaint
    # workflow of a service desk (check the facts, review, fix, call the customer back, file it)
    states=("verify", "review", "rectify", "revisit", "archive"),
    due_hours={"verify": 24, "review": 48, "rectify": 72, "revisit": 48},
)


@hookimpl(trylast=True)
def crm_ticket_workflows() -> list[Workflow]:
    return [DEFAULT_WORKFLOW]


@hookimpl
def crm_route_inbound(crm: CRM, message: InboundMessage) -> str | None:
    """An unsubscribe word in a reply withdraws the sender's SMS consent at once
    (see :mod:`crmcore.channels.unsubscribe`)."""
    from crmcore.channels.unsubscribe import withdraw_by_reply

    lifecycle_hooks.crm_route_inbound(crm, message)  # a reply is a response: playbooks stop
    return withdraw_by_reply(crm, message)


@hookimpl
def crm_jobs() -> list[Job]:
    from crmcore.ops.notify import NOTIFY_JOB

    return [NOTIFY_JOB, *lifecycle_hooks.crm_jobs()]


# -- webhooks: the delivery channel, and the core's events queued for subscribers --------
@hookimpl
def crm_delivery_channels() -> list[Channel]:
    from crmcore.webhooks.delivery import WebhookSender

    return [WebhookSender().channel()]


@hookimpl
def crm_customer_created(crm: CRM, customer: Customer) -> None:
    from crmcore.webhooks import events

    events.customer_created(crm, customer)


@hookimpl
def crm_customer_created_batch(crm: CRM, batch: CustomerBatch) -> None:
    from crmcore.webhooks import events

    events.batch_imported(crm, "customers.imported", batch)


@hookimpl
def crm_stage_changed(crm: CRM, customer: Customer, change: StageChange) -> None:
    from crmcore.webhooks import events

    events.stage_changed(crm, customer, change)
    lifecycle_hooks.crm_stage_changed(crm, customer, change)


@hookimpl
def crm_transaction_recorded(crm: CRM, transaction: Transaction) -> None:
    from crmcore.webhooks import events

    events.transaction_recorded(crm, transaction)
    lifecycle_hooks.crm_transaction_recorded(crm, transaction)


@hookimpl
def crm_transaction_recorded_batch(crm: CRM, batch: TransactionBatch) -> None:
    from crmcore.webhooks import events

    events.batch_imported(crm, "transactions.imported", batch)
    lifecycle_hooks.crm_transactions_recorded_batch(crm, batch)


@hookimpl
def crm_ticket_moved(crm: CRM, ticket: Ticket, move: TicketMove) -> None:
    from crmcore.webhooks import events

    events.ticket_moved(crm, ticket, move)


@hookimpl
def crm_stage_changed_batch(crm: CRM, batch: StageChangeBatch) -> None:
    lifecycle_hooks.crm_stage_changed_batch(crm, batch)


@hookimpl
def crm_interaction_recorded(crm: CRM, interaction: Interaction) -> None:
    lifecycle_hooks.crm_interaction_recorded(crm, interaction)


@hookimpl
def crm_timeline_sources() -> list[TimelineSource]:
    return list(lifecycle_hooks.crm_timeline_sources())
