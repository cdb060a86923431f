"""Service points (meter, address, voltage level, class, area) and key customers."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, false, or_, select, update

from crm_utility.config import AREAS, CLASSES, NAME, VOLTAGE_LEVELS, cfg
from crm_utility.tables import service_points
from crmcore import Conflict, NotFound, ValidationError
from crmcore.parse import clean_text

METER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_LABEL = "utility.key"


def point_json(row: Any, *, key: bool | None = None) -> dict[str, Any]:
    out = {
        "id": row.id,
        "customer_id": row.customer_id,
        "meter_no": row.meter_no,
        "address": row.address,
        "voltage_level": row.voltage_level,
        "customer_class": row.customer_class,
        "area": row.area,
        "contracted_kva": row.contracted_kva,
        "key_override": row.key_override,
    }
    if key is not None:
        out["key"] = key
    return out


def point_is_key(crm: Any, row: Any) -> bool:
    """A service point makes its customer a key customer when set by hand
    (``key_override``), or by rule: its class is one of ``key_customer.classes``
    or its contracted capacity reaches ``key_customer.min_contracted_kva``."""
    if row.key_override is not None:
        return bool(row.key_override)
    rules = cfg(crm)["key_customer"]
    if row.customer_class in rules["classes"]:
        return True
    limit = rules["min_contracted_kva"]
    return limit is not None and row.contracted_kva is not None and row.contracted_kva >= limit


def is_key_customer(crm: Any, customer_id: int) -> bool:
    rows = crm.db.execute(
        select(service_points).where(service_points.c.customer_id == customer_id)
    ).all()
    return any(point_is_key(crm, r) for r in rows)


def refresh_key_label(crm: Any, customer_id: int) -> bool:
    key = is_key_customer(crm, customer_id)
    crm.customers.set_label(customer_id, KEY_LABEL, "yes" if key else None, source=NAME)
    return key


def get_point(crm: Any, meter_no: str) -> Any:
    row = crm.db.execute(
        select(service_points).where(service_points.c.meter_no == str(meter_no).strip())
    ).first()
    if row is None:
        raise NotFound(f"service point with meter {meter_no!r} not found")
    return row


def add_point(
    crm: Any,
    customer: Any,
    *,
    meter_no: str,
    address: str,
    voltage_level: str,
    customer_class: str,
    area: str | None = None,
    contracted_kva: int | None = None,
    key: bool | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="utility point add"):
        cust = crm.customers.get(customer)
        meter_no = clean_text(meter_no, field="meter number", max_len=64) or ""
        if not METER_RE.match(meter_no):
            raise ValidationError(f"meter number {meter_no!r}: letters, digits, '_', '.', '-' only")
        address = clean_text(address, field="address", max_len=500) or ""
        if voltage_level not in VOLTAGE_LEVELS:
            raise ValidationError(
                f"voltage level {voltage_level!r}; expected one of {list(VOLTAGE_LEVELS)}"
            )
        if customer_class not in CLASSES:
            raise ValidationError(
                f"customer class {customer_class!r}; expected one of {list(CLASSES)}"
            )
        area = area or cfg(crm)["default_area"]
        if area not in AREAS:
            raise ValidationError(f"area {area!r}; expected one of {list(AREAS)}")
        if contracted_kva is not None and (
            isinstance(contracted_kva, bool) or int(contracted_kva) <= 0
        ):
            raise ValidationError(
                f"contracted capacity {contracted_kva!r}: expected a positive number of kVA"
            )
        if crm.db.exists_globally(service_points, meter_no=meter_no):
            # a uniqueness refusal: whose meter it is stays hidden
            raise Conflict(f"meter {meter_no!r} is already registered")
        res = crm.db.execute(
            service_points.insert().values(
                customer_id=cust.id,
                meter_no=meter_no,
                address=address,
                voltage_level=voltage_level,
                customer_class=customer_class,
                area=area,
                contracted_kva=None if contracted_kva is None else int(contracted_kva),
                key_override=key,
                created_at=crm.now(),
            )
        )
        row = crm.db.execute(
            select(service_points).where(service_points.c.id == res.inserted_primary_key[0])
        ).one()
        customer_key = refresh_key_label(crm, cust.id)
        return point_json(row, key=point_is_key(crm, row)) | {"customer_key": customer_key}


def set_key(crm: Any, meter_no: str, key: bool | None) -> dict[str, Any]:
    """Flag a service point key (True), not key (False) or back to the rules (None)."""
    with crm.transaction(command="utility point key"):
        row = get_point(crm, meter_no)
        crm.db.execute(
            update(service_points).where(service_points.c.id == row.id).values(key_override=key)
        )
        row = get_point(crm, meter_no)
        customer_key = refresh_key_label(crm, row.customer_id)
        return point_json(row, key=point_is_key(crm, row)) | {"customer_key": customer_key}


def list_points(crm: Any, customer: Any = None, *, key_only: bool = False) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        stmt = select(service_points).order_by(service_points.c.id)
        if customer is not None:
            stmt = stmt.where(service_points.c.customer_id == crm.customers.get(customer).id)
        out = [point_json(r, key=point_is_key(crm, r)) for r in crm.db.execute(stmt)]
        return [p for p in out if p["key"]] if key_only else out


def key_condition(crm: Any) -> Any:
    """SQL: the service point is key (same rules as :func:`point_is_key`)."""
    sp = service_points
    rules = cfg(crm)["key_customer"]
    by_rule = [sp.c.customer_class.in_(rules["classes"])] if rules["classes"] else []
    if rules["min_contracted_kva"] is not None:
        by_rule.append(sp.c.contracted_kva >= rules["min_contracted_kva"])
    auto = and_(sp.c.key_override.is_(None), or_(*by_rule)) if by_rule else false()
    return or_(sp.c.key_override.is_(True), auto)


def key_customer_ids(crm: Any) -> Any:
    """A subquery of the ids of key customers (one key service point is enough)."""
    return select(service_points.c.customer_id).where(key_condition(crm))


def key_point_rows(crm: Any) -> list[Any]:
    """Every service point of every key customer, set-based."""
    stmt = (
        select(service_points)
        .where(service_points.c.customer_id.in_(key_customer_ids(crm)))
        .order_by(service_points.c.id)
    )
    return crm.db.execute(stmt).all()
