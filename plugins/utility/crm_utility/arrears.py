"""Bills, payments and the arrears dunning ladder.

The ladder (``[plugins.utility.dunning] steps``) is climbed one step at a time:
a step is taken only when the one before it was, when the bill is at least the
step's ``days_overdue`` past due, and at least ``min_days_between_steps`` after
the previous step. A disconnection proposal names a disconnection date no
earlier than ``legal_notice_days`` after the notice. Paying the bill in full
stops the ladder at once: no further step, open proposals withdrawn.

Longer than most modules: the dunning ladder is one rule whose steps read each other's
state.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select, update

from crm_utility.accounts import get_point
from crm_utility.config import NAME, cfg, ladder
from crm_utility.tables import bills, dunning_steps, payments, service_points
from crmcore import Conflict, NotFound, TransitionError, ValidationError
from crmcore.parse import MAX_CENTS, clean_text, format_money
from crmcore.schema import reminders

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
STEP_LABEL = {
    "reminder_message": "payment reminder",
    "formal_notice": "formal arrears notice",
    "restricted_supply_proposal": "restricted-supply proposal",
    "disconnection_proposal": "disconnection proposal",
}


def _cents(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what}: expected integer cents, got {value!r}")
    if value <= 0 or value > MAX_CENTS:
        raise ValidationError(f"{what}: {format_money(value)} yuan; expected a positive amount")
    return value


def get_bill(crm: Any, bill_no: str) -> Any:
    row = crm.db.execute(select(bills).where(bills.c.bill_no == str(bill_no).strip())).first()
    if row is None:
        raise NotFound(f"bill {bill_no!r} not found")
    return row


def _steps(crm: Any, bill_id: int) -> list[Any]:
    return crm.db.execute(
        select(dunning_steps)
        .where(dunning_steps.c.bill_id == bill_id)
        .order_by(dunning_steps.c.step)
    ).all()


def bill_json(crm: Any, row: Any, *, as_of: dt.date | None = None) -> dict[str, Any]:
    as_of = as_of or crm.now().date()
    steps = _steps(crm, row.id)
    lad = ladder(crm)
    nxt = lad[len(steps)] if row.status == "open" and len(steps) < len(lad) else None
    return {
        "bill_no": row.bill_no,
        "customer_id": row.customer_id,
        "period": row.period,
        "amount_cents": row.amount_cents,
        "paid_cents": row.paid_cents,
        "outstanding_cents": row.amount_cents - row.paid_cents,
        "issued_on": row.issued_on,
        "due_on": row.due_on,
        "days_overdue": max(0, (as_of - row.due_on).days) if row.status == "open" else 0,
        "status": row.status,
        "settled_at": row.settled_at,
        "steps": [
            {
                "step": s.step,
                "name": s.name,
                "at": s.at,
                "disconnect_on": s.disconnect_on,
                "message_id": s.message_id,
                "note": s.note,
                "withdrawn_at": s.withdrawn_at,
            }
            for s in steps
        ],
        "next_step": None
        if nxt is None
        else {"name": nxt["name"], "from": _next_from(crm, row, nxt, steps)},
    }


def _next_from(crm: Any, bill: Any, spec: dict[str, Any], steps: list[Any]) -> dt.date:
    """The first day the next step may be taken (days overdue and the gap after the last step)."""
    day = bill.due_on + dt.timedelta(days=spec["days_overdue"])
    if steps:
        gap = cfg(crm)["dunning"]["min_days_between_steps"]
        day = max(day, steps[-1].at.date() + dt.timedelta(days=gap))
    return day


def add_bill(
    crm: Any,
    customer: Any,
    *,
    bill_no: str,
    period: str,
    amount_cents: int,
    due_on: dt.date,
    issued_on: dt.date | None = None,
    meter_no: str | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="utility bill add"):
        cust = crm.customers.get(customer)
        bill_no = clean_text(bill_no, field="bill number", max_len=64) or ""
        if not PERIOD_RE.match(str(period)):
            raise ValidationError(f"billing period {period!r}: expected YYYY-MM")
        amount_cents = _cents(amount_cents, "bill amount")
        issued_on = issued_on or crm.now().date()
        if due_on < issued_on:
            raise ValidationError(
                f"bill {bill_no}: due date {due_on} is before the issue date {issued_on}"
            )
        point_id = None
        if meter_no:
            point = get_point(crm, meter_no)
            if point.customer_id != cust.id:
                raise ValidationError(
                    f"meter {meter_no!r} is not a service point of customer {cust.id}"
                )
            point_id = point.id
        if crm.db.exists_globally(bills, bill_no=bill_no):
            raise Conflict(f"bill {bill_no!r} already exists")
        crm.db.execute(
            bills.insert().values(
                customer_id=cust.id,
                service_point_id=point_id,
                bill_no=bill_no,
                period=period,
                amount_cents=amount_cents,
                paid_cents=0,
                issued_on=issued_on,
                due_on=due_on,
                status="open",
                created_at=crm.now(),
            )
        )
        return bill_json(crm, get_bill(crm, bill_no))


def show_bill(crm: Any, bill_no: str) -> dict[str, Any]:
    with crm.transaction(write=False):
        return bill_json(crm, get_bill(crm, bill_no))


def pay(
    crm: Any,
    bill_no: str,
    amount_cents: int,
    *,
    at: dt.datetime | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Record a payment. A repeated ``reference`` is not counted twice. Paying
    the bill in full stops its dunning ladder at once and withdraws the steps
    taken (their open approval reminders are closed)."""
    with crm.transaction(command="utility pay"):
        bill = get_bill(crm, bill_no)
        if reference:
            seen = crm.db.execute(select(payments).where(payments.c.reference == reference)).first()
            if seen is not None:
                if seen.bill_id != bill.id:
                    raise Conflict(f"payment reference {reference!r} was used for another bill")
                return {
                    "duplicate": True,
                    "payment_id": seen.id,
                    "ladder_stopped": False,
                    "bill": bill_json(crm, bill),
                }
        amount_cents = _cents(amount_cents, "payment")
        if bill.status == "paid":
            raise Conflict(f"bill {bill.bill_no} is already paid in full")
        outstanding = bill.amount_cents - bill.paid_cents
        if amount_cents > outstanding:
            raise ValidationError(
                f"payment of {format_money(amount_cents)} exceeds the {format_money(outstanding)} outstanding on bill {bill.bill_no}"
            )
        when = at or crm.now()
        res = crm.db.execute(
            payments.insert().values(
                bill_id=bill.id,
                customer_id=bill.customer_id,
                amount_cents=amount_cents,
                at=when,
                reference=reference or None,
            )
        )
        paid = bill.paid_cents + amount_cents
        full = paid == bill.amount_cents
        values: dict[str, Any] = {"paid_cents": paid}
        if full:
            values |= {"status": "paid", "settled_at": when}
        crm.db.execute(update(bills).where(bills.c.id == bill.id).values(**values))
        withdrawn = 0
        if full:
            withdrawn = crm.db.execute(
                update(dunning_steps)
                .where(dunning_steps.c.bill_id == bill.id, dunning_steps.c.withdrawn_at.is_(None))
                .values(withdrawn_at=when)
            ).rowcount
            open_rem = crm.db.execute(
                select(reminders.c.id).where(
                    reminders.c.key.like(f"utility:dunning:{bill.id}:%"),
                    reminders.c.done_at.is_(None),
                )
            ).all()
            for r in open_rem:
                crm.tickets.complete_reminder(
                    r.id, outcome=f"bill {bill.bill_no} paid in full; proposal withdrawn"
                )
        return {
            "duplicate": False,
            "payment_id": res.inserted_primary_key[0],
            "ladder_stopped": full,
            "steps_withdrawn": withdrawn,
            "bill": bill_json(crm, get_bill(crm, bill.bill_no)),
        }


