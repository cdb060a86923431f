"""Campaigns: a saved segment x a message template x a channel x a schedule.

A run (``send``) selects, in one statement through the access filter, the
segment's members who consent to the channel and have its address and whom
this occurrence has not selected yet; a deterministic hold-out share of them
(per campaign and customer) is recorded and never messaged, the others get one
message each through the outbox, keyed by (campaign, occurrence, customer), so
a re-run sends nothing twice. ``dry_run`` is the same selection without writing.
``report`` compares the purchases of reached and held-out customers after it
(:mod:`crmcore.campaigns.report`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
from typing import Any

from sqlalchemy import func, select

from crmcore.campaigns import schedule as schedule_mod
from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.parse import clean_key, clean_text
from crmcore.schema import campaign_recipients, campaigns, live_customers, segments
from crmcore.segments import where_clause

CHANNELS = {"sms": ("phone", "consent_sms"), "email": ("email", "consent_email")}
PLACEHOLDERS = ("name", "external_id")
SAMPLE = 5
MAX_TEMPLATE = 1000


def _check_template(template: str) -> str:
    text = clean_text(template, field="template", max_len=MAX_TEMPLATE, multiline=True) or ""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as e:
        raise ValidationError(f"template: {e}") from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            f"template: unknown placeholder(s) {unknown}; available: "
            + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        )
    return text


def render(template: str, row: Any) -> str:
    """The message for one customer (placeholders checked when the campaign was added)."""
    return template.format(name=row.name, external_id=row.external_id or "")


def in_holdout(campaign_id: int, customer_id: int, percent: int) -> bool:
    """Whether the customer is held out of the campaign: the same answer every
    run (a digest of campaign and customer), ``percent`` in 100 on average."""
    digest = hashlib.sha256(f"campaign:{campaign_id}:customer:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def parse_holdout(text: str | None) -> int:
    """``10%`` or ``10`` -> 10 (0 to 50)."""
    if text is None:
        return 0
    raw = text.strip().removesuffix("%").strip()
    if not raw.isascii() or not raw.isdigit() or not 0 <= int(raw) <= 50:
        raise ValidationError(f"--holdout {text!r}: a whole percentage from 0% to 50%")
    return int(raw)


def _plain(row: Any, segment_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "segment": segment_name,
        "channel": row.channel,
        "template": row.template,
        "schedule": row.schedule,
        "holdout_percent": row.holdout_percent,
        "created_at": row.created_at.isoformat(),
    }


def _campaign(crm: Any, name: str) -> tuple[Any, str]:
    name = clean_key(name, field="campaign name", max_len=64)
    row = crm.db.execute(
        select(campaigns, segments.c.name.label("segment_name"))
        .join(segments, segments.c.id == campaigns.c.segment_id)
        .where(campaigns.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"campaign {name!r} not found; see `crm campaign list`")
    return row, row.segment_name


def add_campaign(
    crm: Any,
    name: str,
    *,
    segment: str,
    channel: str,
    template: str,
    schedule: Any,
    holdout_percent: int = 0,
) -> dict[str, Any]:
    """Save a campaign (needs 'configure'): the segment must exist, the channel
    be ``sms`` or ``email``, the template use only known placeholders."""
    name = clean_key(name, field="campaign name", max_len=64)
    if channel not in CHANNELS:
        raise ValidationError(f"channel {channel!r}; a campaign goes by {' or '.join(CHANNELS)}")
    if not isinstance(holdout_percent, int) or not 0 <= holdout_percent <= 50:
        raise ValidationError(f"holdout {holdout_percent!r}: a percentage from 0 to 50")
    text = _check_template(template)
    plan = schedule_mod.validate(schedule)
    with crm.transaction() as db:
        seg = db.execute(select(segments.c.id).where(segments.c.name == segment)).first()
        if seg is None:
            raise NotFound(f"segment {segment!r} not found; see `crm segment list`")
        if db.exists_globally(campaigns, name=name):
            raise Conflict(f"campaign {name!r} already exists")
        db.execute(
            campaigns.insert().values(
                name=name,
                segment_id=seg.id,
                channel=channel,
                template=text,
                schedule=plan,
                holdout_percent=holdout_percent,
                created_at=crm.now(),
            )
        )
        return _plain(*_campaign(crm, name))


def list_campaigns(crm: Any) -> list[dict[str, Any]]:
    """Every campaign, by name."""
    with crm.transaction(write=False) as db:
        rows = db.execute(
            select(campaigns, segments.c.name.label("segment_name"))
            .join(segments, segments.c.id == campaigns.c.segment_id)
            .order_by(campaigns.c.name)
        ).all()
        return [_plain(r, r.segment_name) for r in rows]


def show_campaign(crm: Any, name: str) -> dict[str, Any]:
    """One campaign, with how many customers each occurrence selected so far."""
    with crm.transaction(write=False) as db:
        row, seg = _campaign(crm, name)
        runs = db.execute(
            select(
                campaign_recipients.c.occurrence,
                func.count().label("selected"),
                func.count(campaign_recipients.c.message_id).label("messaged"),
            )
            .where(campaign_recipients.c.campaign_id == row.id)
            .group_by(campaign_recipients.c.occurrence)
            .order_by(campaign_recipients.c.occurrence)
        ).all()
        return _plain(row, seg) | {
            "occurrences": [
                {"occurrence": r.occurrence, "selected": r.selected, "messaged": r.messaged}
                for r in runs
            ]
        }


def _eligible(crm: Any, row: Any, occurrence: str, at: dt.datetime) -> Any:
    """The segment's members who consent to the channel and have its address,
    not yet selected by this occurrence: one statement, scoped by ``crm.db``."""
    conditions = crm.db.execute(
        select(segments.c.conditions).where(segments.c.id == row.segment_id)
    ).scalar_one()
    address, consent = CHANNELS[row.channel]
    done = select(campaign_recipients.c.customer_id).where(
        campaign_recipients.c.campaign_id == row.id,
        campaign_recipients.c.occurrence == occurrence,
    )
    return (
        select(live_customers.c.id, live_customers.c.name, live_customers.c.external_id)
        .where(
            where_clause(crm, conditions, at),
            live_customers.c[consent].is_(True),
            live_customers.c[address].is_not(None),
            live_customers.c.id.not_in(done),
        )
        .order_by(live_customers.c.id)
    )


def _plan(crm: Any, name: str, at: dt.datetime | None) -> dict[str, Any]:
    row, seg = _campaign(crm, name)
    when = at or crm.now()
    occurrence, due = schedule_mod.occurrence(row.schedule, when)
    rows = crm.db.execute(_eligible(crm, row, occurrence, when)).all()
    held = [r for r in rows if in_holdout(row.id, r.id, row.holdout_percent)]
    held_ids = {r.id for r in held}
    return {
        "row": row,
        "segment": seg,
        "at": when,
        "occurrence": occurrence,
        "due": due,
        "send": [r for r in rows if r.id not in held_ids],
        "held": held,
    }


def _summary(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "campaign": plan["row"].name,
        "segment": plan["segment"],
        "channel": plan["row"].channel,
        "occurrence": plan["occurrence"],
        "at": plan["at"].isoformat(),
        "due": plan["due"],
        "eligible": len(plan["send"]) + len(plan["held"]),
        "holdout": len(plan["held"]),
    }


def dry_run(crm: Any, name: str, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """What ``send`` at ``at`` would do, writing nothing: how many would get
    the message (after consent and the hold-out) and a sample of them."""
    with crm.transaction(write=False):
        plan = _plan(crm, name, at)
        template = plan["row"].template
        return _summary(plan) | {
            "would_send": len(plan["send"]),
            "sample": [
                {"customer_id": r.id, "body": render(template, r)} for r in plan["send"][:SAMPLE]
            ],
        }


def send(crm: Any, name: str, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """Run the campaign's occurrence due at ``at``: record the held-out members,
    queue one message per other eligible member (delivered by ``crm outbox
    send``); nothing when it is not due. One transaction: all or nothing."""
    with crm.transaction() as db:
        db.require_write()
        plan = _plan(crm, name, at)
        if not plan["due"]:
            return _summary(plan) | {"sent": 0, "held_out": 0}
        row, when, occurrence = plan["row"], plan["at"], plan["occurrence"]
        for r in plan["held"]:
            db.execute(
                campaign_recipients.insert().values(
                    campaign_id=row.id,
                    customer_id=r.id,
                    occurrence=occurrence,
                    holdout=True,
                    message_id=None,
                    at=when,
                )
            )
        sent = 0
        for r in plan["send"]:
            message = crm.messages.enqueue(
                row.channel,
                body=render(row.template, r),
                customer=r.id,
                key=f"campaign:{row.id}:{occurrence}:{r.id}",
            )
            sent += message is not None
            db.execute(
                campaign_recipients.insert().values(
                    campaign_id=row.id,
                    customer_id=r.id,
                    occurrence=occurrence,
                    holdout=False,
                    message_id=None if message is None else message.id,
                    at=when,
                )
            )
        return _summary(plan) | {"sent": sent, "held_out": len(plan["held"])}


def remove_campaign(crm: Any, name: str) -> dict[str, Any]:
    """Delete a campaign that has never run (its recipients are its history)."""
    with crm.transaction() as db:
        row, _ = _campaign(crm, name)
        if db.exists_globally(campaign_recipients, campaign_id=row.id):
            raise Conflict(f"campaign {row.name!r} has run; its history stays")
        db.execute(campaigns.delete().where(campaigns.c.id == row.id))
        return {"removed": row.name}


__all__ = [
    "add_campaign",
    "dry_run",
    "in_holdout",
    "list_campaigns",
    "parse_holdout",
    "remove_campaign",
    "render",
    "send",
    "show_campaign",
]
