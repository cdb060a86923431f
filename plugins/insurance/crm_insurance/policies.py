"""Policies, benefit/claim payouts and the agent's customer profile."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update

from crm_insurance import NAME, settings
from crm_insurance.tables import payouts, policies
from crmcore import Conflict, NotFound, ValidationError
from crmcore.parse import format_money
from crmcore.present import show_email, show_phone
from crmcore.schema import customers, relationships, staff

# relationship kind that gives a policy's agent access to the policyholder
AGENT_LINK = "agent"


def _policy_row(crm: Any, ref: Any) -> Any:
    """A policy by id or policy number, as the acting principal may see it."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        text, cond = str(ref), policies.c.id == ref
    else:
        text = str(ref).strip()
        cond = policies.c.policy_no == text
        if text.isdigit() and len(text) < 18:
            cond = or_(cond, policies.c.id == int(text))
    rows = crm.db.execute(select(policies).where(cond)).all()
    if not rows:
        raise NotFound(f"policy {ref!r} not found")
    exact = [r for r in rows if r.policy_no == text]
    return exact[0] if exact else rows[0]


def _check_dates(start: dt.datetime, **others: dt.datetime | None) -> None:
    for what, value in others.items():
        if value is not None and value < start:
            raise ValidationError(
                f"policy {what}: {value:%Y-%m-%d} is before the start {start:%Y-%m-%d}"
            )


