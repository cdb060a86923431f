"""The utility plugin's hook implementations (entry point ``utility``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from crm_utility import __version__, accounts, advice, arrears, equipment, tickets
from crm_utility.config import NAME, SCHEMA, check
from crm_utility.tables import (
    TABLES,
    devices,
    dunning_steps,
    escalations,
    inspections,
    payments,
    service_points,
)
from crm_utility.tables import advice as advice_table
from crm_utility.tables import bills as bills_table
from crmcore import Job, PluginInfo, Template, TimelineEntry, TimelineSource, hookimpl
from crmcore.i18n import N_

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from sqlalchemy import Table

    from crmcore import CRM, Customer, SearchKey, Ticket, TicketMove, Workflow


@hookimpl
def crm_plugin_info() -> PluginInfo:
    return PluginInfo(
        version=__version__,
        translations=str(Path(__file__).parent / "locale"),
        description="power supply: service points, fast-response tickets, load curves and advice, "
        "equipment register, arrears dunning",
    )


@hookimpl
def crm_config_schema() -> dict[str, Any]:
    return SCHEMA


@hookimpl
def crm_validate_config(config: dict[str, Any]) -> None:
    """The dunning ladder and the tariff periods, checked at start-up."""
    check(config)


@hookimpl
def crm_tables() -> list[Table]:
    return list(TABLES)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def crm_api_routers() -> list[APIRouter]:
    """The HTTP routes (imported here, so the plugin loads without the web extra)."""
    from crm_utility.api import router

    return [router]


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_utility.cli import utility

    return [utility]


@hookimpl
def crm_ticket_workflows() -> list[Workflow]:
    return [tickets.SERVICE_WORKFLOW]


@hookimpl
def crm_jobs() -> list[Job]:
    return [
        Job(
            name="utility.escalate",
            run=tickets.escalate,
            schedule="every 5 minutes",
            description="escalate service tickets past their response/on-site deadline up the supervisor chain",
        ),
        Job(
            name="utility.advise",
            run=advice.advise_job,
            schedule="0 4 * * *",
            description="energy-saving and upgrade advice from key customers' load curves of the day before",
        ),
        Job(
            name="utility.inspections",
            run=equipment.reminders_job,
            schedule="0 6 * * *",
            description="reminders for equipment inspections falling due",
        ),
        Job(
            name="utility.dunning",
            run=arrears.dunning_job,
            schedule="0 8 * * *",
            description="take the next due step of the arrears dunning ladder for each overdue bill",
        ),
    ]


@hookimpl
def crm_message_templates() -> list[Template]:
    return [
        Template(
            name="utility.dunning_reminder",
            channel="sms",
            text=N_(
                "Dear {name}, your electricity bill {bill_no} ({period}) of {amount} yuan was due on "
                "{due_on}; {outstanding} yuan is outstanding. Please pay soon. Hotline 95598."
            ),
        ),
        Template(
            name="utility.formal_notice",
            channel="sms",
            text=N_(
                "FORMAL NOTICE to {name}: bill {bill_no} ({period}) is {days} days overdue with "
                "{outstanding} yuan outstanding. Unpaid arrears lead to restricted supply and "
                "disconnection under the power supply regulations. Hotline 95598."
            ),
        ),
        Template(
            name="utility.disconnection_notice",
            channel="sms",
            text=N_(
                "NOTICE OF DISCONNECTION to {name}: unless the {outstanding} yuan outstanding on bill "
                "{bill_no} is paid, supply to {address} will be disconnected on or after "
                "{disconnect_on}. Hotline 95598."
            ),
        ),
    ]


# -- tickets ---------------------------------------------------------------------------------
@hookimpl
def crm_ticket_opened(crm: CRM, ticket: Ticket) -> None:
    if ticket.workflow == tickets.WORKFLOW:
        tickets.on_opened(crm, ticket)


@hookimpl
def crm_ticket_moved(crm: CRM, ticket: Ticket, move: TicketMove) -> None:
    if ticket.workflow == tickets.WORKFLOW:
        tickets.on_moved(crm, ticket, move)


# -- the customer's card and timeline ------------------------------------------------------------
@hookimpl
def crm_classify_customer(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    rows = crm.db.execute(
        select(service_points).where(service_points.c.customer_id == customer.id)
    ).all()
    if not rows:
        return None
    order = ("residential", "commercial", "large_industrial")
    top = max((r.customer_class for r in rows), key=order.index)
    key = any(accounts.point_is_key(crm, r) for r in rows)
    return {
        "utility.class": top,
        "utility.key": "yes" if key else "no",
        "utility.points": str(len(rows)),
    }


def _point_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="utility.point",
        source=NAME,
        summary=f"service point {r.meter_no} ({r.customer_class}, {r.voltage_level}, "
        f"{r.area}) registered",
        data={"meter_no": r.meter_no},
    )


def _advice_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="utility.advice",
        source=NAME,
        summary=f"advice ({r.rule}): {r.summary}",
        data={"advice_id": r.id, "rule": r.rule, "saving_cents": r.saving_cents},
    )


def _escalation_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="utility.escalation",
        source=NAME,
        summary=f"ticket {r.ticket_id} escalated to level {r.level} "
        f"({r.deadline.replace('_', '-')} deadline {r.due_at:%Y-%m-%d %H:%M} missed)",
        data={"ticket_id": r.ticket_id, "level": r.level, "to_staff_id": r.to_staff_id},
    )


def _inspection_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="utility.inspection",
        source=NAME,
        summary=f"inspection of {r.name}: {r.result}" + (f" — {r.notes}" if r.notes else ""),
        data={"device_id": r.device_id, "result": r.result},
    )


def _payment_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="utility.payment",
        source=NAME,
        summary=f"paid {r.amount_cents / 100:,.2f} yuan on bill {r.bill_no}",
        data={"bill_no": r.bill_no, "amount_cents": r.amount_cents},
    )


def _dunning_entry(r: Any) -> TimelineEntry:
    label = arrears.STEP_LABEL.get(r.name, r.name)
    extra = f", disconnection on {r.disconnect_on}" if r.disconnect_on else ""
    gone = f" (withdrawn {r.withdrawn_at:%Y-%m-%d}: paid in full)" if r.withdrawn_at else ""
    return TimelineEntry(
        at=r.at,
        kind="utility.dunning",
        source=NAME,
        summary=f"dunning step {r.step}: {label} for bill {r.bill_no}{extra}{gone}",
        data={"bill_no": r.bill_no, "step": r.step, "name": r.name},
    )


@hookimpl
def crm_timeline_sources() -> list[TimelineSource]:
    return [
        TimelineSource(
            name="utility.point",
            query=lambda cid: select(service_points, service_points.c.created_at.label("at")).where(
                service_points.c.customer_id == cid
            ),
            entry=_point_entry,
        ),
        TimelineSource(
            name="utility.advice",
            query=lambda cid: select(advice_table, advice_table.c.created_at.label("at")).where(
                advice_table.c.customer_id == cid
            ),
            entry=_advice_entry,
        ),
        TimelineSource(
            name="utility.escalation",
            query=lambda cid: select(escalations).where(escalations.c.customer_id == cid),
            entry=_escalation_entry,
        ),
        TimelineSource(
            name="utility.inspection",
            query=lambda cid: (
                select(inspections, devices.c.name)
                .join(devices, devices.c.id == inspections.c.device_id)
                .where(inspections.c.customer_id == cid)
            ),
            entry=_inspection_entry,
        ),
        TimelineSource(
            name="utility.payment",
            query=lambda cid: (
                select(payments, bills_table.c.bill_no)
                .join(bills_table, bills_table.c.id == payments.c.bill_id)
                .where(payments.c.customer_id == cid)
            ),
            entry=_payment_entry,
        ),
        TimelineSource(
            name="utility.dunning",
            query=lambda cid: (
                select(dunning_steps, bills_table.c.bill_no)
                .join(bills_table, bills_table.c.id == dunning_steps.c.bill_id)
                .where(dunning_steps.c.customer_id == cid)
            ),
            entry=_dunning_entry,
        ),
    ]


@hookimpl
def crm_forget_customer(crm: CRM, customer: Customer) -> None:
    """Addresses and inspection notes are personal; meters, energy and money stay."""
    crm.db.execute(
        update(service_points)
        .where(service_points.c.customer_id == customer.id)
        .values(address="[erased]")
    )
    crm.db.execute(
        update(inspections).where(inspections.c.customer_id == customer.id).values(notes="")
    )
    crm.db.execute(
        update(dunning_steps).where(dunning_steps.c.customer_id == customer.id).values(note="")
    )


@hookimpl
def crm_demo(crm: CRM, command_prefix: str) -> str | None:
    from crm_utility.demo import load

    return load(crm, command_prefix)


@hookimpl
def crm_search_keys() -> list[SearchKey]:
    """The meter number finds the customer of its service point."""
    from crm_utility.tables import service_points
    from crmcore import SearchKey

    return [
        SearchKey(
            name="utility.meter_no",
            label="meter number",
            value=service_points.c.meter_no,
            customer=service_points.c.customer_id,
        )
    ]
