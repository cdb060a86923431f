"""Small helpers shared by the retail modules."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import select

from crmcore import AccessDenied, NotFound, ValidationError
from crmcore.schema import customers

SOURCE = "retail"


def text(value: Any, what: str, *, max_len: int, required: bool = True) -> str | None:
    """Stripped text, or a clear ValidationError naming ``what``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"{what}: required")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{what}: expected text, got {type(value).__name__}")
    out = value.strip()
    if len(out) > max_len:
        raise ValidationError(f"{what}: {len(out)} characters; at most {max_len}")
    if any(ord(c) < 32 for c in out) or "\x7f" in out:
        raise ValidationError(f"{what}: contains control characters")
    return out


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
    """Integer cents from an int (cents) or a yuan string such as "12.50"."""
    if isinstance(value, bool):
        raise ValidationError(f"{what}: expected an amount, got {value!r}")
    if isinstance(value, int):
        out = value
    else:
        try:
            d = decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise ValidationError(f"{what}: {value!r} is not an amount (e.g. 12.50)") from None
        if not d.is_finite() or d != d.quantize(decimal.Decimal("0.01")):
            raise ValidationError(f"{what}: {value!r} is not an amount with at most 2 decimals")
        out = int(d * 100)
    if out < 0 or out > 10**11:
        raise ValidationError(f"{what}: {out} cents is out of range")
    return out


def yuan(amount_cents: int) -> str:
    return f"{amount_cents / 100:,.2f}"


def as_datetime(value: Any, what: str) -> dt.datetime:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"{what}: expected a date-time, got {type(value).__name__}")
    return value


def customer_row(crm: Any, ref: Any) -> Any:
    """The customer (visible to the acting principal) for a reference, via the core."""
    c = crm.get_customer(ref)
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
    return crm.normalise_phone(text(value, "phone", max_len=40) or "")
