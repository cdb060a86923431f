"""Reports: open requests by age, deadline compliance, satisfaction by team or project.

Each is one grouped SQL statement through the query layer, so a rep sees the
figures of their own customers only, a supervisor their team's, management all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, case, cast, false, func, select, true

from crmcore import ValidationError

from .requests import OPEN_WORK
from .settings import settings
from .tables import buildings, projects, requests, revisits, teams


def _num(x: float) -> str:
    return f"{x:g}"


def _period(stmt: Any, col: Any, since: dt.datetime | None, until: dt.datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(col >= since)
    if until is not None:
        stmt = stmt.where(col < until)
    return stmt


def ages(crm: Any, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """Requests not closed yet, by age since they were reported, and by state."""
    with crm.transaction(write=False):
        s = settings(crm)
        now = at or crm.now()
        edges = s.age_buckets_days
        labels = (
            [f"<{_num(edges[0])}d"]
            + [f"{_num(a)}-{_num(b)}d" for a, b in zip(edges, edges[1:], strict=False)]
            + [f">={_num(edges[-1])}d"]
        )
        bucket = case(
            *[
                (requests.c.reported_at > now - dt.timedelta(days=d), i)
                for i, d in enumerate(edges)
            ],
            else_=len(edges),
        )
        inner = (
            select(bucket.label("bucket"), requests.c.state)
            .where(requests.c.state != "closed", requests.c.reported_at <= now)
            .subquery()
        )
        rows = crm.db.execute(
            select(inner.c.bucket, inner.c.state, func.count().label("n")).group_by(
                inner.c.bucket, inner.c.state
            )
        ).all()
        out: list[dict[str, Any]] = [{"age": label, "count": 0, "by_state": {}} for label in labels]
        for r in rows:
            b = out[int(r.bucket)]
            b["count"] += r.n
            b["by_state"][r.state] = r.n
        return {"as_of": now, "open": sum(b["count"] for b in out), "buckets": out}


def _flag(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def compliance(
    crm: Any,
    *,
    at: dt.datetime | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """Per team, requests reported in the period: completed on time (by the
    deadline and never reopened), completed late or after a reopen, still open
    past the deadline. Compliance = on time / (completed + open overdue)."""
    with crm.transaction(write=False):
        now = at or crm.now()
        done = requests.c.state.in_(("completed", "revisit", "closed"))
        overdue = requests.c.state.in_(OPEN_WORK) & (requests.c.deadline_at < now)
        stmt = _period(
            select(
                requests.c.team_id,
                func.count().label("requests"),
                _flag(done).label("completed"),
                _flag(done & (requests.c.on_time == true())).label("on_time"),
                _flag(overdue).label("open_overdue"),
                _flag(requests.c.reopen_count > 0).label("reopened"),
                func.sum(requests.c.reopen_count).label("reopens"),
            )
            .where(requests.c.reported_at <= now)
            .group_by(requests.c.team_id),
            requests.c.reported_at,
            since,
            until,
        )
        codes = {t.id: t.code for t in crm.db.execute(select(teams.c.id, teams.c.code))}
        rows = []
        total = {
            "team": "all",
            "requests": 0,
            "completed": 0,
            "on_time": 0,
            "late": 0,
            "open_overdue": 0,
            "reopened": 0,
            "reopens": 0,
        }
        for r in crm.db.execute(stmt):
            row = {
                "team": codes.get(r.team_id, "(not dispatched)"),
                "requests": r.requests,
                "completed": int(r.completed),
                "on_time": int(r.on_time),
                "late": int(r.completed) - int(r.on_time),
                "open_overdue": int(r.open_overdue),
                "reopened": int(r.reopened),
                "reopens": int(r.reopens or 0),
            }
            rows.append(row)
            for k in total:
                if k != "team":
                    total[k] += row[k]
        for row in [*rows, total]:
            judged = row["completed"] + row["open_overdue"]
            row["compliance"] = round(row["on_time"] / judged, 4) if judged else None
        rows.sort(key=lambda x: x["team"])
        return {"as_of": now, "since": since, "until": until, "teams": rows, "total": total}


def satisfaction(
    crm: Any,
    *,
    by: str = "team",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """Owner revisit scores (1-5) by team or project: mean, count, share satisfied
    (score >= ``satisfied_from``), and revisits that found the defect not fixed."""
    if by not in ("team", "project"):
        raise ValidationError(f"satisfaction by {by!r}: expected team or project")
    with crm.transaction(write=False):
        s = settings(crm)
        v = revisits
        cols = [
            func.count().label("n"),
            func.avg(cast(v.c.satisfaction, Float)).label("mean"),
            _flag(v.c.satisfaction >= s.satisfied_from).label("satisfied"),
            _flag(v.c.fixed == false()).label("not_fixed"),
        ]
        if by == "team":
            stmt = (
                select(teams.c.code.label("key"), *cols)
                .select_from(v)
                .outerjoin(teams, teams.c.id == v.c.team_id)
                .group_by(teams.c.code)
            )
        else:
            stmt = (
                select(projects.c.code.label("key"), *cols)
                .select_from(v)
                .join(requests, requests.c.id == v.c.request_id)
                .join(buildings, buildings.c.id == requests.c.building_id)
                .join(projects, projects.c.id == buildings.c.project_id)
                .group_by(projects.c.code)
            )
        stmt = _period(stmt, v.c.at, since, until)
        rows = [
            {
                by: r.key or "(no team)",
                "revisits": r.n,
                "mean": round(float(r.mean), 2),
                "satisfied_share": round(int(r.satisfied) / r.n, 4),
                "not_fixed": int(r.not_fixed),
            }
            for r in crm.db.execute(stmt)
        ]
        rows.sort(key=lambda x: x[by])
        return {
            "by": by,
            "since": since,
            "until": until,
            "satisfied_from": s.satisfied_from,
            "rows": rows,
        }