# -- the ladder ----------------------------------------------------------------------
def _check_step(
    crm: Any, bill: Any, name: str, at: dt.datetime
) -> tuple[int, dict[str, Any], list[Any]]:
    lad = ladder(crm)
    names = [s["name"] for s in lad]
    if name not in names:
        raise ValidationError(f"dunning step {name!r} is not on the ladder; steps: {names}")
    if bill.status == "paid":
        raise TransitionError(
            f"bill {bill.bill_no} is paid in full; its dunning ladder has stopped"
        )
    index = names.index(name)
    steps = _steps(crm, bill.id)
    if index < len(steps):
        raise Conflict(
            f"bill {bill.bill_no}: step {name} was already taken on {steps[index].at:%Y-%m-%d %H:%M}"
        )
    if index > len(steps):
        missing = names[len(steps)]
        raise TransitionError(
            f"bill {bill.bill_no}: cannot take {name} before {missing}; dunning steps are never skipped"
        )
    overdue = (at.date() - bill.due_on).days
    need = lad[index]["days_overdue"]
    if overdue < need:
        raise TransitionError(
            f"bill {bill.bill_no} is {max(overdue, 0)} day(s) overdue; {name} is allowed from {need} days "
            f"overdue ({bill.due_on + dt.timedelta(days=need)})"
        )
    if steps:
        gap = cfg(crm)["dunning"]["min_days_between_steps"]
        last = steps[-1].at
        if last >= at or (at.date() - last.date()).days < gap:
            raise TransitionError(
                f"bill {bill.bill_no}: {name} may follow {steps[-1].name} ({last:%Y-%m-%d}) after "
                f"{gap} day(s), from {last.date() + dt.timedelta(days=gap)}"
            )
    return index + 1, lad[index], steps


