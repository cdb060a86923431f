"""The retail plugin's hook implementations (the ``crmcore.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from crm_retail import (
    __version__,
    callbacks,
    members,
    messaging,
    points,
    segments,
)
from crm_retail.settings import SCHEMA, parse
from crm_retail.tables import (
    TABLES,
    dm_reports,
    fuel_profiles,
    service_plans,
    survey_answers,
    survey_invites,
    waitlist,
)
from crm_retail.tables import callbacks as callbacks_table
from crm_retail.tables import members as members_table
from crm_retail.tables import points as points_table
from crmcore import Job, PluginInfo, TimelineEntry, TimelineSource, hookimpl

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from sqlalchemy import Table

    from crmcore import (
        CRM,
        Customer,
        SearchKey,
        SegmentCondition,
        Template,
        Transaction,
        TransactionBatch,
    )


@hookimpl
def crm_plugin_info() -> PluginInfo:
    return PluginInfo(
        version=__version__,
        translations=str(Path(__file__).parent / "locale"),
        description=(
            "Retail: members, tiers, points, member day, birthday greetings, ABC service levels, "
            "DM price error reports, out-of-stock waiting lists, after-sale surveys, fuel-station "
            "profiling, 1:15 and overdue call-backs"
        ),
    )


@hookimpl
def crm_config_schema() -> dict[str, Any]:
    return SCHEMA


@hookimpl
def crm_validate_config(config: dict[str, Any]) -> None:
    """The tier ladder, the review date and the ABC shares, checked at start-up."""
    parse(config)


@hookimpl
def crm_tables() -> tuple[Table, ...]:
    return TABLES


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_retail.cli import retail

    return [retail]


@hookimpl
def crm_api_routers() -> list[APIRouter]:
    """The HTTP routes (imported here, so the plugin loads without the web extra)."""
    from crm_retail.api import router

    return [router]


@hookimpl
def crm_jobs() -> list[Job]:
    return [
        Job(
            name="retail.tiers",
            run=members.run_tiers,
            schedule="0 2 * * *",
            description="tier upgrades; downgrades at the configured review date",
        ),
        Job(
            name="retail.points_expiry",
            run=points.run_expiry,
            schedule="15 2 * * *",
            description="expire unredeemed points older than points_expiry_days (FIFO)",
        ),
        Job(
            name="retail.member_day_reminder",
            run=messaging.run_member_day_reminder,
            schedule="0 10 * * *",
            catch_up="skip",
            description="SMS to members the day before member day",
        ),
        Job(
            name="retail.birthdays",
            run=messaging.run_birthdays,
            schedule="0 9 * * *",
            description="one birthday greeting per member per year",
        ),
        Job(
            name="retail.abc_service",
            run=segments.run_abc_service,
            schedule="30 3 1 * *",
            description="ABC classification and the service level of each class",
        ),
        Job(
            name="retail.overdue",
            run=callbacks.run_overdue,
            schedule="30 2 * * *",
            description="flag overdue regular customers; call-back reminders",
        ),
    ]


@hookimpl
def crm_message_templates() -> list[Template]:
    return messaging.TEMPLATES


@hookimpl
def crm_transaction_recorded(crm: CRM, transaction: Transaction) -> None:
    members.on_transaction(crm, transaction)


@hookimpl
def crm_transaction_recorded_batch(crm: CRM, batch: TransactionBatch) -> None:
    members.on_batch(crm, batch)


def _points_entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        at=r.at,
        kind="retail.points",
        source="retail",
        summary=f"{int(r.delta):+d} points ({r.kind}: {r.reason})",
        data={"ledger_id": r.id, "delta": int(r.delta), "ref": r.ref},
    )


@hookimpl
def crm_timeline_sources() -> list[TimelineSource]:
    return [
        TimelineSource(
            name="retail.points",
            query=lambda cid: select(points_table).where(points_table.c.customer_id == cid),
            entry=_points_entry,
        )
    ]


@hookimpl
def crm_classify_customer(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    m = points.member_row(crm, customer.id)
    if m is not None:
        out |= {"retail.member_no": m.member_no, "retail.points": str(int(m.points_balance))}
    level = segments.service_level(crm, customer.id)
    if level is not None:
        out["retail.service"] = level
    return out or None


@hookimpl
def crm_before_customers_merge(crm: CRM, keep: Customer, other: Customer) -> None:
    """Fold ``other``'s membership into ``keep``'s (the core then moves the
    ledger rows; the sum of balances equals the moved ledger's sum) and drop
    rows that would clash on a per-customer unique key."""
    k, o = points.member_row(crm, keep.id), points.member_row(crm, other.id)
    if k is not None and o is not None:
        from crm_retail.settings import settings

        s = settings(crm)
        tier = k.tier if s.rank(k.tier) >= s.rank(o.tier) else o.tier
        crm.db.execute(
            update(members_table)
            .where(members_table.c.customer_id == keep.id)
            .values(
                points_balance=k.points_balance + o.points_balance,
                tier=tier,
                joined_at=min(k.joined_at, o.joined_at),
                birthday=k.birthday or o.birthday,
            )
        )
        crm.db.execute(delete(members_table).where(members_table.c.customer_id == other.id))
        if tier != k.tier:
            crm.customers.set_label(keep.id, members.TIER_LABEL, tier, source="retail")
    for table in (fuel_profiles, service_plans):
        if crm.db.execute(select(table.c.id).where(table.c.customer_id == keep.id)).first():
            crm.db.execute(delete(table).where(table.c.customer_id == other.id))
    keep_surveys = select(survey_invites.c.survey_id).where(survey_invites.c.customer_id == keep.id)
    crm.db.execute(
        delete(survey_invites).where(
            survey_invites.c.customer_id == other.id, survey_invites.c.survey_id.in_(keep_surveys)
        )
    )


@hookimpl
def crm_forget_customer(crm: CRM, customer: Customer) -> None:
    """Blank personal data; keep amounts, dates and points for the statistics."""
    cid = customer.id
    gone = "[erased]"
    crm.db.execute(
        update(members_table).where(members_table.c.customer_id == cid).values(birthday=None)
    )
    crm.db.execute(
        update(fuel_profiles)
        .where(fuel_profiles.c.customer_id == cid)
        .values(plate=None, car_model=None, employer=None, details={})
    )
    crm.db.execute(update(waitlist).where(waitlist.c.customer_id == cid).values(contact_phone=None))
    crm.db.execute(
        update(dm_reports)
        .where(dm_reports.c.customer_id == cid, dm_reports.c.note.isnot(None))
        .values(note=gone)
    )
    crm.db.execute(
        update(survey_answers)
        .where(survey_answers.c.customer_id == cid, survey_answers.c.comment.isnot(None))
        .values(comment=gone)
    )
    crm.db.execute(
        update(callbacks_table)
        .where(callbacks_table.c.customer_id == cid, callbacks_table.c.outcome.isnot(None))
        .values(outcome=gone)
    )


@hookimpl
def crm_demo(crm: CRM, command_prefix: str) -> str | None:
    from crm_retail.demo import load

    return load(crm, command_prefix)


@hookimpl
def crm_search_keys() -> list[SearchKey]:
    from crm_retail.finding import search_keys

    return search_keys()


@hookimpl
def crm_segment_conditions() -> list[SegmentCondition]:
    from crm_retail.finding import segment_conditions

    return segment_conditions()
