"""Staff passwords (argon2id) and signing in with one.

The hash is argon2-cffi's default (argon2id); a stored hash made with other
parameters is replaced at the next successful sign-in. Repeated failures lock
the account, and separately the client address, for a time that doubles with
each further failure (see :mod:`crmcore.auth.lockout`). Every sign-in, failure
and refusal is a row of the audit trail; a failure's row is committed even
though the sign-in is refused.
"""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import insert, select, update

from crmcore.auth import lockout
from crmcore.auth.secrets import staff_by_key
from crmcore.auth.settings import WebSettings
from crmcore.auth.tables import web_credentials
from crmcore.errors import AccessDenied, CRMError, ValidationError
from crmcore.schema import staff
from crmcore.storage._driver import connection

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
WRONG = "wrong staff key or password"


class SignInRefused(CRMError):
    """A sign-in failed (wrong key or password, departed member, no password)."""


class LockedOut(CRMError):
    """Too many failed sign-ins: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (with a random salt)."""
    return str(_hasher().hash(password))


def check_password_text(password: str) -> str:
    """``password`` if it may be set: MIN_PASSWORD to MAX_PASSWORD characters."""
    if not isinstance(password, str) or not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise ValidationError(f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def set_password(crm: Any, staff_key: str, password: str) -> dict[str, Any]:
    """Set the password of ``staff_key``; only an admin may (the acting principal
    of ``crm``). Recorded in the audit trail, without the hash."""
    hashed = hash_password(check_password_text(password))
    with crm.transaction(op="staff_password") as db:
        member = staff_by_key(connection(db), staff_key)
        if not db.principal.can("admin"):
            raise AccessDenied(f"{db.principal.key} may not set passwords: needs 'admin'")
        now = crm.now()
        done = connection(db).execute(
            update(web_credentials)
            .where(web_credentials.c.staff_id == member.id)
            .values(password_hash=hashed, updated_at=now)
        ).rowcount
        if not done:
            connection(db).execute(
                insert(web_credentials).values(
                    staff_id=member.id, password_hash=hashed, updated_at=now
                )
            )
        db.audit("web_password", member.key, "set", None, {"staff": member.key}, customer_id=None)
    return {"staff": member.key, "password_set": True}


@attrs.frozen(kw_only=True)
class _Attempt:
    staff_key: str | None
    outcome: str  # "ok", "wrong", "locked"
    retry_after: int = 0


def sign_in(crm: Any, staff_key: str, password: str, *, address: str, settings: WebSettings) -> str:
    """Check ``password`` for ``staff_key`` from ``address``; the staff key on
    success, else :class:`SignInRefused` or :class:`LockedOut`. ``crm`` is the
    process's CRM acting as the system."""
    attempt = _attempt(crm, staff_key, password, address=address, settings=settings)
    if attempt.outcome == "locked":
        raise LockedOut(
            f"too many failed sign-ins: try again in {attempt.retry_after} s",
            attempt.retry_after,
        )
    if attempt.outcome != "ok" or attempt.staff_key is None:
        raise SignInRefused(WRONG)
    return attempt.staff_key


def _attempt(
    crm: Any, staff_key: str, password: str, *, address: str, settings: WebSettings
) -> _Attempt:
    key = staff_key.strip()[:64]
    subjects = [f"staff:{key}", f"address:{address[:64]}"]
    with crm.transaction(command="api:sign-in") as db:
        now = crm.now()
        wait = lockout.retry_after(connection(db), subjects, now=now, settings=settings)
        if wait:
            db.audit("sign_in", key, "locked_out", None, {"address": address}, customer_id=None)
            return _Attempt(staff_key=None, outcome="locked", retry_after=wait)
        row = connection(db).execute(
            select(staff.c.id, staff.c.key, staff.c.active, web_credentials.c.password_hash)
            .join(web_credentials, web_credentials.c.staff_id == staff.c.id)
            .where(staff.c.key == key)
        ).first()
        verified = row is not None and _verify(row.password_hash, password)
        if row is None or not verified or not row.active:
            if row is None:
                _hasher().hash(password[:MAX_PASSWORD])  # the same time as a wrong password
            lockout.record_failure(connection(db), subjects, now=now)
            why = "departed" if verified else "wrong"
            db.audit(
                "sign_in", key, "failed", None, {"address": address, "why": why}, customer_id=None
            )
            return _Attempt(staff_key=None, outcome="wrong")
        if _hasher().check_needs_rehash(row.password_hash):
            connection(db).execute(
                update(web_credentials)
                .where(web_credentials.c.staff_id == row.id)
                .values(password_hash=hash_password(password), updated_at=now)
            )
        lockout.clear(connection(db), subjects[0])
        db.audit("sign_in", row.key, "signed_in", None, {"address": address}, customer_id=None)
        return _Attempt(staff_key=row.key, outcome="ok")


def _verify(hashed: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(hashed, password[:MAX_PASSWORD]))
    except (VerificationError, InvalidHashError):
        return False
