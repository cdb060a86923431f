"""Checks of record input shared by the services: times, amounts, kinds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore.errors import ValidationError
from crmcore.parse import MAX_CENTS, format_money, parse_datetime

TRANSACTION_KINDS = ("purchase", "refund")


INTERACTION_KINDS = ("visit", "call", "sms", "email", "complaint", "survey", "note", "purchase")


def check_time(at: Any, what: str) -> dt.datetime:
    """A date or datetime given to the API, in the calendar range every time
    field accepts (:func:`crmcore.parse.parse_datetime`)."""
    if not isinstance(at, dt.date):
        raise ValidationError(f"{what}: expected a date-time, got {type(at).__name__}")
    return parse_datetime(at, field=what)


def check_amount(amount_cents: Any) -> int:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise ValidationError(f"amount: expected integer cents, got {amount_cents!r}")
    if abs(amount_cents) > MAX_CENTS:
        raise ValidationError(
            f"amount: {format_money(amount_cents)} yuan is out of range "
            f"(at most {format_money(MAX_CENTS)})"
        )
    return amount_cents


def check_kind(kind: Any, amount_cents: int) -> str:
    """A transaction's kind, checked against the sign of its amount: a purchase
    is zero or more, a refund is negative. A negative amount is never taken for
    a purchase: a refund must be said to be one."""
    if kind not in TRANSACTION_KINDS:
        raise ValidationError(f"transaction kind {kind!r}: expected purchase or refund")
    if kind == "purchase" and amount_cents < 0:
        raise ValidationError(
            f"amount {amount_cents / 100:.2f} is negative: a refund must be recorded as "
            "kind 'refund'"
        )
    if kind == "refund" and amount_cents >= 0:
        raise ValidationError(
            f"refund amount {amount_cents / 100:.2f}: a refund's amount is negative (e.g. -12.34)"
        )
    return str(kind)
