"""ABC classification with a service level per class.

The classification itself is the core's ``crmcore.analytics.abc`` (label
``abc``). The job ``retail.abc_service`` runs it with the configured cut-offs and
then applies the service level of each class, creating follow-ups idempotently:

- A: a one-to-one service plan (``retail_service_plans``), a named account
  manager (an ``account_manager`` relationship) and a reminder for that manager
  to draw up the plan — once each time the customer enters class A.
- B: a survey invitation (SMS), once per calendar quarter.
- C: the standard service; nothing is created.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, update

from crm_retail import _util
from crm_retail.settings import settings
from crm_retail.tables import service_plans
from crmcore.analytics import abc
from crmcore.schema import (
    customer_labels,
    live_customers,
    messages,
    relationships,
    staff,
)

SERVICE = {
    "A": "one-to-one service plan and named account manager",
    "B": "survey invitations",
    "C": "standard service",
}


def _class_members(crm: Any, cls: str) -> list[Any]:
    return crm.db.execute(
        select(live_customers.c.id, live_customers.c.name, live_customers.c.owner_id)
        .join(customer_labels, customer_labels.c.customer_id == live_customers.c.id)
        .where(customer_labels.c.name == "abc", customer_labels.c.value == cls)
        .order_by(live_customers.c.id)
    ).all()


def managers(crm: Any, customer_ids: list[int]) -> dict[int, int]:
    """Each customer's account manager: the active ``account_manager``
    relationship to an active member of staff (lowest id), else none."""
    out: dict[int, int] = {}
    for part in _util.chunks(list(customer_ids)):
        rows = crm.db.execute(
            select(relationships.c.from_customer_id, relationships.c.to_staff_id)
            .join(staff, staff.c.id == relationships.c.to_staff_id)
            .where(
                relationships.c.kind == "account_manager",
                relationships.c.active.is_(True),
                staff.c.active.is_(True),
                relationships.c.from_customer_id.in_(part),
            )
            .order_by(relationships.c.id.desc())
        )
        out.update({r.from_customer_id: r.to_staff_id for r in rows})  # lowest id wins
    return out


def _active_staff(crm: Any) -> dict[int, str]:
    return {
        r.id: r.key
        for r in crm.db.execute(select(staff.c.id, staff.c.key).where(staff.c.active.is_(True)))
    }


def run_abc_service(crm: Any, at: dt.datetime) -> dict[str, Any]:
    s = settings(crm)
    cfg = s["abc"]
    summary = abc(
        crm, as_of=at, window_days=cfg["window_days"], cutoffs=(cfg["a_share"], cfg["b_share"])
    )
    summary.pop("customers", None)
    active = _active_staff(crm)
    default_mgr = cfg["default_account_manager"]
    default_id = next((i for i, k in active.items() if k == default_mgr), None)

    a_rows = _class_members(crm, "A")
    a_ids = [r.id for r in a_rows]
    # customers who left class A: their plan ends (set-based)
    ended = crm.db.execute(
        update(service_plans)
        .where(
            service_plans.c.active.is_(True),
            service_plans.c.customer_id.notin_(
                select(customer_labels.c.customer_id).where(
                    customer_labels.c.name == "abc", customer_labels.c.value == "A"
                )
            ),
        )
        .values(active=False, ended_at=at)
    ).rowcount
    plans = {
        r.customer_id: r
        for part in _util.chunks(a_ids)
        for r in crm.db.execute(select(service_plans).where(service_plans.c.customer_id.in_(part)))
    }
    entering = [r for r in a_rows if r.id not in plans or not plans[r.id].active]
    named = managers(crm, [r.id for r in entering])
    new_plans, unassigned, reminders = 0, [], 0
    for r in entering:
        mgr = named.get(r.id)
        if mgr is None:
            mgr = r.owner_id if r.owner_id in active else default_id
            if mgr is not None:
                crm.customers.add_relationship(
                    "account_manager", r.id, to_staff=mgr, note="class A: named account manager"
                )
        plan = f"class A since {at.date().isoformat()}: one-to-one service plan"
        if r.id in plans:
            crm.db.execute(
                update(service_plans)
                .where(service_plans.c.customer_id == r.id)
                .values(active=True, since=at, ended_at=None, account_manager_id=mgr, plan=plan)
            )
        else:
            crm.db.execute(
                insert(service_plans).values(
                    customer_id=r.id, account_manager_id=mgr, since=at, active=True, plan=plan
                )
            )
        new_plans += 1
        crm.records.add_timeline_entry(
            r.id,
            "retail.service",
            f"class A: {SERVICE['A']}"
            + (f" ({active[mgr]})" if mgr is not None else " (no manager yet)"),
            at=at,
            source=_util.SOURCE,
            data={"class": "A", "manager_id": mgr},
        )
        if mgr is None:
            unassigned.append(r.id)
            continue
        crm.tickets.add_reminder(
            mgr,
            f"class A customer {r.name}: draw up the one-to-one service plan "
            "(needs, preferences, contact rhythm)",
            at,
            customer=r.id,
            key=f"retail:abc:A:{r.id}:{at:%Y%m%d}",
            source=_util.SOURCE,
        )
        reminders += 1

    quarter = f"{at.year}Q{(at.month - 1) // 3 + 1}"
    prefix = f"retail:abc:B:{quarter}:"
    done = {
        r.idempotency_key
        for r in crm.db.execute(
            select(messages.c.idempotency_key).where(messages.c.idempotency_key.like(prefix + "%"))
        )
    }
    invited = refused = 0
    for r in _class_members(crm, "B"):
        key = f"{prefix}{r.id}"
        if key in done:
            continue
        msg = crm.messages.enqueue(
            "sms",
            customer=r.id,
            template="retail.abc_survey",
            values={"name": r.name, "store": s["store_name"]},
            key=key,
            source=_util.SOURCE,
        )
        if msg is None:
            refused += 1
        else:
            invited += 1
    return summary | {
        "service": {
            "A": {
                "new_plans": new_plans,
                "reminders": reminders,
                "without_manager": unassigned,
                "plans_ended": ended,
            },
            "B": {
                "survey_invitations": invited,
                "no_consent_or_phone": refused,
                "quarter": quarter,
            },
            "C": {"action": "standard service"},
        }
    }


def service_level(crm: Any, customer_id: int) -> str | None:
    row = crm.db.execute(
        select(customer_labels.c.value).where(
            customer_labels.c.customer_id == customer_id, customer_labels.c.name == "abc"
        )
    ).first()
    return None if row is None else SERVICE.get(row.value)
