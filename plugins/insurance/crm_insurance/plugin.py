"""The insurance plugin's hook implementations (the ``crmcore.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from crm_insurance import NAME, __version__, orphans, settings, tables, vip, visits
from crmcore import Attribute, Job, PluginInfo, ValidationError, hookimpl
from crmcore.parse import parse_date

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from sqlalchemy import Table

    from crmcore import CRM, Customer, InboundMessage, SearchKey, SegmentCondition, Staff

ERASED = "[erased]"


@hookimpl
def crm_plugin_info() -> PluginInfo:
    return PluginInfo(
        version=__version__,
        description="Life insurance: policies, SMS-verified agent visits, agent reports, "
        "VIP service, orphan customers, opportunity lists",
    )


@hookimpl
def crm_config_schema() -> dict[str, Any]:
    return settings.CONFIG_SCHEMA


@hookimpl
def crm_customer_attributes() -> list[Attribute]:
    return [
        Attribute(
            name=f"{NAME}.birth_date",
            description="date of birth (YYYY-MM-DD)",
            schema={"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            pii=True,
        ),
        Attribute(
            name=f"{NAME}.gender",
            description="gender",
            schema={"enum": ["female", "male", "other"]},
        ),
        Attribute(
            name=f"{NAME}.points",
            description="loyalty points (积分)",
            schema={"type": "integer", "minimum": 0},
        ),
    ]


@hookimpl
def crm_tables() -> tuple[Table, ...]:
    return tables.TABLES


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def crm_api_routers() -> list[APIRouter]:
    """The HTTP routes (imported here, so the plugin loads without the web extra)."""
    from crm_insurance.api import router

    return [router]


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_insurance.cli import insurance

    return [insurance]


@hookimpl
def crm_jobs() -> list[Job]:
    return [
        Job(
            name=f"{NAME}.vip_visit_reminders",
            run=vip.remind,
            schedule="0 7 * * *",
            description="visit reminders for VIP customers below their guaranteed frequency",
        )
    ]


@hookimpl
def crm_validate_customer(crm: CRM, customer: Customer, before: Customer | None) -> None:
    birth = customer.attributes.get(f"{NAME}.birth_date")
    if birth is None or (
        before is not None and before.attributes.get(f"{NAME}.birth_date") == birth
    ):
        return
    day = parse_date(birth, field=f"{NAME}.birth_date")
    if day > crm.now().date():
        raise ValidationError(f"{NAME}.birth_date: {birth} is in the future")


@hookimpl
def crm_route_inbound(crm: CRM, message: InboundMessage) -> str | None:
    return visits.route_inbound(crm, message)


@hookimpl
def crm_staff_departed(crm: CRM, staff: Staff, handover_to: Staff) -> None:
    orphans.on_staff_departed(crm, staff, handover_to)


@hookimpl
def crm_classify_customer(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    grade = vip.grade_of(crm, customer.id)
    return {f"{NAME}.grade": grade["grade"]} if grade else None


@hookimpl
def crm_before_customers_merge(crm: CRM, keep: Customer, other: Customer) -> None:
    # the core moves every customer_id column; the insured person is ours to move
    p = tables.policies
    crm.db.execute(
        update(p).where(p.c.insured_customer_id == other.id).values(insured_customer_id=keep.id)
    )


@hookimpl
def crm_forget_customer(crm: CRM, customer: Customer) -> None:
    v, r, x = tables.visits, tables.replies, tables.payouts
    crm.db.execute(
        update(v)
        .where(v.c.customer_id == customer.id)
        .values(note=ERASED, reply_text=ERASED, reply_phone=None)
    )
    crm.db.execute(
        update(r)
        .where(r.c.customer_id == customer.id)
        .values(text=ERASED, from_address=ERASED, detail="")
    )
    if customer.phone:
        crm.db.execute(
            update(r)
            .where(r.c.from_address == customer.phone)
            .values(text=ERASED, from_address=ERASED)
        )
    crm.db.execute(update(x).where(x.c.customer_id == customer.id).values(note=""))


@hookimpl
def crm_demo(crm: CRM, command_prefix: str) -> str | None:
    from crm_insurance.demo import load

    return load(crm, command_prefix)


@hookimpl
def crm_search_keys() -> list[SearchKey]:
    from crm_insurance.finding import search_keys

    return search_keys()


@hookimpl
def crm_segment_conditions() -> list[SegmentCondition]:
    from crm_insurance.finding import segment_conditions

    return segment_conditions()
