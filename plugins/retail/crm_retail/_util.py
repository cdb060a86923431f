"""Small helpers shared by the retail modules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from crmcore import AccessDenied, NotFound, ValidationError
from crmcore.parse import MAX_CENTS, clean_text, format_money, parse_money
from crmcore.schema import customers

SOURCE = "retail"


def key_of(value: str) -> str:
    """A case- and space-insensitive key for product and item names."""
    return " ".join(value.casefold().split())


def positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what}: expected a whole number, got {value!r}")
    if value <= 0:
        raise ValidationError(f"{what}: must be positive, got {value}")
    return value


def cents(value: Any, what: str) -> int:
    """An amount given to the API as integer cents, or typed as yuan text such as
    ``"12.50"`` (:func:`crmcore.parse.parse_money`); never negative."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_CENTS:
            raise ValidationError(
                f"{what}: {format_money(value)} yuan is out of range "
                f"(0 to {format_money(MAX_CENTS)})"
            )
        return value
    return parse_money(value, field=what)


def as_datetime(value: Any, what: str) -> dt.datetime:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"{what}: expected a date-time, got {type(value).__name__}")
    return value


def customer_row(crm: Any, ref: Any) -> Any:
    """The customer (visible to the acting principal) for a reference, via the core."""
    c = crm.customers.get(ref)
    return crm.db.execute(select(customers).where(customers.c.id == c.id)).one()


def require_unrestricted(crm: Any, what: str) -> None:
    principal = crm.db.principal
    if not principal.unrestricted:
        raise AccessDenied(
            f"{principal.key} may not {what}: it covers every customer; "
            "run it as an admin (scope 'all')"
        )


def not_found(what: str) -> NotFound:
    return NotFound(what)


def chunks(values: list[Any], size: int = 5000) -> list[list[Any]]:
    """Split a long list for ``IN (...)`` (SQLite allows at most 32,766 parameters)."""
    return [values[i : i + size] for i in range(0, len(values), size)] or [[]]


def phone(crm: Any, value: str) -> str:
    """E.164 form of a contact phone, as the core stores phones (``138 1234 5678`` ->
    ``+8613812345678``)."""
    return crm.customers.normalise_phone(clean_text(value, field="phone", max_len=40) or "")
