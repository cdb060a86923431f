"""Opportunity lists (机遇式分析, opportunity-driven analysis): policies at a turning point within a
horizon, each naming the customer, the policy, the date and the serving agent.

- ``renewal``: an active long-term policy whose next premium (``paid_to``) falls
  due in ``[now, now + horizon]`` and before its payment end; or an active
  short-term policy whose cover ends (``maturity``) in that window (renew the cover);
- ``payment_end``: an active policy whose payment period ends (``payment_end``)
  in the window;
- ``maturity``: an active long-term policy that matures in the window;
- ``benefit`` / ``claim``: a benefit or claim paid in ``[now - horizon, now]``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select

from crm_insurance import settings
from crm_insurance.tables import payouts, policies
from crmcore import ValidationError
from crmcore.schema import live_customers, staff

KINDS = ("renewal", "payment_end", "maturity", "benefit", "claim")


def opportunities(
    crm: Any, *, kinds: list[str] | None = None, horizon_days: int | None = None, agent: Any = None
) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        settings.require(crm, "read", "list opportunities")
        kinds = list(kinds or KINDS)
        for k in kinds:
            settings.check_choice(k, KINDS, "opportunity kind")
        days = (
            horizon_days
            if horizon_days is not None
            else settings.config(crm)["opportunity_horizon_days"]
        )
        if days < 1:
            raise ValidationError(f"horizon: {days} days; expected at least 1")
        now = crm.now()
        ahead, back = now + dt.timedelta(days=days), now - dt.timedelta(days=days)
        p = policies
        active = p.c.status == "active"
        ahead_q = {
            "renewal": [
                (
                    p.c.paid_to,
                    and_(
                        active,
                        p.c.term == "long",
                        p.c.paid_to >= now,
                        p.c.paid_to <= ahead,
                        or_(p.c.payment_end.is_(None), p.c.paid_to < p.c.payment_end),
                    ),
                ),
                (
                    p.c.maturity,
                    and_(active, p.c.term == "short", p.c.maturity >= now, p.c.maturity <= ahead),
                ),
            ],
            "payment_end": [
                (p.c.payment_end, and_(active, p.c.payment_end >= now, p.c.payment_end <= ahead))
            ],
            "maturity": [
                (
                    p.c.maturity,
                    and_(active, p.c.term == "long", p.c.maturity >= now, p.c.maturity <= ahead),
                )
            ],
        }
        agent_id = crm.staff.get(agent).id if agent is not None else None
        out: list[dict[str, Any]] = []
        cols = (
            p.c.id,
            p.c.policy_no,
            p.c.product_line,
            p.c.term,
            p.c.customer_id,
            live_customers.c.name,
            live_customers.c.external_id,
            staff.c.key.label("agent"),
            staff.c.active.label("agent_active"),
        )
        base = p.join(live_customers, live_customers.c.id == p.c.customer_id).outerjoin(
            staff, staff.c.id == p.c.agent_id
        )
        for kind in kinds:
            stmts = []
            if kind in ahead_q:
                for date_col, cond in ahead_q[kind]:
                    stmts.append(select(*cols, date_col.label("at")).select_from(base).where(cond))
            else:
                x = payouts
                stmts.append(
                    select(*cols, x.c.paid_at.label("at"), x.c.amount_cents)
                    .select_from(base.join(x, x.c.policy_id == p.c.id))
                    .where(x.c.kind == kind, x.c.paid_at >= back, x.c.paid_at <= now)
                )
            for stmt in stmts:
                if agent_id is not None:
                    stmt = stmt.where(p.c.agent_id == agent_id)
                for r in crm.db.execute(stmt):
                    entry = {
                        "kind": kind,
                        "date": r.at,
                        "customer_id": r.customer_id,
                        "external_id": r.external_id,
                        "customer": r.name,
                        "policy_id": r.id,
                        "policy_no": r.policy_no,
                        "product_line": r.product_line,
                        "term": r.term,
                        "agent": r.agent,
                        "agent_active": bool(r.agent_active) if r.agent is not None else None,
                    }
                    if kind in ("benefit", "claim"):
                        entry["amount_cents"] = int(r.amount_cents)
                    out.append(entry)
        out.sort(key=lambda e: (e["date"], KINDS.index(e["kind"]), e["policy_id"]))
        return out
