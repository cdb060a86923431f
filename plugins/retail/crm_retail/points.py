"""The points ledger: accrual, rewards, redemption (FIFO) and expiry.

Invariant: a member's ``points_balance`` equals the sum of their ledger
``delta``s, and equals the sum of ``remaining`` over their lots. Every write
re-derives the balance from the ledger in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import DateTime, String, bindparam, cast, func, insert, literal, select, update

from crm_retail import _util
from crm_retail.settings import Settings, Tier, settings
from crm_retail.tables import members, points
from crmcore import ValidationError
from crmcore.parse import clean_text

KINDS = ("accrual", "redeem", "expire", "reward")


def accrual(s: Settings, amount_cents: int, tier: Tier, member_day: bool) -> tuple[int, int]:
    """(points, of which member-day extra) for a purchase; integer arithmetic,
    rounded down. Purchases of zero or less earn nothing."""
    if amount_cents <= 0:
        return 0, 0
    base = amount_cents * s["points_per_yuan"] * tier.multiplier_milli  # x 100 (cents) x 1000
    plain = base // 100_000
    if not member_day:
        return plain, 0
    md_milli = round(s["member_day"]["points_multiplier"] * 1000)
    total = base * md_milli // 100_000_000
    return total, total - plain


def expires_at(s: Settings, at: dt.datetime) -> dt.datetime | None:
    days = s["points_expiry_days"]
    return at + dt.timedelta(days=days) if days else None


def sync_balances(crm: Any, customer_ids: Iterable[int] | Any) -> None:
    """Set ``points_balance`` to the ledger sum for these customers (a list or a
    subquery of customer ids), in one statement."""
    total = (
        select(func.coalesce(func.sum(points.c.delta), 0))
        .where(points.c.customer_id == members.c.customer_id)
        .scalar_subquery()
    )
    crm.db.execute(
        update(members).where(members.c.customer_id.in_(customer_ids)).values(points_balance=total)
    )


def credit(
    crm: Any,
    customer_id: int,
    delta: int,
    *,
    kind: str,
    reason: str,
    ref: str | None,
    at: dt.datetime,
) -> int | None:
    """Add a lot (accrual or reward) and re-derive the balance. A ``ref`` already
    in the ledger is not credited again (returns None)."""
    if delta <= 0:
        return None
    if ref is not None and crm.db.execute(_BY_REF, {"ref": ref}).first() is not None:
        return None
    lot = insert(points).values(
        customer_id=customer_id,
        at=at,
        delta=delta,
        kind=kind,
        reason=reason,
        ref=ref,
        expires_at=expires_at(settings(crm), at),
        remaining=delta,
    )
    lot_id = crm.db.execute(lot).inserted_primary_key[0]
    sync_balances(crm, [customer_id])
    return lot_id


# built once (every purchase runs them); SQLAlchemy caches their compiled form
_BY_REF = select(points.c.id).where(points.c.ref == bindparam("ref")).limit(1)
_MEMBER_ROW = select(members).where(members.c.customer_id == bindparam("cid"))


def member_row(crm: Any, customer_id: int, *, lock: bool = False) -> Any:
    if lock:
        stmt = select(members).where(members.c.customer_id == customer_id).with_for_update()
        return crm.db.execute(stmt).first()
    return crm.db.execute(_MEMBER_ROW, {"cid": customer_id}).first()


def redeem(
    crm: Any,
    customer: Any,
    amount: int,
    *,
    reason: str = "",
    ref: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Redeem ``amount`` points, consuming the oldest lots first. More than the
    balance is refused and nothing changes."""
    with crm.transaction(command="retail points redeem"):
        c = _util.customer_row(crm, customer)
        amount = _util.positive_int(amount, "points to redeem")
        reason = clean_text(reason, field="reason", max_len=500, required=False) or "redeemed"
        ref = clean_text(ref, field="ref", max_len=64, required=False)
        m = member_row(crm, c.id, lock=True)
        if m is None:
            raise ValidationError(f"customer {c.id} ({c.name}) is not a member: join first")
        if amount > m.points_balance:
            raise ValidationError(
                f"customer {c.id} ({c.name}) has {m.points_balance} points; cannot redeem {amount}"
            )
        if (
            ref is not None
            and crm.db.execute(select(points.c.id).where(points.c.ref == ref)).first()
        ):
            raise ValidationError(f"points ref {ref!r} was already used; nothing redeemed")
        when = at or crm.now()
        lots = crm.db.execute(
            select(points.c.id, points.c.remaining)
            .where(points.c.customer_id == c.id, points.c.remaining > 0)
            .order_by(points.c.at, points.c.id)
        ).all()
        left = amount
        for lot in lots:
            if left == 0:
                break
            take = min(left, int(lot.remaining))
            crm.db.execute(
                update(points)
                .where(points.c.id == lot.id)
                .values(remaining=points.c.remaining - take)
            )
            left -= take
        if left:  # the lots disagree with the balance: never leave a half-done redemption
            raise ValidationError(
                f"customer {c.id}: points lots hold {amount - left}, less than "
                f"the balance; nothing redeemed (run the expiry job and retry)"
            )
        res = crm.db.execute(
            insert(points).values(
                customer_id=c.id,
                at=when,
                delta=-amount,
                kind="redeem",
                reason=reason,
                ref=ref,
                remaining=0,
            )
        )
        sync_balances(crm, [c.id])
        balance = member_row(crm, c.id).points_balance
    return {
        "customer_id": c.id,
        "redeemed": amount,
        "balance": int(balance),
        "ledger_id": res.inserted_primary_key[0],
        "at": when,
    }


