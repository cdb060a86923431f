"""What the core does, in its hooks (:mod:`crmcore.defaults` calls these), for
lifecycle monitoring and follow-ups: the
``core.lifecycle`` job, playbooks started by stage changes, playbooks
cancelled by the customer's responses, and their timeline streams."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from crmcore import followups, lifecycle_rules
from crmcore.entities import TimelineEntry
from crmcore.registry import Job, TimelineSource
from crmcore.schema import customers, exit_reasons
from crmcore.storage._driver import connection

if TYPE_CHECKING:
    from crmcore.entities import (
        Customer,
        InboundMessage,
        Interaction,
        StageChange,
        Transaction,
        TransactionBatch,
    )
    from crmcore.lifecycle_rules import StageChangeBatch
    from crmcore.service import CRM


def _lifecycle_job(crm: CRM, at: dt.datetime) -> dict[str, Any]:
    return lifecycle_rules.run(crm, at)


def crm_jobs() -> Iterable[Job]:
    return [
        Job(
            name=lifecycle_rules.JOB_NAME,
            run=_lifecycle_job,
            description="move customers between lifecycle stages by [[crm.lifecycle.rules]]",
        )
    ]


def crm_stage_changed_batch(crm: CRM, batch: StageChangeBatch) -> None:
    followups.start_for_moves(crm, batch)


def crm_stage_changed(crm: CRM, customer: Customer, change: StageChange) -> None:
    name = crm.config.core["followups"]["start_on_stage"].get(change.to_stage)
    if name is not None:
        followups.start(crm, name, customer.id, trigger=f"stage:{change.to_stage}")


def crm_interaction_recorded(crm: CRM, interaction: Interaction) -> None:
    if followups.is_response(crm, interaction.kind, interaction.data):
        followups.cancel_on_response(
            crm,
            interaction.customer_id,
            interaction.at,
            f"the customer responded: {interaction.kind}",
        )


def crm_route_inbound(crm: CRM, message: InboundMessage) -> str | None:
    """An SMS from a customer's phone is their response: it cancels their open
    playbook steps. The message is not claimed (other plugins still route it)."""
    if not followups.playbooks(crm):
        return None
    sender = connection(crm.db).execute(
        select(customers.c.id).where(
            customers.c.phone == message.from_address,
            customers.c.merged_into_id.is_(None),
            customers.c.forgotten_at.is_(None),
        )
    ).first()
    if sender is not None:
        followups.cancel_on_response(
            crm, sender.id, message.received_at, "the customer responded: sms"
        )
    return None


def crm_transaction_recorded(crm: CRM, transaction: Transaction) -> None:
    if transaction.kind == "purchase" and crm.config.core["followups"]["purchase_is_response"]:
        followups.cancel_on_response(
            crm,
            transaction.customer_id,
            transaction.occurred_at,
            "the customer responded: purchase",
        )


def crm_transactions_recorded_batch(crm: CRM, batch: TransactionBatch) -> None:
    followups.cancel_on_purchases(crm, batch.first_id, batch.last_id)


def _exit_reason_entry(row: Any) -> TimelineEntry:
    note = f" ({row.note})" if row.note else ""
    return TimelineEntry(
        at=row.at, kind="exit_reason", source="core", summary=f"exit reason: {row.reason}{note}"
    )


def crm_timeline_sources() -> Iterable[TimelineSource]:
    e = exit_reasons
    return [
        *followups.timeline_sources(),
        TimelineSource(
            name="core.exit_reasons",
            query=lambda cid: select(e.c.id, e.c.at, e.c.reason, e.c.note).where(
                e.c.customer_id == cid
            ),
            entry=_exit_reason_entry,
        ),
    ]
