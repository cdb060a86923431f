"""Fuel stations: progressive profiling of drivers in
three visits and the "1:15" account-manager rule.

Profiling ("三步法"): visit 1 records only the plate and car model (a customer
record named after the plate is created); visit 2 the name and employer, only
with the customer's consent, and the serving employee becomes the account
manager ("谁开发, 谁维护"); visit 3 the phone and the rest of the profile. Each
step is refused until the earlier one exists.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, insert, select, update

from crm_retail import _util
from crm_retail.settings import settings
from crm_retail.tables import fuel_profiles
from crmcore import Conflict, NotFound, ValidationError
from crmcore.parse import clean_text
from crmcore.present import show_phone
from crmcore.schema import live_customers, relationships, staff

_PLATE_SEP = re.compile(r"[\s·.\-]")


def plate_key(plate: str) -> str:
    text = clean_text(plate, field="plate", max_len=20) or ""
    key = _PLATE_SEP.sub("", text).upper()
    if not 5 <= len(key) <= 10 or not all(ch.isalnum() for ch in key):
        raise ValidationError(
            f"plate {plate!r}: expected 5 to 10 letters and digits (e.g. 豫A12345)"
        )
    return key


def _profile(crm: Any, plate: str) -> Any:
    key = plate_key(plate)
    row = crm.db.execute(select(fuel_profiles).where(fuel_profiles.c.plate == key)).first()
    if row is None:
        raise NotFound(
            f"no first-visit record for plate {key}: record plate and car model first (visit 1)"
        )
    return row


def as_dict(crm: Any, r: Any) -> dict[str, Any]:
    c = crm.customers.get(r.customer_id)
    return {
        "customer_id": r.customer_id,
        "name": c.name,
        "phone": show_phone(crm, c.phone),
        "plate": r.plate,
        "car_model": r.car_model,
        "station": r.station,
        "step": r.step,
        "employer": r.employer,
        "consent_at": r.consent_at,
        "step1_at": r.step1_at,
        "step2_at": r.step2_at,
        "step3_at": r.step3_at,
        "details": dict(r.details or {}),
    }


def visit1(
    crm: Any,
    *,
    plate: str,
    car_model: str,
    station: str | None = None,
    staff_ref: Any = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail fuel visit1"):
        key = plate_key(plate)
        model = clean_text(car_model, field="car model", max_len=100) or ""
        station = clean_text(station, field="station", max_len=100, required=False)
        if crm.db.exists_globally(fuel_profiles, plate=key):
            # a uniqueness refusal: whose car it is stays hidden
            raise Conflict(f"plate {key} already has a profile; continue with visit 2")
        when = at or crm.now()
        c = crm.customers.add(f"driver of {key}", owner=staff_ref, on_match="error")
        crm.db.execute(
            insert(fuel_profiles).values(
                customer_id=c.id,
                plate=key,
                car_model=model,
                station=station,
                step=1,
                step1_at=when,
                details={},
            )
        )
        crm.records.add_interaction(
            c.id,
            "visit",
            f"fuel visit 1: plate {key}, {model}",
            at=when,
            staff=staff_ref,
            source=_util.SOURCE,
            data={"step": 1},
        )
        return as_dict(crm, _profile(crm, key))


def visit2(
    crm: Any,
    plate: str,
    *,
    name: str,
    employer: str,
    consent: bool,
    staff_ref: Any = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail fuel visit2"):
        p = _profile(crm, plate)
        name = clean_text(name, field="name", max_len=300) or ""
        employer = clean_text(employer, field="employer", max_len=200) or ""
        if not consent:
            raise ValidationError(
                "visit 2: the customer has not consented to keeping their name "
                "and employer; ask first (--consent)"
            )
        when = at or crm.now()
        crm.customers.update(p.customer_id, name=name)
        crm.db.execute(
            update(fuel_profiles)
            .where(fuel_profiles.c.id == p.id)
            .values(
                employer=employer, consent_at=when, step2_at=p.step2_at or when, step=max(p.step, 2)
            )
        )
        employee = (
            crm.staff.get(staff_ref).id if staff_ref is not None else crm.db.principal.staff_id
        )
        has_mgr = crm.db.execute(
            select(relationships.c.id).where(
                relationships.c.from_customer_id == p.customer_id,
                relationships.c.kind == "account_manager",
                relationships.c.active.is_(True),
            )
        ).first()
        if employee is not None and has_mgr is None:
            crm.customers.add_relationship(
                "account_manager",
                p.customer_id,
                to_staff=employee,
                note="developed at the fuel station (visit 2)",
            )
        crm.records.add_interaction(
            p.customer_id,
            "visit",
            # the employer is personal data: kept (and masked) in its column, not copied here
            f"fuel visit 2: {name}, employer recorded (consented)",
            at=when,
            staff=staff_ref,
            source=_util.SOURCE,
            data={"step": 2},
        )
        return as_dict(crm, _profile(crm, plate))


def visit3(
    crm: Any,
    plate: str,
    *,
    phone: str,
    email: str | None = None,
    details: dict[str, Any] | None = None,
    sms_consent: bool = True,
    staff_ref: Any = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="retail fuel visit3"):
        p = _profile(crm, plate)
        if p.step < 2:
            raise ValidationError(
                f"plate {p.plate}: visit 3 needs visit 2 first (name and employer with consent)"
            )
        if not phone:
            raise ValidationError("visit 3: phone is required")
        when = at or crm.now()
        changes: dict[str, Any] = {"phone": phone, "consent_sms": bool(sms_consent)}
        if email:
            changes["email"] = email
        crm.customers.update(p.customer_id, **changes)
        extra = {str(k): v for k, v in (details or {}).items() if v not in (None, "")}
        crm.db.execute(
            update(fuel_profiles)
            .where(fuel_profiles.c.id == p.id)
            .values(step3_at=p.step3_at or when, step=3, details={**dict(p.details or {}), **extra})
        )
        crm.records.add_interaction(
            p.customer_id,
            "visit",
            "fuel visit 3: contact details and full profile",
            at=when,
            staff=staff_ref,
            source=_util.SOURCE,
            data={"step": 3},
        )
        return as_dict(crm, _profile(crm, plate))


def show(crm: Any, plate: str) -> dict[str, Any]:
    with crm.transaction(write=False):
        return as_dict(crm, _profile(crm, plate))


def ratio_report(crm: Any) -> dict[str, Any]:
    """The 1:15 rule: every employee (staff with a configured role) is account
    manager for at least N customers. Who is under, and by how many. A rep sees
    their own line, a supervisor their team's, an admin everyone's."""
    cfg = settings(crm)["fuel"]
    need = cfg["customers_per_employee"]
    with crm.transaction(write=False):
        p = crm.db.principal
        counts = (
            select(relationships.c.to_staff_id, func.count().label("n"))
            .join(live_customers, live_customers.c.id == relationships.c.from_customer_id)
            .where(
                relationships.c.kind == "account_manager",
                relationships.c.active.is_(True),
            )
            .group_by(relationships.c.to_staff_id)
            .subquery()
        )
        q = (
            select(
                staff.c.id,
                staff.c.key,
                staff.c.name,
                staff.c.team,
                staff.c.roles,
                func.coalesce(counts.c.n, 0).label("n"),
            )
            .outerjoin(counts, counts.c.to_staff_id == staff.c.id)
            .where(staff.c.active.is_(True))
            .order_by(staff.c.key)
        )
        if not p.unrestricted:
            q = (
                q.where(staff.c.team == p.team)
                if p.scope == "team" and p.team
                else q.where(staff.c.id == p.staff_id)
            )
        rows = crm.db.execute(q).all()
    roles = set(cfg["employee_roles"])
    lines = [
        {
            "staff": r.key,
            "name": r.name,
            "team": r.team,
            "customers": int(r.n),
            "required": need,
            "short_by": max(need - int(r.n), 0),
        }
        for r in rows
        if roles & set(r.roles or ())
    ]
    return {
        "required": need,
        "employees": len(lines),
        "under": [x for x in lines if x["short_by"] > 0],
        "all": lines,
    }
