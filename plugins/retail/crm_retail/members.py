"""Membership, tiers and the points a purchase earns.

Tiers are recomputed from the rolling spend (``tier_window_days``, default 365)
when a transaction is recorded (single and batch) and by the nightly job
``retail.tiers``. Upgrades apply at once; downgrades only at a tier review
(``tier_review_date``), i.e. in the first ``retail.tiers`` run on or after the
review date since the member's last review (or joining).

Longer than most modules: membership, tiers and points change together on every
purchase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, func, insert, or_, select, update

from crm_retail import _util
from crm_retail import points as points_mod
from crm_retail.settings import Settings, is_member_day, settings
from crm_retail.tables import member_day_benefits, members
from crmcore import Conflict, ValidationError, webhooks
from crmcore.parse import clean_text, format_money, parse_date
from crmcore.schema import (
    customer_labels,
    live_customers,
    timeline_entries,
    transactions,
)

TIER_LABEL = "retail.tier"


def _spend(s: Settings, at: dt.datetime, ids: list[int] | Select | None) -> Any:
    start = at - dt.timedelta(days=s["tier_window_days"])
    t = transactions
    q = select(t.c.customer_id, func.sum(t.c.amount_cents).label("spend")).where(
        t.c.occurred_at > start, t.c.occurred_at <= at
    )
    if ids is not None:
        q = q.where(t.c.customer_id.in_(ids))
    return q.group_by(t.c.customer_id).subquery()


def spend_of(crm: Any, customer_id: int, at: dt.datetime) -> int:
    sp = _spend(settings(crm), at, [customer_id])
    return int(crm.db.execute(select(func.coalesce(func.sum(sp.c.spend), 0))).scalar() or 0)


def tier_changes(
    crm: Any,
    at: dt.datetime,
    *,
    ids: Iterable[int] | Select | None = None,
    review_before: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Members whose tier must change as of ``at`` (set-based): upgrades always,
    downgrades only for members last reviewed before ``review_before``."""
    s = settings(crm)
    if ids is not None and not isinstance(ids, Select):
        ids = list(ids)
    sp = _spend(s, at, ids)
    spend = func.coalesce(sp.c.spend, 0)
    target = case(*[(spend >= t.min_spend_cents, t.rank) for t in reversed(s.tiers[1:])], else_=0)
    current = case(*[(members.c.tier == t.name, t.rank) for t in s.tiers], else_=-1)
    change = target > current
    if review_before is not None:
        change = or_(change, and_(target < current, members.c.reviewed_at < review_before))
    q = (
        select(members.c.customer_id, members.c.tier, spend.label("spend"), target.label("target"))
        .select_from(members.outerjoin(sp, sp.c.customer_id == members.c.customer_id))
        .where(change)
        .order_by(members.c.customer_id)
    )
    if ids is not None:
        q = q.where(members.c.customer_id.in_(ids))
    return [
        {
            "customer_id": r.customer_id,
            "from": r.tier,
            "to": s.tiers[int(r.target)].name,
            "spend_cents": int(r.spend),
        }
        for r in crm.db.execute(q)
    ]


BULK_AT = 50  # more tier changes than this in one run are written set-based


def _reason(s: Settings, change: dict[str, Any], review: dt.date | None) -> tuple[str, str]:
    old, new = s.tier(change["from"]), s.tier(change["to"])
    assert new is not None
    spend = format_money(change["spend_cents"])
    window = s["tier_window_days"]
    if old is None:
        return "reassigned", (
            f"tier {change['from']} (no longer configured) -> {new.name}: "
            f"{window}-day spend {spend}"
        )
    if new.rank > old.rank:
        return "upgrade", (
            f"tier {old.name} -> {new.name} (upgrade): {window}-day spend {spend} reached "
            f"the {new.name} threshold {format_money(new.min_spend_cents)}"
        )
    when = f" at the {review.isoformat()} review" if review else ""
    return "downgrade", (
        f"tier {old.name} -> {new.name} (downgrade{when}): {window}-day spend {spend} "
        f"is below the {old.name} threshold {format_money(old.min_spend_cents)}"
    )