def take_step(
    crm: Any,
    bill_no: str,
    name: str,
    *,
    at: dt.datetime | None = None,
    disconnect_on: dt.date | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Take the next step of a bill's ladder (refused if it is not the next one,
    not yet due, or the bill is paid); an audited event with its message or
    proposal."""
    from crmcore.schema import customers

    with crm.transaction(command=f"utility dunning {name}"):
        bill = get_bill(crm, bill_no)
        when = at or crm.now()
        number, _spec, _ = _check_step(crm, bill, name, when)
        legal = cfg(crm)["dunning"]["legal_notice_days"]
        if name == "disconnection_proposal":
            earliest = when.date() + dt.timedelta(days=legal)
            disconnect_on = disconnect_on or earliest
            if disconnect_on < earliest:
                raise ValidationError(
                    f"bill {bill.bill_no}: disconnection on {disconnect_on} is inside the legal notice period "
                    f"of {legal} days; the earliest date is {earliest}"
                )
        elif disconnect_on is not None:
            raise ValidationError(
                "a disconnection date belongs to the disconnection_proposal step only"
            )
        cust = crm.db.execute(select(customers).where(customers.c.id == bill.customer_id)).one()
        address = None
        if bill.service_point_id is not None:
            address = crm.db.execute(
                select(service_points.c.address).where(service_points.c.id == bill.service_point_id)
            ).scalar()
        outstanding = bill.amount_cents - bill.paid_cents
        values = {
            "name": cust.name,
            "bill_no": bill.bill_no,
            "period": bill.period,
            "amount": format_money(bill.amount_cents),
            "outstanding": format_money(outstanding),
            "due_on": bill.due_on.isoformat(),
            "days": (when.date() - bill.due_on).days,
            "disconnect_on": disconnect_on.isoformat() if disconnect_on else "",
            "address": address or "your premises",
        }
        notes = [note.strip()] if note and note.strip() else []
        message_id = None
        template = {
            "reminder_message": "utility.dunning_reminder",
            "formal_notice": "utility.formal_notice",
            "disconnection_proposal": "utility.disconnection_notice",
        }.get(name)
        if template is not None:
            msg = crm.messages.enqueue(
                "sms",
                template=template,
                values=values,
                customer=bill.customer_id,
                key=f"utility:dunning:{bill.id}:{number}:sms",
                source=NAME,
            )
            if msg is None:
                notes.append("no SMS consent or no phone: serve this notice on paper")
            else:
                message_id = msg.id
        if name in ("restricted_supply_proposal", "disconnection_proposal"):
            what = (
                "restrict supply"
                if name == "restricted_supply_proposal"
                else f"disconnect supply on {disconnect_on}"
            )
            if cust.owner_id is not None:
                crm.tickets.add_reminder(
                    cust.owner_id,
                    f"decide: {what} for {cust.name}, bill {bill.bill_no} ({values['outstanding']} outstanding, "
                    f"{values['days']} days overdue)",
                    when,
                    customer=bill.customer_id,
                    key=f"utility:dunning:{bill.id}:{number}:approve",
                    source=NAME,
                )
            else:
                notes.append("customer has no owner: nobody was asked to decide")
        crm.db.execute(
            dunning_steps.insert().values(
                bill_id=bill.id,
                customer_id=bill.customer_id,
                step=number,
                name=name,
                at=when,
                by_staff_id=crm.db.principal.staff_id,
                message_id=message_id,
                disconnect_on=disconnect_on,
                note="; ".join(notes),
            )
        )
        return bill_json(crm, get_bill(crm, bill.bill_no), as_of=when.date())


def dunning_job(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The ``utility.dunning`` job: for every open bill past due, take the next
    step of the ladder when it is due — at most one step per bill per run, so
    no step is ever skipped and a re-run for the same ``at`` changes nothing."""
    lad = ladder(crm)
    gap = cfg(crm)["dunning"]["min_days_between_steps"]
    taken = (
        select(
            dunning_steps.c.bill_id,
            func.count().label("n"),
            func.max(dunning_steps.c.at).label("last_at"),
        )
        .group_by(dunning_steps.c.bill_id)
        .subquery()
    )
    cutoff = at.date() - dt.timedelta(days=lad[0]["days_overdue"])
    stmt = (
        select(bills, taken.c.n, taken.c.last_at)
        .outerjoin(taken, taken.c.bill_id == bills.c.id)
        .where(bills.c.status == "open", bills.c.due_on <= cutoff)
        .order_by(bills.c.due_on, bills.c.id)
    )
    done: list[dict[str, Any]] = []
    for r in crm.db.execute(stmt).all():
        n = int(r.n or 0)
        if n >= len(lad):
            continue
        step = lad[n]
        if (at.date() - r.due_on).days < step["days_overdue"]:
            continue
        if r.last_at is not None and (r.last_at >= at or (at.date() - r.last_at.date()).days < gap):
            continue
        take_step(crm, r.bill_no, step["name"], at=at)
        done.append({"bill_no": r.bill_no, "step": step["name"]})
    return {"steps": len(done), "taken": done}


def arrears(crm: Any, *, as_of: dt.date | None = None) -> list[dict[str, Any]]:
    """Open bills past their due date, oldest first."""
    with crm.transaction(write=False):
        as_of = as_of or crm.now().date()
        rows = crm.db.execute(
            select(bills)
            .where(bills.c.status == "open", bills.c.due_on < as_of)
            .order_by(bills.c.due_on, bills.c.id)
        ).all()
        return [bill_json(crm, r, as_of=as_of) for r in rows]
