"""The hook implementations of the ``real_estate`` plugin (the entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from crmcore import PluginInfo, Template, hookimpl
from crmcore.i18n import N_

from . import __version__
from . import requests as req
from .jobs import JOBS
from .settings import CONFIG_SCHEMA, settings_of
from .tables import TABLES, requests, revisits, teams, unit_owners

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from sqlalchemy import Table

    from crmcore import (
        CRM,
        Customer,
        Job,
        SearchKey,
        SegmentCondition,
        Staff,
        Ticket,
        TicketMove,
        Workflow,
    )


@hookimpl
def crm_plugin_info() -> PluginInfo:
    return PluginInfo(
        version=__version__,
        translations=str(Path(__file__).parent / "locale"),
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
def crm_tables() -> tuple[Table, ...]:
    return TABLES


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def crm_api_routers() -> list[APIRouter]:
    """The HTTP routes (imported here, so the plugin loads without the web extra)."""
    from crm_real_estate.api import router

    return [router]


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from .cli import group

    return [group]


@hookimpl
def crm_jobs() -> list[Job]:
    return JOBS


@hookimpl
def crm_message_templates() -> list[Template]:
    return [
        Template(
            name="real_estate.received",
            channel="sms",
            text=N_(
                "[Service Centre] Dear {name}, your repair request or complaint (no. {ref}) "
                "has been received; we will have it dealt with by {deadline}."
            ),
        ),
        Template(
            name="real_estate.completed",
            channel="sms",
            text=N_(
                "[Service Centre] Dear {name}, your repair request or complaint (no. {ref}) "
                "has been dealt with; we will call you back to check that it is fixed and "
                "how satisfied you are. Thank you."
            ),
        ),
    ]


@hookimpl
def crm_ticket_workflows() -> list[Workflow]:
    return [req.REPAIR_WORKFLOW]


@hookimpl
def crm_ticket_opened(crm: CRM, ticket: Ticket) -> None:
    req.on_ticket_opened(crm, ticket)


@hookimpl
def crm_ticket_moved(crm: CRM, ticket: Ticket, move: TicketMove) -> None:
    req.on_ticket_moved(crm, ticket, move)


@hookimpl
def crm_forget_customer(crm: CRM, customer: Customer) -> None:
    """Blank the free text; keep categories, dates and scores for the statistics."""
    crm.db.execute(
        update(requests).where(requests.c.customer_id == customer.id).values(description="[erased]")
    )
    crm.db.execute(update(revisits).where(revisits.c.customer_id == customer.id).values(note=None))


# a unit link's roles, strongest first: one person linked twice keeps the strongest
LINK_ROLES = ("owner", "co-owner", "tenant")


@hookimpl
def crm_before_customers_merge(crm: CRM, keep: Customer, other: Customer) -> None:
    """Two records of one person linked to the same unit would leave two current
    links after the core moves ``other``'s rows: fold each such pair into
    ``keep``'s link (the stronger role, the earlier start) and drop ``other``'s."""
    current = unit_owners.c.until.is_(None)
    kept = {
        row.unit_id: row
        for row in crm.db.execute(
            select(unit_owners).where(unit_owners.c.customer_id == keep.id, current)
        )
    }
    for row in crm.db.execute(
        select(unit_owners).where(unit_owners.c.customer_id == other.id, current)
    ).all():
        mine = kept.get(row.unit_id)
        if mine is None:
            continue
        role = min((mine.role, row.role), key=_role_rank)
        crm.db.execute(
            update(unit_owners)
            .where(unit_owners.c.id == mine.id)
            .values(role=role, since=min(mine.since, row.since))
        )
        crm.db.execute(delete(unit_owners).where(unit_owners.c.id == row.id))


def _role_rank(role: str) -> int:
    return LINK_ROLES.index(role) if role in LINK_ROLES else len(LINK_ROLES)


@hookimpl
def crm_staff_departed(crm: CRM, staff: Staff, handover_to: Staff) -> None:
    """A departing team leader's teams go to the member of staff taking over."""
    crm.db.execute(
        update(teams).where(teams.c.leader_id == staff.id).values(leader_id=handover_to.id)
    )


@hookimpl
def crm_demo(crm: CRM, command_prefix: str) -> str:
    from .demo import load

    return load(crm, command_prefix)


@hookimpl
def crm_search_keys() -> list[SearchKey]:
    from .finding import search_keys

    return search_keys()


@hookimpl
def crm_segment_conditions() -> list[SegmentCondition]:
    from .finding import segment_conditions

    return segment_conditions()