def apply_changes(
    crm: Any, changes: list[dict[str, Any]], at: dt.datetime, *, review: dt.date | None = None
) -> None:
    """Write tier changes: the member rows, a timeline entry with the reason each,
    and the ``retail.tier`` label. A few go through ``crm.records.add_timeline_entry`` and
    ``crm.customers.set_label``; many (an import, a review day) are written set-based
    through the query layer, a statement per tier and chunk."""
    if not changes:
        return
    s = settings(crm)
    window = s["tier_window_days"]
    entries = []
    for ch in changes:
        direction, summary = _reason(s, ch, review)
        data = {
            "from": ch["from"],
            "to": ch["to"],
            "direction": direction,
            "spend_cents": ch["spend_cents"],
            "window_days": window,
        }
        entries.append((ch["customer_id"], summary, data))
    by_tier: dict[str, list[int]] = {}
    for ch in changes:
        by_tier.setdefault(ch["to"], []).append(ch["customer_id"])
    for name, ids in by_tier.items():
        for part in _util.chunks(ids):
            crm.db.execute(
                update(members)
                .where(members.c.customer_id.in_(part))
                .values(tier=name, tier_since=at)
            )
    if len(changes) <= BULK_AT:
        for cid, summary, data in entries:
            crm.records.add_timeline_entry(
                cid, "retail.tier", summary, at=at, source=_util.SOURCE, data=data
            )
            crm.customers.set_label(cid, TIER_LABEL, data["to"], source=_util.SOURCE)
        return
    crm.db.insert_rows(
        timeline_entries,
        [
            {
                "customer_id": cid,
                "at": at,
                "kind": "retail.tier",
                "source": _util.SOURCE,
                "summary": summary,
                "data": data,
            }
            for cid, summary, data in entries
        ],
        what="retail tier changes",
    )
    ids = [ch["customer_id"] for ch in changes]
    for part in _util.chunks(ids):
        crm.db.execute(
            customer_labels.delete().where(
                customer_labels.c.customer_id.in_(part), customer_labels.c.name == TIER_LABEL
            )
        )
    crm.db.insert_rows(
        customer_labels,
        [
            {
                "customer_id": ch["customer_id"],
                "name": TIER_LABEL,
                "value": ch["to"],
                "source": _util.SOURCE,
                "as_of": at,
            }
            for ch in changes
        ],
        what="retail tier labels",
    )


