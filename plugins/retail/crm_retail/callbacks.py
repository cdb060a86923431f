"""Overdue regular customers and the account manager's call-back.

The job ``retail.overdue`` reuses ``crmcore.analytics.overdue``: a regular
customer (at least ``fuel.min_purchases`` purchases) who has not come back
within their own average interval plus ``fuel.grace_days`` (default 3) is
flagged. For each one a call-back is recorded (``retail_callbacks``) and a
reminder is created for their account manager (the active ``account_manager``
relationship, else the customer's owner), due ``fuel.callback_due_hours``
later. One call-back per lapse: the key is the customer and their last
purchase, so re-running the job, or the customer staying away, adds nothing.
``outcome`` records what the call found and completes the reminder.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, update

from crm_retail import _util
from crm_retail.segments import managers
from crm_retail.settings import settings
from crm_retail.tables import callbacks
from crmcore import NotFound, TransitionError
from crmcore.analytics import overdue
from crmcore.parse import clean_text
from crmcore.schema import live_customers, reminders, staff


def _when(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def run_overdue(crm: Any, at: dt.datetime) -> dict[str, Any]:
    cfg = settings(crm)["fuel"]
    result = overdue(
        crm, as_of=at, grace_days=cfg["grace_days"], min_purchases=cfg["min_purchases"]
    )
    found = result["customers"]
    if not found:
        return {"overdue": 0, "new_callbacks": 0, "without_manager": []}
    for f in found:
        f["last_at"] = _when(f["last_purchase"])
        f["key"] = f"{f['customer_id']}:{f['last_at']:%Y%m%d%H%M%S}"
    seen = {
        r.key
        for part in _util.chunks([f["key"] for f in found])
        for r in crm.db.execute(select(callbacks.c.key).where(callbacks.c.key.in_(part)))
    }
    todo = [f for f in found if f["key"] not in seen]
    live = live_customers
    info = {
        r.id: r
        for part in _util.chunks([f["customer_id"] for f in todo])
        for r in crm.db.execute(
            select(live.c.id, live.c.name, live.c.owner_id, staff.c.active)
            .outerjoin(staff, staff.c.id == live.c.owner_id)
            .where(live.c.id.in_(part))
        )
    }
    todo = [f for f in todo if f["customer_id"] in info]  # nobody calls a forgotten customer
    ids = [f["customer_id"] for f in todo]
    named = managers(crm, ids)
    due = at + dt.timedelta(hours=cfg["callback_due_hours"])
    unassigned = []
    for f in todo:
        cid = f["customer_id"]
        c = info[cid]
        mgr = named.get(cid) or (c.owner_id if c.active else None)
        res = crm.db.execute(
            insert(callbacks).values(
                customer_id=cid,
                key=f["key"],
                staff_id=mgr,
                flagged_at=at,
                last_purchase_at=f["last_at"],
                average_interval_days=f["average_interval_days"],
                days_since=f["days_since_last"],
            )
        )
        text = (
            f"call back {c.name}: not back for {f['days_since_last']:.0f} days (usually every "
            f"{f['average_interval_days']:.1f} days); ask why and record the outcome"
        )
        crm.records.add_timeline_entry(
            cid,
            "retail.overdue",
            f"flagged overdue: {f['days_since_last']:.0f} "
            f"days since the last purchase, usual interval "
            f"{f['average_interval_days']:.1f} days",
            at=at,
            source=_util.SOURCE,
            data={"callback_id": res.inserted_primary_key[0]},
        )
        if mgr is None:
            unassigned.append(cid)
            continue
        rem = crm.tickets.add_reminder(
            mgr, text, due, customer=cid, key=f"retail:callback:{f['key']}", source=_util.SOURCE
        )
        crm.db.execute(
            update(callbacks)
            .where(callbacks.c.id == res.inserted_primary_key[0])
            .values(reminder_id=rem.id)
        )
    return {
        "overdue": len(found),
        "new_callbacks": len(todo),
        "without_manager": unassigned,
        "grace_days": cfg["grace_days"],
    }


def as_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "staff_id": r.staff_id,
        "flagged_at": r.flagged_at,
        "last_purchase_at": r.last_purchase_at,
        "average_interval_days": r.average_interval_days,
        "days_since": r.days_since,
        "reminder_id": r.reminder_id,
        "outcome": r.outcome,
        "outcome_at": r.outcome_at,
    }


def record_outcome(crm: Any, callback_id: Any, outcome: str) -> dict[str, Any]:
    with crm.transaction(command="retail callback outcome"):
        try:
            cb_id = int(callback_id)
        except (TypeError, ValueError):
            raise NotFound(f"call-back {callback_id!r}: expected a number") from None
        r = crm.db.execute(select(callbacks).where(callbacks.c.id == cb_id)).first()
        if r is None:
            raise NotFound(f"call-back {cb_id} not found")
        outcome = clean_text(outcome, field="outcome", max_len=2000, multiline=True) or ""
        if r.outcome is not None:
            raise TransitionError(f"call-back {cb_id} already has an outcome: {r.outcome}")
        crm.db.require_customer(r.customer_id, write=True)
        rem = None
        if r.reminder_id is not None:
            rem = crm.db.execute(select(reminders).where(reminders.c.id == r.reminder_id)).first()
        if rem is not None and rem.done_at is None:
            crm.tickets.complete_reminder(rem.id, outcome=outcome)  # also records the note interaction
        else:
            crm.records.add_interaction(
                r.customer_id,
                "call",
                f"overdue call-back: {outcome}",
                source=_util.SOURCE,
                data={"callback_id": cb_id},
            )
        crm.db.execute(
            update(callbacks)
            .where(callbacks.c.id == cb_id)
            .values(outcome=outcome, outcome_at=crm.now())
        )
        return as_dict(crm.db.execute(select(callbacks).where(callbacks.c.id == cb_id)).one())


def list_callbacks(crm: Any, *, open_only: bool = True) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        q = select(callbacks).order_by(callbacks.c.id)
        if open_only:
            q = q.where(callbacks.c.outcome.is_(None))
        return [as_dict(r) for r in crm.db.execute(q)]
