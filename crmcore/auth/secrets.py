"""Random secrets and their stored form, and the small rules shared by tokens,
sessions and passwords (who may manage whose credentials, durations)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import select

from crmcore.access import Principal
from crmcore.errors import AccessDenied, NotFound, ValidationError
from crmcore.schema import staff

TOKEN_PREFIX = "crm_"


def new_secret(prefix: str = "") -> str:
    """A fresh secret: 32 random bytes, URL-safe text, with ``prefix``."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a random secret: SHA-256, hex. A secret of 256 random
    bits needs no salt or slow hash: there is nothing to guess."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def derived(secret: str, purpose: str) -> str:
    """A value derived from ``secret`` for ``purpose`` (a session's CSRF token):
    only who holds the secret can compute it, and it reveals nothing of it."""
    return hmac.new(secret.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two texts."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


_DURATION = re.compile(r"^\s*(\d{1,5})\s*([dhm])\s*$")
_UNIT = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str, *, field: str) -> dt.timedelta | None:
    """``90d``, ``12h``, ``30m`` as a timedelta; ``never`` as None (no expiry)."""
    if text.strip().lower() == "never":
        return None
    m = _DURATION.match(text)
    if m is None or int(m.group(1)) == 0:
        raise ValidationError(
            f"{field} {text!r}: expected a duration such as 90d, 12h or 30m (or 'never')"
        )
    return dt.timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})


def staff_by_key(conn: Any, key: str) -> Any:
    """The staff row with ``key``, or :class:`NotFound`."""
    row = conn.execute(select(staff).where(staff.c.key == key)).first()
    if row is None:
        raise NotFound(f"staff member {key!r} not found")
    return row


def require_self_or_admin(principal: Principal, member: Any, what: str) -> None:
    """Only an admin manages another member's credentials; anyone active their own."""
    if principal.can("admin"):
        return
    if principal.active and principal.staff_id is not None and principal.staff_id == member.id:
        return
    raise AccessDenied(f"{principal.key} may not {what} for {member.key}: needs 'admin'")