def join(
    crm: Any,
    customer: Any,
    *,
    member_no: str | None = None,
    birthday: dt.date | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Make a customer a member (member card number ``member_no``, generated as
    PREFIX + 8-digit customer id when not given). The starting tier is the one
    the rolling spend already qualifies for."""
    with crm.transaction(command="retail member join"):
        c = _util.customer_row(crm, customer)
        s = settings(crm)
        when = at or crm.now()
        existing = crm.db.execute(select(members).where(members.c.customer_id == c.id)).first()
        if existing is not None:
            raise Conflict(f"customer {c.id} ({c.name}) is already member {existing.member_no}")
        number = clean_text(member_no, field="member number", max_len=32, required=False)
        if number is None:
            number = f"{s['member_no_prefix']}{c.id:08d}"
        elif not all(ch.isalnum() or ch in "-_" for ch in number):
            raise ValidationError(f"member number {number!r}: letters, digits, '-' and '_' only")
        if crm.db.exists_globally(members, member_no=number):
            # a uniqueness refusal: whose number it is stays hidden
            raise Conflict(f"member number {number} is already used")
        bday = check_birthday(birthday, when)
        spend = spend_of(crm, c.id, when)
        tier = s.qualifying(spend)
        crm.db.execute(
            insert(members).values(
                customer_id=c.id,
                member_no=number,
                joined_at=when,
                tier=tier.name,
                tier_since=when,
                reviewed_at=when,
                points_balance=0,
                birthday=bday,
            )
        )
        crm.records.add_timeline_entry(
            c.id,
            "retail.member",
            f"joined as member {number}, tier {tier.name} "
            f"({s['tier_window_days']}-day spend {format_money(spend)})",
            at=when,
            source=_util.SOURCE,
            data={"member_no": number, "tier": tier.name, "spend_cents": spend},
        )
        crm.customers.set_label(c.id, TIER_LABEL, tier.name, source=_util.SOURCE)
        webhooks.publish(
            crm,
            "retail.member_joined",
            {"customer_id": c.id, "member_no": number, "tier": tier.name, "at": when},
            customer_id=c.id,
            source=_util.SOURCE,
        )
    return member_info(crm, c.id)


def check_birthday(value: Any, now: dt.datetime) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_date(value, field="birthday")
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise ValidationError(f"birthday: expected a date, got {type(value).__name__}")
    if not dt.date(1900, 1, 1) <= value <= now.date():
        raise ValidationError(f"birthday: {value.isoformat()} is not between 1900-01-01 and today")
    return value


def set_birthday(crm: Any, customer: Any, birthday: Any) -> dict[str, Any]:
    with crm.transaction(command="retail member birthday"):
        c = _util.customer_row(crm, customer)
        if points_mod.member_row(crm, c.id) is None:
            raise ValidationError(f"customer {c.id} ({c.name}) is not a member: join first")
        crm.db.execute(
            update(members)
            .where(members.c.customer_id == c.id)
            .values(birthday=check_birthday(birthday, crm.now()))
        )
    return member_info(crm, c.id)


def member_info(crm: Any, customer: Any) -> dict[str, Any]:
    with crm.transaction(write=False):
        c = _util.customer_row(crm, customer)
        m = points_mod.member_row(crm, c.id)
        if m is None:
            raise ValidationError(f"customer {c.id} ({c.name}) is not a member")
        s = settings(crm)
        tier = s.tier(m.tier)
        now = crm.now()
        spend = spend_of(crm, c.id, now)
        nxt = next((t for t in s.tiers if tier is not None and t.rank == tier.rank + 1), None)
    return {
        "customer_id": c.id,
        "name": c.name,
        "member_no": m.member_no,
        "joined_at": m.joined_at,
        "tier": m.tier,
        "tier_since": m.tier_since,
        "multiplier": tier.multiplier if tier else None,
        "benefits": list(tier.benefits) if tier else [],
        "points_balance": int(m.points_balance),
        "birthday": m.birthday,
        "rolling_spend_cents": spend,
        "next_tier": nxt.name if nxt else None,
        "to_next_tier_cents": max(nxt.min_spend_cents - spend, 0) if nxt else None,
    }


def list_members(crm: Any, *, tier: str | None = None) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        q = (
            select(members, live_customers.c.name)
            .join(live_customers, live_customers.c.id == members.c.customer_id)
            .order_by(members.c.member_no)
        )
        if tier is not None:
            q = q.where(members.c.tier == tier)
        rows = crm.db.execute(q).all()
    return [
        {
            "customer_id": r.customer_id,
            "name": r.name,
            "member_no": r.member_no,
            "tier": r.tier,
            "points_balance": int(r.points_balance),
            "joined_at": r.joined_at,
        }
        for r in rows
    ]


# -- reacting to purchases -----------------------------------------------------------------
def on_transaction(crm: Any, tx: Any) -> None:
    """A purchase by a member: upgrade if it qualifies, then accrue points (at
    the tier held after the upgrade; member-day bonus recorded)."""
    m = points_mod.member_row(crm, tx.customer_id)
    if m is None:
        return
    now = max(crm.now(), tx.occurred_at)  # a till clock ahead of ours still counts
    s = settings(crm)
    changes = _upgrade(crm, s, m, now)
    apply_changes(crm, changes, now)
    if tx.occurred_at < m.joined_at:
        return  # bought before joining: counts for the tier, earns no points
    tier = s.tier(changes[0]["to"] if changes else m.tier) or s.tiers[0]
    md = is_member_day(s, tx.occurred_at.date())
    pts, extra = points_mod.accrual(s, tx.amount_cents, tier, md)
    if md and tx.amount_cents > 0:
        crm.db.execute(
            insert(member_day_benefits).values(
                customer_id=tx.customer_id,
                transaction_id=tx.id,
                day=tx.occurred_at.date(),
                amount_cents=tx.amount_cents,
                discount_cents=_discount(s, tx.amount_cents),
                extra_points=extra,
            )
        )
    points_mod.credit(
        crm,
        tx.customer_id,
        pts,
        kind="accrual",
        ref=f"tx:{tx.id}",
        at=tx.occurred_at,
        reason=_accrual_reason(tx.amount_cents, tier, md, s),
    )


_WINDOW_SPEND = select(func.coalesce(func.sum(transactions.c.amount_cents), 0)).where(
    transactions.c.customer_id == bindparam("cid"),
    transactions.c.occurred_at > bindparam("start"),
    transactions.c.occurred_at <= bindparam("at"),
)


def _upgrade(crm: Any, s: Settings, m: Any, at: dt.datetime) -> list[dict[str, Any]]:
    """``tier_changes(crm, at, ids=[member])`` for one member whose row ``m`` is
    already read, without a downgrade review: a member at the top tier cannot go
    up (no query); else one indexed sum of the rolling spend."""
    current = s.rank(m.tier)
    if current == s.tiers[-1].rank:
        return []
    start = at - dt.timedelta(days=s["tier_window_days"])
    got = crm.db.execute(_WINDOW_SPEND, {"cid": m.customer_id, "start": start, "at": at}).first()
    spend = int(got[0] or 0)
    target = s.qualifying(spend)
    if target.rank <= current:
        return []
    return [{"customer_id": m.customer_id, "from": m.tier, "to": target.name, "spend_cents": spend}]


def on_batch(crm: Any, batch: Any) -> None:
    """An import: upgrades for the batch's members in one statement, then the
    points of every member purchase of the batch, inserted in bulk."""
    t = transactions
    in_batch = (t.c.id >= batch.first_id) & (t.c.id <= batch.last_id)
    # the batch's customers as a subquery: never an IN list of tens of thousands of ids
    ids = select(t.c.customer_id).where(in_batch)
    if (
        crm.db.execute(select(members.c.id).where(members.c.customer_id.in_(ids)).limit(1)).first()
        is None
    ):
        return
    latest = crm.db.execute(select(func.max(t.c.occurred_at)).where(in_batch)).scalar()
    now = max(crm.now(), latest) if latest is not None else crm.now()
    apply_changes(crm, tier_changes(crm, now, ids=ids), now)
    s = settings(crm)
    rows = crm.db.execute(
        select(t.c.id, t.c.customer_id, t.c.occurred_at, t.c.amount_cents, members.c.tier)
        .join(members, members.c.customer_id == t.c.customer_id)
        .where(in_batch, t.c.amount_cents > 0, t.c.occurred_at >= members.c.joined_at)
        .order_by(t.c.id)
    )
    lots, benefits = [], []
    tiers = {t.name: t for t in s.tiers}
    md_days: dict[dt.date, bool] = {}
    for r in rows:
        tier = tiers.get(r.tier) or s.tiers[0]
        day = r.occurred_at.date()
        md = md_days.get(day)
        if md is None:
            md = md_days[day] = is_member_day(s, day)
        pts, extra = points_mod.accrual(s, r.amount_cents, tier, md)
        if md:
            benefits.append(
                {
                    "customer_id": r.customer_id,
                    "transaction_id": r.id,
                    "day": day,
                    "amount_cents": r.amount_cents,
                    "discount_cents": _discount(s, r.amount_cents),
                    "extra_points": extra,
                }
            )
        if pts > 0:
            lots.append(
                {
                    "customer_id": r.customer_id,
                    "at": r.occurred_at,
                    "delta": pts,
                    "kind": "accrual",
                    "reason": _accrual_reason(r.amount_cents, tier, md, s),
                    "ref": f"tx:{r.id}",
                    "expires_at": points_mod.expires_at(s, r.occurred_at),
                    "remaining": pts,
                }
            )
    crm.db.insert_rows(member_day_benefits, benefits, what="retail member-day benefits")
    crm.db.insert_rows(points_mod.points, lots, what="retail points accrual (import)")
    points_mod.sync_balances(crm, ids)


def _discount(s: Settings, amount_cents: int) -> int:
    bp = round(s["member_day"]["discount"] * 10_000)
    return max(amount_cents, 0) * bp // 10_000


def _accrual_reason(amount_cents: int, tier: Any, md: bool, s: Settings) -> str:
    text = f"purchase {format_money(amount_cents)} at {tier.name} x{tier.multiplier:g}"
    if md:
        text += f", member day x{s['member_day']['points_multiplier']:g}"
    return text


# -- the nightly job --------------------------------------------------------------------------
def run_tiers(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Job ``retail.tiers``: upgrades for everyone who qualifies; downgrades for
    members not yet reviewed at the latest review date; then marks them reviewed."""
    s = settings(crm)
    review = s.last_review(at.date())
    review_at = dt.datetime.combine(review, dt.time())
    changes = tier_changes(crm, at, review_before=review_at)
    apply_changes(crm, changes, at, review=review)
    reviewed = crm.db.execute(
        update(members).where(members.c.reviewed_at < review_at).values(reviewed_at=review_at)
    ).rowcount
    ups = sum(1 for c in changes if s.rank(c["to"]) > s.rank(c["from"]))
    return {
        "review_date": review.isoformat(),
        "upgrades": ups,
        "downgrades": len(changes) - ups,
        "reviewed": reviewed,
        "changes": changes,
    }
