"""Normalising and masking phone numbers and e-mail addresses.

Phones are stored in E.164 form (``+8613812345678``) so the same number typed
as ``138 1234 5678``, ``+86-138-1234-5678`` or ``0086 13812345678`` matches.
"""

from __future__ import annotations

import re

from crmcore.errors import ValidationError

_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def normalise_phone(text: str, country_code: str = "86") -> str:
    """Return the E.164 form of ``text``; ValidationError if it is not a phone number."""
    if not isinstance(text, str):
        raise ValidationError(f"phone: expected text, got {type(text).__name__}")
    raw = text.strip()
    compact = _SEPARATORS.sub("", raw)
    if compact.startswith("+"):
        digits, international = compact[1:], True
    elif compact.startswith("00"):
        digits, international = compact[2:], True
    else:
        digits, international = compact, False
    if not digits.isascii() or not digits.isdigit():
        raise ValidationError(
            f"phone: {text[:40]!r} is not a phone number (digits, spaces, dashes, +)"
        )
    if not international:
        if digits.startswith(country_code) and len(digits) > 11:
            international = True
        else:
            digits = country_code + digits.removeprefix("0")
    if not 7 <= len(digits) <= 15:
        raise ValidationError(f"phone: {text[:40]!r} has {len(digits)} digits; expected 7 to 15")
    return "+" + digits


def normalise_email(text: str) -> str:
    if not isinstance(text, str):
        raise ValidationError(f"email: expected text, got {type(text).__name__}")
    value = text.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValidationError(f"email: {text[:60]!r} is not an e-mail address")
    return value


def mask_phone(value: str | None) -> str | None:
    """``+8613812345678`` -> ``+86138****5678``: enough to recognise, not to dial."""
    if not value:
        return value
    if len(value) <= 8:
        return value[:2] + "****"
    return value[:-8] + "****" + value[-4:]


def mask_email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return value
    local, domain = value.split("@", 1)
    return local[:1] + "***@" + domain


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "*" * max(len(value) - 7, 4) + value[-4:]
