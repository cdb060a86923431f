"""Poster (DM) price error reports, rewarded with points.

A member reports a product whose poster (DM) price differs from the shelf or
till price; staff verify or reject it. A verified report credits
``dm_reward_points`` once per product per promotion: the first verified report
of that product in that promotion earns them, later ones are verified without a
reward.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, update

from crm_retail import _util
from crm_retail import points as points_mod
from crm_retail.settings import settings
from crm_retail.tables import dm_reports
from crmcore import NotFound, TransitionError, ValidationError
from crmcore.parse import clean_text, format_money


def _row(crm: Any, report_id: Any) -> Any:
    try:
        rid = int(report_id)
    except (TypeError, ValueError):
        raise NotFound(f"DM report {report_id!r}: expected a report number") from None
    row = crm.db.execute(select(dm_reports).where(dm_reports.c.id == rid)).first()
    if row is None:
        raise NotFound(f"DM report {rid} not found")
    return row


def as_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "product": r.product,
        "promotion": r.promotion,
        "poster_price_cents": int(r.poster_price_cents),
        "till_price_cents": int(r.till_price_cents),
        "reported_at": r.reported_at,
        "status": r.status,
        "decided_at": r.decided_at,
        "note": r.note,
        "reward_points": int(r.reward_points),
    }


def report(
    crm: Any,
    customer: Any,
    *,
    product: str,
    promotion: str,
    poster_price: Any,
    till_price: Any,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail dm report"):
        c = _util.customer_row(crm, customer)
        product = clean_text(product, field="product", max_len=200) or ""
        promotion = clean_text(promotion, field="promotion", max_len=100) or ""
        poster = _util.cents(poster_price, "poster price")
        till = _util.cents(till_price, "till price")
        note = clean_text(note, field="note", max_len=2000, required=False, multiline=True)
        if poster == till:
            raise ValidationError(
                f"poster price {format_money(poster)} equals the till price: "
                "there is no price error to report"
            )
        if points_mod.member_row(crm, c.id) is None:
            raise ValidationError(
                f"customer {c.id} ({c.name}) is not a member: the reward is "
                "paid in points, join first"
            )
        when = at or crm.now()
        res = crm.db.execute(
            insert(dm_reports).values(
                customer_id=c.id,
                product=product,
                promotion=promotion,
                poster_price_cents=poster,
                till_price_cents=till,
                reported_at=when,
                status="reported",
                note=note,
                reward_points=0,
            )
        )
        rid = res.inserted_primary_key[0]
        crm.records.add_timeline_entry(
            c.id,
            "retail.dm",
            f"reported DM price error {rid}: {product} in "
            f"{promotion}, poster {format_money(poster)} vs till {format_money(till)}",
            at=when,
            source=_util.SOURCE,
            data={"report_id": rid},
        )
        return as_dict(_row(crm, rid))


def decide(crm: Any, report_id: Any, *, verified: bool, note: str | None = None) -> dict[str, Any]:
    """Verify (crediting the reward if this product/promotion was not rewarded
    yet) or reject (``note`` says why) a reported price error."""
    with crm.transaction(command="retail dm verify" if verified else "retail dm reject"):
        r = _row(crm, report_id)
        crm.db.require_customer(r.customer_id, write=True)
        note = clean_text(note, field="note", max_len=2000, required=not verified, multiline=True)
        if r.status != "reported":
            raise TransitionError(f"DM report {r.id} is already {r.status}")
        now = crm.now()
        values: dict[str, Any] = {
            "status": "verified" if verified else "rejected",
            "decided_at": now,
            "decided_by": crm.db.principal.staff_id,
        }
        if note:
            values["note"] = note
        summary = f"DM price error {r.id} ({r.product}) rejected: {note}"
        if verified:
            key = f"{_util.key_of(r.promotion)}|{_util.key_of(r.product)}"
            rewarded = crm.db.exists_globally(dm_reports, reward_key=key)
            first = (
                crm.db.execute(
                    select(dm_reports.c.id).where(dm_reports.c.reward_key == key)
                ).first()
                if rewarded
                else None
            )  # the earlier report is named only when the principal may see it
            reward = settings(crm)["dm_reward_points"] if not rewarded else 0
            if reward:
                values |= {"reward_key": key, "reward_points": reward}
                summary = f"DM price error {r.id} ({r.product}) verified: {reward} points reward"
            else:
                why = (
                    f"already rewarded (report {first.id})"
                    if first
                    else ("already rewarded" if rewarded else "reward is 0")
                )
                summary = f"DM price error {r.id} ({r.product}) verified: no reward, {why}"
        crm.db.execute(update(dm_reports).where(dm_reports.c.id == r.id).values(**values))
        if verified and values.get("reward_points"):
            points_mod.credit(
                crm,
                r.customer_id,
                values["reward_points"],
                kind="reward",
                reason=f"DM price error {r.id}: {r.product} ({r.promotion})",
                ref=f"dm:{r.id}",
                at=now,
            )
        crm.records.add_timeline_entry(
            r.customer_id,
            "retail.dm",
            summary,
            at=now,
            source=_util.SOURCE,
            data={"report_id": r.id, "status": values["status"]},
        )
        return as_dict(_row(crm, r.id))


def list_reports(crm: Any, *, status: str | None = None) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        q = select(dm_reports).order_by(dm_reports.c.id)
        if status is not None:
            q = q.where(dm_reports.c.status == status)
        return [as_dict(r) for r in crm.db.execute(q)]