def run_expiry(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Job ``retail.points_expiry``: expire, set-based and FIFO by lot, every
    unredeemed remainder whose lot is past its expiry. Idempotent: a lot is
    expired once (its remainder becomes 0; the expire row's ref is unique)."""
    due = (points.c.remaining > 0) & (points.c.expires_at <= at)
    total = crm.db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(points.c.remaining), 0),
            func.count(func.distinct(points.c.customer_id)),
        ).where(due)
    ).one()
    if not total[0]:
        return {"expired_lots": 0, "expired_points": 0, "members": 0}
    days = settings(crm)["points_expiry_days"]
    crm.db.execute(
        insert(points).from_select(
            ["customer_id", "at", "delta", "kind", "reason", "ref", "remaining"],
            select(
                points.c.customer_id,
                literal(at, DateTime),
                -points.c.remaining,
                literal("expire", String),
                literal(f"unredeemed for {days} days", String),
                literal("expire:", String) + cast(points.c.id, String(20)),
                literal(0),
            ).where(due),
        )
    )
    crm.db.execute(update(points).where(due).values(remaining=0))
    expired_now = select(points.c.customer_id).where(points.c.kind == "expire", points.c.at == at)
    sync_balances(crm, expired_now)
    return {
        "expired_lots": int(total[0]),
        "expired_points": int(total[1]),
        "members": int(total[2]),
    }


def ledger(crm: Any, customer: Any) -> dict[str, Any]:
    with crm.transaction(write=False):
        c = _util.customer_row(crm, customer)
        m = member_row(crm, c.id)
        if m is None:
            raise ValidationError(f"customer {c.id} ({c.name}) is not a member")
        rows = crm.db.execute(
            select(points).where(points.c.customer_id == c.id).order_by(points.c.at, points.c.id)
        ).all()
    entries = [
        {
            "id": r.id,
            "at": r.at,
            "delta": int(r.delta),
            "kind": r.kind,
            "reason": r.reason,
            "ref": r.ref,
            "expires_at": r.expires_at,
            "remaining": int(r.remaining),
        }
        for r in rows
    ]
    return {
        "customer_id": c.id,
        "member_no": m.member_no,
        "balance": int(m.points_balance),
        "ledger_sum": sum(e["delta"] for e in entries),
        "entries": entries,
    }
