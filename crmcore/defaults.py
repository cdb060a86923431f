"""The core's own hook implementations, registered like any plugin (name ``core``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookimpl
from crmcore.registry import Job, Workflow

if TYPE_CHECKING:
    from crmcore.entities import InboundMessage
    from crmcore.service import CRM

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

    return withdraw_by_reply(crm, message)


@hookimpl
def crm_jobs() -> list[Job]:
    from crmcore.ops.notify import NOTIFY_JOB

    return [NOTIFY_JOB]
