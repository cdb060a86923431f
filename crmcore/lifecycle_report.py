"""The loss rate per period, owner and team, and the exit reasons of lost customers.

For a period [from, to): the customers *active at the start* are those whose
last recorded stage move before ``from`` is into a stage other than the lost
stage (``[crm.lifecycle] lost_stage``, default ``lost``); the *lost* are those
of them moved into the lost stage during the period; the loss rate is lost /
active at the start. Owner and team are the customer's current owner and that
owner's team. Exit reasons (``crm lifecycle exit-reason``) recorded in the
period are counted by reason. Merged records are not counted (their history
is the survivor's); forgotten customers are (they were customers then). Every
figure is of the customers the acting principal may see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from crmcore.errors import ValidationError
from crmcore.schema import customers, exit_reasons, staff, stage_changes

PERIODS = ("whole", "month")


def periods(start: dt.datetime, end: dt.datetime, by: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) as one period, or cut at each month's first day."""
    if end <= start:
        raise ValidationError(f"--to {end:%Y-%m-%d} must be after --from {start:%Y-%m-%d}")
    if by not in PERIODS:
        raise ValidationError(f"--by {by!r}; expected one of {', '.join(PERIODS)}")
    if by == "whole":
        return [(start, end)]
    out: list[tuple[dt.datetime, dt.datetime]] = []
    a = start
    while a < end:
        month = dt.datetime(a.year + a.month // 12, a.month % 12 + 1, 1)
        b = min(month, end)
        out.append((a, b))
        a = b
    return out


def _rate(lost: int, active: int) -> float | None:
    return round(lost / active, 4) if active else None


def _period(crm: Any, a: dt.datetime, b: dt.datetime, lost_stage: str) -> dict[str, Any]:
    sc = stage_changes
    last = (
        select(sc.c.customer_id, func.max(sc.c.id).label("last_id"))
        .where(sc.c.at < a)
        .group_by(sc.c.customer_id)
        .subquery("last_move")
    )
    start_move = stage_changes.alias("start_move")
    active = (
        select(last.c.customer_id)
        .join(start_move, start_move.c.id == last.c.last_id)
        .where(start_move.c.to_stage != lost_stage)
        .subquery("active")
    )
    lost = (
        select(sc.c.customer_id)
        .where(sc.c.to_stage == lost_stage, sc.c.at >= a, sc.c.at < b)
        .distinct()
        .subquery("lost")
    )
    source = (
        active.join(customers, customers.c.id == active.c.customer_id)
        .outerjoin(lost, lost.c.customer_id == active.c.customer_id)
        .outerjoin(staff, staff.c.id == customers.c.owner_id)
    )
    stmt = (
        select(
            staff.c.key,
            staff.c.team,
            func.count(active.c.customer_id),
            func.count(lost.c.customer_id),
        )
        .select_from(source)
        .where(customers.c.merged_into_id.is_(None))
        .group_by(staff.c.key, staff.c.team)
        .order_by(staff.c.key)
    )
    by_owner: list[dict[str, Any]] = []
    teams: dict[str | None, list[int]] = {}
    for key, team, n_active, n_lost in crm.db.execute(stmt):
        by_owner.append(
            {
                "owner": key,
                "team": team,
                "active_at_start": n_active,
                "lost": n_lost,
                "loss_rate": _rate(n_lost, n_active),
            }
        )
        sums = teams.setdefault(team, [0, 0])
        sums[0] += n_active
        sums[1] += n_lost
    reasons = crm.db.execute(
        select(exit_reasons.c.reason, func.count())
        .where(exit_reasons.c.at >= a, exit_reasons.c.at < b)
        .group_by(exit_reasons.c.reason)
        .order_by(func.count().desc(), exit_reasons.c.reason)
    ).all()
    total_active = sum(r["active_at_start"] for r in by_owner)
    total_lost = sum(r["lost"] for r in by_owner)
    return {
        "from": a.isoformat(),
        "to": b.isoformat(),
        "active_at_start": total_active,
        "lost": total_lost,
        "loss_rate": _rate(total_lost, total_active),
        "by_owner": by_owner,
        "by_team": [
            {"team": t, "active_at_start": s[0], "lost": s[1], "loss_rate": _rate(s[1], s[0])}
            for t, s in sorted(teams.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ],
        "exit_reasons": {reason: n for reason, n in reasons},
    }


def report(crm: Any, start: dt.datetime, end: dt.datetime, *, by: str = "whole") -> dict[str, Any]:
    """The loss report from ``start`` to ``end`` (see the module docstring), in
    the open transaction."""
    lost_stage = crm.config.core["lifecycle"]["lost_stage"]
    return {
        "lost_stage": lost_stage,
        "periods": [_period(crm, a, b, lost_stage) for a, b in periods(start, end, by)],
    }
