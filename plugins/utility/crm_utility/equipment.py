"""Equipment register for key customers: devices, ratings, inspections, due dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from crm_utility.accounts import get_point, is_key_customer
from crm_utility.config import DEVICE_KINDS, NAME, cfg
from crm_utility.tables import devices, inspections
from crmcore import NotFound, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import customers, reminders

RESULTS = ("ok", "defect")


def _device_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_id": r.customer_id,
        "service_point_id": r.service_point_id,
        "name": r.name,
        "kind": r.kind,
        "rating": r.rating,
        "installed_on": r.installed_on,
        "interval_days": r.interval_days,
        "next_due": r.next_due,
    }


def add_device(
    crm: Any,
    customer: Any,
    *,
    name: str,
    kind: str,
    rating: str,
    meter_no: str | None = None,
    installed_on: dt.date | None = None,
    interval_days: int | None = None,
    next_due: dt.date | None = None,
) -> dict[str, Any]:
    """Register a device of a key customer. The first inspection is due
    ``interval_days`` (default by kind, from the config) after installation
    (or after today when the installation date is unknown), unless given."""
    with crm.transaction(command="utility device add"):
        cust = crm.customers.get(customer)
        if not is_key_customer(crm, cust.id):
            raise ValidationError(
                f"customer {cust.id} ({cust.name}) is not a key customer; the equipment register "
                "is kept for key customers only"
            )
        if kind not in DEVICE_KINDS:
            raise ValidationError(f"device kind {kind!r}; expected one of {list(DEVICE_KINDS)}")
        point_id = None
        if meter_no:
            point = get_point(crm, meter_no)
            if point.customer_id != cust.id:
                raise ValidationError(
                    f"meter {meter_no!r} is not a service point of customer {cust.id}"
                )
            point_id = point.id
        interval = interval_days or cfg(crm)["equipment"]["interval_days"][kind]
        if interval < 1:
            raise ValidationError("inspection interval: at least 1 day")
        base = installed_on or crm.now().date()
        due = next_due or base + dt.timedelta(days=interval)
        res = crm.db.execute(
            devices.insert().values(
                customer_id=cust.id,
                service_point_id=point_id,
                name=clean_text(name, field="device name", max_len=200),
                kind=kind,
                rating=clean_text(rating, field="rating", max_len=64),
                installed_on=installed_on,
                interval_days=interval,
                next_due=due,
                created_at=crm.now(),
            )
        )
        return _device_json(
            crm.db.execute(select(devices).where(devices.c.id == res.inserted_primary_key[0])).one()
        )


def _device(crm: Any, device_id: Any) -> Any:
    try:
        did = int(device_id)
    except (TypeError, ValueError):
        raise NotFound(f"device {device_id!r}: expected a device number") from None
    row = crm.db.execute(select(devices).where(devices.c.id == did)).first()
    if row is None:
        raise NotFound(f"device {did} not found")
    return row


def record_inspection(
    crm: Any, device_id: Any, *, result: str, notes: str = "", at: dt.datetime | None = None
) -> dict[str, Any]:
    """Record an inspection; the next one is due ``interval_days`` after it."""
    if result not in RESULTS:
        raise ValidationError(f"inspection result {result!r}; expected one of {list(RESULTS)}")
    with crm.transaction(command="utility inspection record"):
        dev = _device(crm, device_id)
        when = at or crm.now()
        if when > crm.now():
            raise ValidationError(f"inspection time {when:%Y-%m-%d %H:%M} is in the future")
        next_due = when.date() + dt.timedelta(days=dev.interval_days)
        crm.db.execute(
            inspections.insert().values(
                device_id=dev.id,
                customer_id=dev.customer_id,
                at=when,
                result=result,
                notes=notes or "",
                by_staff_id=crm.db.principal.staff_id,
                next_due=next_due,
            )
        )
        crm.db.execute(update(devices).where(devices.c.id == dev.id).values(next_due=next_due))
        return _device_json(_device(crm, dev.id)) | {"inspected_at": when, "result": result}


def list_devices(
    crm: Any, customer: Any = None, *, due_by: dt.date | None = None
) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        stmt = select(devices).order_by(devices.c.next_due, devices.c.id)
        if customer is not None:
            stmt = stmt.where(devices.c.customer_id == crm.customers.get(customer).id)
        if due_by is not None:
            stmt = stmt.where(devices.c.next_due <= due_by)
        return [_device_json(r) for r in crm.db.execute(stmt)]


def inspections_of(crm: Any, device_id: Any) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        dev = _device(crm, device_id)
        return [
            {"id": r.id, "at": r.at, "result": r.result, "notes": r.notes, "next_due": r.next_due}
            for r in crm.db.execute(
                select(inspections)
                .where(inspections.c.device_id == dev.id)
                .order_by(inspections.c.at)
            )
        ]


def reminders_job(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The ``utility.inspections`` job: a reminder for the customer's owner for
    every device whose inspection is due within ``reminder_lead_days``; one per
    device and due date (keyed), so re-runs add nothing."""
    lead = cfg(crm)["equipment"]["reminder_lead_days"]
    horizon = at.date() + dt.timedelta(days=lead)
    stmt = (
        select(devices, customers.c.owner_id, customers.c.name.label("customer_name"))
        .join(customers, customers.c.id == devices.c.customer_id)
        .where(devices.c.next_due <= horizon)
        .order_by(devices.c.next_due, devices.c.id)
    )
    made, already, no_owner = 0, 0, []
    for r in crm.db.execute(stmt).all():
        if r.owner_id is None:
            no_owner.append(r.id)
            continue
        key = f"utility:inspect:{r.id}:{r.next_due.isoformat()}"
        if crm.db.execute(select(reminders.c.id).where(reminders.c.key == key)).first() is not None:
            already += 1
            continue
        overdue = " (OVERDUE)" if r.next_due < at.date() else ""
        crm.tickets.add_reminder(
            r.owner_id,
            f"inspection of {r.kind} '{r.name}' ({r.rating}) at {r.customer_name} due {r.next_due}{overdue}",
            at,
            customer=r.customer_id,
            key=key,
            source=NAME,
        )
        made += 1
    return {
        "horizon": horizon.isoformat(),
        "reminders": made,
        "already_reminded": already,
        "devices_without_owner": no_owner,
    }
