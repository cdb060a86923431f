"""The core's own hook implementations, registered like any plugin (name ``core``)."""

from __future__ import annotations

from crmcore.hooks.markers import hookimpl
from crmcore.registry import Job, Workflow

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
def crm_jobs() -> list[Job]:
    from crmcore.ops.notify import NOTIFY_JOB

    return [NOTIFY_JOB]
