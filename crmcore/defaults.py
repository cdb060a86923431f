"""The core's own hook implementations, registered like any plugin (name ``core``)."""

from __future__ import annotations

from crmcore.hooks.markers import hookimpl

# lifecycle monitoring and follow-ups (see crmcore.lifecycle_hooks)
from crmcore.lifecycle_hooks import (  # noqa: F401  (registered as the core's hooks)
    crm_interaction_recorded,
    crm_jobs,
    crm_route_inbound,
    crm_stage_changed,
    crm_stages_changed_batch,
    crm_timeline_sources,
    crm_transaction_recorded,
    crm_transactions_recorded_batch,
)
from crmcore.registry import Workflow

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

