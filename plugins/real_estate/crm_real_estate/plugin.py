"""The hook implementations of the ``real_estate`` plugin (the entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import update

from crmcore import PluginInfo, Template, hookimpl

from . import __version__
from . import requests as req
from .jobs import JOBS
from .settings import CONFIG_SCHEMA, settings_of
from .tables import TABLES, requests, revisits, teams


@hookimpl
def crm_plugin_info() -> PluginInfo:
    return PluginInfo(
        version=__version__,
        description="real estate: units and owners, one after-sales centre, warranty-aware "
        "repair dispatch, owner-rights incidents",
    )


@hookimpl
def crm_config_schema() -> dict[str, Any]:
    return CONFIG_SCHEMA


@hookimpl
def crm_validate_config(config: dict[str, Any]) -> None:
    """Season names, days of the year and the default urgency, checked at start-up."""
    settings_of(config)


@hookimpl
def crm_tables() -> Any:
    return TABLES


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def crm_cli_commands() -> Any:
    from .cli import group

    return [group]


@hookimpl
def crm_jobs() -> Any:
    return JOBS


@hookimpl
def crm_message_templates() -> Any:
    return [
        Template(
            name="real_estate.received",
            channel="sms",
            text="【客服中心】{name}您好，您的报修/投诉（单号{ref}）已受理，"
            "我们将在{deadline}前处理完毕。",
        ),
        Template(
            name="real_estate.completed",
            channel="sms",
            text="【客服中心】{name}您好，您的报修/投诉（单号{ref}）已处理完毕，"
            "客服将回访您了解是否修好及满意度，谢谢。",
        ),
    ]


@hookimpl
def crm_ticket_workflows() -> Any:
    return [req.REPAIR_WORKFLOW]


@hookimpl
def crm_ticket_opened(crm: Any, ticket: Any) -> None:
    req.on_ticket_opened(crm, ticket)


@hookimpl
def crm_ticket_moved(crm: Any, ticket: Any, move: Any) -> None:
    req.on_ticket_moved(crm, ticket, move)


@hookimpl
def crm_forget_customer(crm: Any, customer: Any) -> None:
    """Blank the free text; keep categories, dates and scores for the statistics."""
    crm.db.execute(
        update(requests).where(requests.c.customer_id == customer.id).values(description="[erased]")
    )
    crm.db.execute(update(revisits).where(revisits.c.customer_id == customer.id).values(note=None))


@hookimpl
def crm_staff_departed(crm: Any, staff: Any, handover_to: Any) -> None:
    """A departing team leader's teams go to the member of staff taking over."""
    crm.db.execute(
        update(teams).where(teams.c.leader_id == staff.id).values(leader_id=handover_to.id)
    )


@hookimpl
def crm_demo(crm: Any, command_prefix: str) -> str:
    from .demo import load

    return load(crm, command_prefix)
