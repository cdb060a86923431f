"""The agent report (效果评估, evaluating the agents' work): per agent and period, visits, verified
visits, verified (face-to-face) rate, average satisfaction, share "very
satisfied", and the agent's VIP customers below their guaranteed frequency."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, select

from crm_insurance import settings, vip
from crm_insurance.tables import visits
from crmcore import ValidationError


def month_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(now.year, now.month, 1)
    end = dt.datetime(now.year + (now.month == 12), now.month % 12 + 1, 1)
    return start, end


def agent_report(
    crm: Any, *, start: dt.datetime | None = None, end: dt.datetime | None = None, agent: Any = None
) -> dict[str, Any]:
    """Visits made in ``[start, end)`` (default: the current calendar month),
    as the acting principal may see them; VIP dues as of ``min(end, now)``."""
    with crm.transaction(write=False):
        settings.require(crm, "read", "read the agent report")
        d_start, d_end = month_bounds(crm.now())
        start, end = start or d_start, end or d_end
        if start >= end:
            raise ValidationError(
                f"report period: --from {start:%Y-%m-%d} is not before --to {end:%Y-%m-%d}"
            )
        now = crm.now()
        v = visits
        verified = v.c.status == "verified"
        # a pending visit whose window closed before now is expired
        expired = and_(v.c.status == "pending", v.c.visited_at < now - settings.window(crm))
        scored = and_(verified, v.c.score.is_not(None))
        stmt = (
            select(
                v.c.agent_id,
                func.count().label("visits"),
                func.sum(case((verified, 1), else_=0)).label("verified"),
                func.sum(case((expired, 1), else_=0)).label("expired"),
                func.sum(case((scored, 1), else_=0)).label("scored"),
                func.sum(case((scored, v.c.score), else_=0)).label("score_sum"),
                func.sum(case((and_(scored, v.c.score == 5), 1), else_=0)).label("very"),
            )
            .where(v.c.visited_at >= start, v.c.visited_at < end)
            .group_by(v.c.agent_id)
        )
        staff = {s.id: s for s in crm.staff.list()}
        only = crm.staff.get(agent).id if agent is not None else None
        if only is not None:
            stmt = stmt.where(v.c.agent_id == only)
        rows = {r.agent_id: r for r in crm.db.execute(stmt)}
        due_at = min(end, now)
        dues: dict[int, list[dict[str, Any]]] = {}
        for r in crm.db.execute(vip.due_query(crm, due_at)):
            dues.setdefault(r.owner_id, []).append(
                {
                    "customer_id": r.customer_id,
                    "external_id": r.external_id,
                    "name": r.name,
                    "grade": r.grade,
                    "last_verified_visit": r.last_visit,
                    "verified_visits_last_year": int(r.visits_year),
                }
            )
        ids = set(rows) | set(dues)
        if only is not None:
            ids = {only}
        else:
            ids |= _agents_in_view(crm, staff)
        out = []
        for sid in sorted(ids, key=lambda i: staff[i].key if i in staff else str(i)):
            r, s = rows.get(sid), staff.get(sid)
            n = int(r.visits) if r else 0
            ver = int(r.verified or 0) if r else 0
            sc = int(r.scored or 0) if r else 0
            out.append(
                {
                    "agent": s.key if s else None,
                    "name": s.name if s else None,
                    "team": s.team if s else None,
                    "active": bool(s.active) if s else None,
                    "visits": n,
                    "verified": ver,
                    "expired": int(r.expired or 0) if r else 0,
                    "pending": n - ver - (int(r.expired or 0) if r else 0),
                    "verified_rate": round(ver / n, 4) if n else None,
                    "average_score": round(int(r.score_sum) / sc, 2) if r and sc else None,
                    "very_satisfied_share": round(int(r.very) / sc, 4) if r and sc else None,
                    "vip_below_guarantee": dues.get(sid, []),
                }
            )
        return {"from": start, "to": end, "vip_due_as_of": due_at, "agents": out}


def _agents_in_view(crm: Any, staff: dict[int, Any]) -> set[int]:
    """Active agents the principal answers for: all (scope all), their team's, or themselves."""
    p = crm.db.principal
    roles = set(settings.config(crm)["agent_roles"])
    agents = {i for i, s in staff.items() if s.active and roles & set(s.roles)}
    if p.unrestricted:
        return agents
    if p.scope == "team" and p.team is not None:
        return {i for i in agents if staff[i].team == p.team}
    return {p.staff_id} & agents if p.staff_id is not None else set()
