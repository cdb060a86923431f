"""VIP grades from configurable rules, guaranteed visits, and the reminder job.

A customer's figures are taken over the policies they hold (policyholder):
annual premium and sum at risk of the *active* ones, tenure from the earliest
start of any of them. Grades are tried in the configured order; the first whose
rule holds wins. A rule with ``match = "any"`` holds when one of its given
thresholds is met, with ``"all"`` when every given threshold is met.

A VIP customer is *due* a visit when their last **verified** visit is older
than ``365 / visits_per_year`` days (or they have none).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select

from crm_insurance import NAME, settings
from crm_insurance.tables import policies, visits
from crmcore import AccessDenied
from crmcore.schema import live_customers, reminders

YEAR_DAYS = 365


def _years_before(at: dt.datetime, years: float) -> dt.datetime:
    if float(years).is_integer():
        y = int(years)
        try:
            return at.replace(year=at.year - y)
        except ValueError:  # 29 February
            return at.replace(year=at.year - y, day=28)
    return at - dt.timedelta(days=365.25 * years)


def interval(grade: dict[str, Any]) -> dt.timedelta:
    return dt.timedelta(days=YEAR_DAYS / grade["visits_per_year"])


def grade_query(crm: Any, at: dt.datetime, customer_id: int | None = None) -> Any:
    """SELECT customer_id, grade, annual_premium_cents, sum_at_risk_cents, first_start
    for every policyholder (or one) with a VIP grade as of ``at``; set-based."""
    p = policies
    active = p.c.status == "active"
    by_customer = (
        select(
            p.c.customer_id,
            func.sum(case((active, p.c.premium_cents), else_=0)).label("premium"),
            func.sum(case((active, p.c.sum_at_risk_cents), else_=0)).label("sar"),
            func.min(p.c.start_at).label("first_start"),
        )
        .where(p.c.start_at <= at)
        .group_by(p.c.customer_id)
    )
    if customer_id is not None:
        by_customer = by_customer.where(p.c.customer_id == customer_id)
    agg = by_customer.subquery("insurance_agg")
    whens = []
    for g in settings.grades(crm):
        conds = []
        if "min_annual_premium_cents" in g:
            conds.append(agg.c.premium >= g["min_annual_premium_cents"])
        if "min_sum_at_risk_cents" in g:
            conds.append(agg.c.sar >= g["min_sum_at_risk_cents"])
        if "min_tenure_years" in g:
            conds.append(agg.c.first_start <= _years_before(at, g["min_tenure_years"]))
        whens.append(((or_ if g["match"] == "any" else and_)(*conds), literal(g["name"])))
    if not whens:
        return select(agg.c.customer_id).where(literal(False))
    grade = case(*whens, else_=None).label("grade")
    inner = select(
        agg.c.customer_id,
        grade,
        agg.c.premium.label("annual_premium_cents"),
        agg.c.sar.label("sum_at_risk_cents"),
        agg.c.first_start,
    ).subquery("insurance_g")
    return select(inner).where(inner.c.grade.is_not(None))


def grade_of(crm: Any, customer_id: int, at: dt.datetime | None = None) -> dict[str, Any] | None:
    row = crm.db.execute(grade_query(crm, at or crm.now(), customer_id)).first()
    return None if row is None else _grade_row(row)


def _grade_row(row: Any) -> dict[str, Any]:
    return {
        "customer_id": row.customer_id,
        "grade": row.grade,
        "annual_premium_cents": int(row.annual_premium_cents or 0),
        "sum_at_risk_cents": int(row.sum_at_risk_cents or 0),
        "first_start": row.first_start,
    }


def due_query(crm: Any, at: dt.datetime, *, due_only: bool = True) -> Any:
    """VIP customers with their grade, last verified visit, verified visits in the
    last year and serving agent (customers.owner_id); ``due_only``: only those
    below their guaranteed frequency as of ``at``."""
    g = grade_query(crm, at).subquery("insurance_vip")
    v = visits
    year_ago = at - dt.timedelta(days=YEAR_DAYS)
    last = (
        select(
            v.c.customer_id,
            func.max(v.c.visited_at).label("last_visit"),
            func.sum(case((v.c.visited_at > year_ago, 1), else_=0)).label("visits_year"),
        )
        .where(v.c.status == "verified", v.c.visited_at <= at)
        .group_by(v.c.customer_id)
        .subquery("insurance_last")
    )
    due = (
        or_(
            *[
                and_(
                    g.c.grade == grade["name"],
                    or_(last.c.last_visit.is_(None), last.c.last_visit < at - interval(grade)),
                )
                for grade in settings.grades(crm)
            ]
        )
        if settings.grades(crm)
        else literal(False)
    )
    stmt = (
        select(
            g.c.customer_id,
            g.c.grade,
            g.c.annual_premium_cents,
            g.c.sum_at_risk_cents,
            last.c.last_visit,
            func.coalesce(last.c.visits_year, 0).label("visits_year"),
            due.label("due"),
            live_customers.c.name,
            live_customers.c.external_id,
            live_customers.c.owner_id,
        )
        .select_from(
            g.join(live_customers, live_customers.c.id == g.c.customer_id).outerjoin(
                last, last.c.customer_id == g.c.customer_id
            )
        )
        .order_by(g.c.customer_id)
    )
    if due_only:
        stmt = stmt.where(due)
    return stmt


def vip_list(
    crm: Any, *, at: dt.datetime | None = None, due_only: bool = False, agent: Any = None
) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        settings.require(crm, "read", "list VIP customers")
        when = at or crm.now()
        stmt = due_query(crm, when, due_only=due_only)
        if agent is not None:
            stmt = stmt.where(live_customers.c.owner_id == crm.staff.get(agent).id)
        per_year = {g["name"]: g["visits_per_year"] for g in settings.grades(crm)}
        keys = {s.id: s.key for s in crm.staff.list()}
        return [
            {
                "customer_id": r.customer_id,
                "external_id": r.external_id,
                "name": r.name,
                "grade": r.grade,
                "guaranteed_visits_per_year": per_year.get(r.grade),
                "annual_premium_cents": int(r.annual_premium_cents or 0),
                "sum_at_risk_cents": int(r.sum_at_risk_cents or 0),
                "last_verified_visit": r.last_visit,
                "verified_visits_last_year": int(r.visits_year),
                "due": bool(r.due),
                "agent": keys.get(r.owner_id),
            }
            for r in crm.db.execute(stmt)
        ]


def _slot(at: dt.datetime, per_year: int) -> str:
    """The guarantee period of the year ``at`` falls in (one reminder per period)."""
    day = at.timetuple().tm_yday - 1
    days = 366 if (at.year % 4 == 0 and (at.year % 100 != 0 or at.year % 400 == 0)) else 365
    return f"{at.year}-{per_year}-{day * per_year // days}"


def remind(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The job: a visit reminder for the serving agent of every VIP customer below
    their guaranteed frequency; one per customer per guarantee period (keyed),
    so running it again for the same ``at`` (or period) adds nothing."""
    with crm.transaction(command="insurance vip remind"):
        p = crm.db.principal
        if not p.unrestricted:
            raise AccessDenied(f"{p.key} may not run VIP reminders over the whole customer base")
        per_year = {g["name"]: g["visits_per_year"] for g in settings.grades(crm)}
        active = {s.id for s in crm.staff.list(active_only=True)}
        created = existing = no_agent = 0
        for r in crm.db.execute(due_query(crm, at)).all():
            if r.owner_id not in active:
                no_agent += 1
                continue
            n = per_year[r.grade]
            key = f"{NAME}.vip-visit:{r.customer_id}:{_slot(at, n)}"
            last = f"{r.last_visit:%Y-%m-%d}" if r.last_visit else "never"
            before = crm.db.count_globally(reminders, key=key)
            crm.tickets.add_reminder(
                r.owner_id,
                f"VIP {r.grade} customer {r.name}: guaranteed {n} visits a year; "
                f"last verified visit {last}. Visit and ask for the satisfaction SMS.",
                at,
                customer=r.customer_id,
                key=key,
                source=NAME,
            )
            if before:
                existing += 1
            else:
                created += 1
        return {
            "as_of": at,
            "created": created,
            "already_reminded": existing,
            "without_active_agent": no_agent,
        }