def add_policy(
    crm: Any,
    customer: Any,
    policy_no: str,
    *,
    product_line: str,
    term: str,
    sum_at_risk_cents: int,
    premium_cents: int,
    start_at: dt.datetime,
    agent: Any = None,
    insured: Any = None,
    product_name: str = "",
    status: str = "active",
    paid_to: dt.datetime | None = None,
    payment_end: dt.datetime | None = None,
    maturity: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record a policy held by ``customer`` (the policyholder), served by ``agent``
    (default: the acting member of staff). The agent is linked to the
    policyholder (relationship ``agent``) so they can see and serve them."""
    with crm.transaction(command="insurance policy add"):
        settings.require(crm, "write", "add a policy")
        holder = crm.customers.get(customer)
        insured_id = crm.customers.get(insured).id if insured is not None else None
        policy_no = (policy_no or "").strip()
        if not policy_no or len(policy_no) > 64:
            raise ValidationError("policy number: required, at most 64 characters")
        settings.check_choice(product_line, settings.PRODUCT_LINES, "product line")
        settings.check_choice(term, settings.TERMS, "term")
        settings.check_choice(status, settings.POLICY_STATUSES, "policy status")
        for what, cents in (("sum at risk", sum_at_risk_cents), ("premium", premium_cents)):
            if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
                raise ValidationError(f"{what}: expected non-negative integer cents, got {cents!r}")
        _check_dates(start_at, paid_to=paid_to, payment_end=payment_end, maturity=maturity)
        if payment_end and maturity and payment_end > maturity:
            raise ValidationError("policy payment_end: after the maturity date")
        if agent is None:
            agent_id = crm.db.principal.staff_id
            if agent_id is None:
                raise ValidationError("policy: give the serving agent (--agent STAFF)")
            agent_row = settings.staff_by_ref(crm, agent_id)
        else:
            agent_row = settings.staff_by_ref(crm, agent)
        if crm.db.exists_globally(policies, policy_no=policy_no):
            # a uniqueness refusal: the holder may be someone the caller may not see
            raise Conflict(f"policy {policy_no!r} already exists")
        res = crm.db.execute(
            policies.insert().values(
                policy_no=policy_no,
                customer_id=holder.id,
                insured_customer_id=insured_id,
                product_line=product_line,
                product_name=(product_name or "").strip(),
                term=term,
                sum_at_risk_cents=sum_at_risk_cents,
                premium_cents=premium_cents,
                status=status,
                start_at=start_at,
                paid_to=paid_to,
                payment_end=payment_end,
                maturity=maturity,
                agent_id=agent_row.id,
                created_at=crm.now(),
                data={},
            )
        )
        pid = res.inserted_primary_key[0]
        link_agent(crm, holder.id, agent_row.id)
        crm.records.add_timeline_entry(
            holder.id,
            "insurance.policy",
            f"policy {policy_no} ({product_line}, {term}-term) started; agent {agent_row.key}",
            at=start_at,
            data={"policy_id": pid},
            source=NAME,
        )
        return policy_view(crm, _policy_row(crm, pid))


def link_agent(crm: Any, customer_id: int, agent_id: int) -> None:
    """Give the agent access to the customer (unless they own or are linked already)."""
    if crm.db.exists_globally(customers, id=customer_id, owner_id=agent_id):
        return
    linked = crm.db.exists_globally(
        relationships, from_customer_id=customer_id, to_staff_id=agent_id, active=True
    )
    if not linked:
        crm.customers.add_relationship(AGENT_LINK, customer_id, to_staff=agent_id, note="serving agent")


def set_status(crm: Any, policy: Any, status: str) -> dict[str, Any]:
    with crm.transaction(command="insurance policy status"):
        settings.require(crm, "write", "change a policy")
        settings.check_choice(status, settings.POLICY_STATUSES, "policy status")
        row = _policy_row(crm, policy)
        crm.db.execute(update(policies).where(policies.c.id == row.id).values(status=status))
        return policy_view(crm, _policy_row(crm, row.id))


def record_payout(
    crm: Any,
    policy: Any,
    kind: str,
    amount_cents: int,
    *,
    paid_at: dt.datetime | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A benefit (给付) or claim (理赔) paid on a policy."""
    with crm.transaction(command="insurance policy payout"):
        settings.require(crm, "write", "record a payout")
        settings.check_choice(kind, settings.PAYOUT_KINDS, "payout kind")
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
            raise ValidationError(
                f"payout amount: expected positive integer cents, got {amount_cents!r}"
            )
        row = _policy_row(crm, policy)
        when = paid_at or crm.now()
        if when > crm.now():
            raise ValidationError(f"payout paid_at: {when:%Y-%m-%d %H:%M} is in the future")
        res = crm.db.execute(
            payouts.insert().values(
                policy_id=row.id,
                customer_id=row.customer_id,
                kind=kind,
                amount_cents=amount_cents,
                paid_at=when,
                note=(note or "").strip(),
            )
        )
        crm.records.add_timeline_entry(
            row.customer_id,
            f"insurance.{kind}",
            f"{kind} paid on policy {row.policy_no}: {format_money(amount_cents)}",
            at=when,
            data={"policy_id": row.id, "payout_id": res.inserted_primary_key[0]},
            source=NAME,
        )
        return {
            "id": res.inserted_primary_key[0],
            "policy_no": row.policy_no,
            "kind": kind,
            "amount_cents": amount_cents,
            "paid_at": when,
            "customer_id": row.customer_id,
        }


def _staff_names(crm: Any) -> dict[int, Any]:
    return {r.id: r for r in crm.db.execute(select(staff.c.id, staff.c.key, staff.c.active))}


def policy_view(crm: Any, row: Any, staff_rows: dict[int, Any] | None = None) -> dict[str, Any]:
    staff_rows = staff_rows if staff_rows is not None else _staff_names(crm)
    agent = staff_rows.get(row.agent_id)
    return {
        "id": row.id,
        "policy_no": row.policy_no,
        "customer_id": row.customer_id,
        "insured_customer_id": row.insured_customer_id or row.customer_id,
        "product_line": row.product_line,
        "product_name": row.product_name,
        "term": row.term,
        "sum_at_risk_cents": row.sum_at_risk_cents,
        "premium_cents": row.premium_cents,
        "status": row.status,
        "start_at": row.start_at,
        "paid_to": row.paid_to,
        "payment_end": row.payment_end,
        "maturity": row.maturity,
        "agent": agent.key if agent else None,
        "agent_active": bool(agent.active) if agent else None,
    }


def list_policies(
    crm: Any, *, customer: Any = None, agent: Any = None, status: str | None = None
) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        settings.require(crm, "read", "list policies")
        stmt = select(policies).order_by(policies.c.id)
        if customer is not None:
            cid = crm.customers.get(customer).id
            stmt = stmt.where(
                or_(policies.c.customer_id == cid, policies.c.insured_customer_id == cid)
            )
        if agent is not None:
            stmt = stmt.where(policies.c.agent_id == crm.staff.get(agent).id)
        if status is not None:
            stmt = stmt.where(
                policies.c.status
                == settings.check_choice(status, settings.POLICY_STATUSES, "policy status")
            )
        names = _staff_names(crm)
        return [policy_view(crm, r, names) for r in crm.db.execute(stmt)]


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def profile(crm: Any, customer: Any) -> dict[str, Any]:
    """What the agent sees before a visit (了解客户, knowing the customer): age, gender, points,
    grade, contacts, active long/short-term policies held, sum at risk per line
    of the active policies insuring the customer."""
    from crm_insurance import vip

    with crm.transaction(write=False):
        settings.require(crm, "read", "read a customer profile")
        c = crm.customers.get(customer)
        attrs_ = c.attributes
        birth = attrs_.get("insurance.birth_date")
        try:
            age = age_on(dt.date.fromisoformat(birth), crm.now().date()) if birth else None
        except ValueError:  # the attribute pattern lets e.g. 1975-13-40 through
            age = None
        p = policies
        active = p.c.status == "active"
        held = crm.db.execute(
            select(
                func.sum(case((and_(active, p.c.term == "long"), 1), else_=0)),
                func.sum(case((and_(active, p.c.term == "short"), 1), else_=0)),
                func.count(),
                func.sum(case((active, p.c.premium_cents), else_=0)),
            ).where(p.c.customer_id == c.id)
        ).one()
        insured_id = func.coalesce(p.c.insured_customer_id, p.c.customer_id)
        per_line = crm.db.execute(
            select(p.c.product_line, func.sum(p.c.sum_at_risk_cents))
            .where(insured_id == c.id, active)
            .group_by(p.c.product_line)
            .order_by(p.c.product_line)
        ).all()
        grade = vip.grade_of(crm, c.id)
        owner = crm.staff.get(c.owner_id) if c.owner_id else None
        return {
            "customer": {"id": c.id, "external_id": c.external_id, "name": c.name},
            "age": age,
            "gender": attrs_.get("insurance.gender"),
            "points": attrs_.get("insurance.points"),
            "grade": grade["grade"] if grade else None,
            "phone": show_phone(crm, c.phone),
            "email": show_email(crm, c.email),
            "agent": owner.key if owner else None,
            "active_long_term_policies": int(held[0] or 0),
            "active_short_term_policies": int(held[1] or 0),
            "policies_held": int(held[2] or 0),
            "annual_premium_cents": int(held[3] or 0),
            "sum_at_risk_cents_by_line": {line: int(total) for line, total in per_line},
        }
