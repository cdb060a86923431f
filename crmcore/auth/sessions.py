"""Browser sessions: an HttpOnly cookie holding a random secret.

The database keeps the secret's SHA-256, the member of staff, the expiry and,
after sign-out, when it ended; so every process agrees on a session and
signing out ends it at once. A session's CSRF token is derived from its secret
(:func:`csrf_token`): the page that signed in echoes it in ``X-CSRF-Token`` on
every unsafe request, which a cross-site form cannot do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from sqlalchemy import insert, select, update

from crmcore.auth.secrets import derived, digest, new_secret, staff_by_key
from crmcore.auth.tables import web_sessions
from crmcore.schema import staff
from crmcore.storage._driver import connection


@attrs.frozen(kw_only=True)
class SessionCaller:
    """Who a presented session cookie acts as."""

    session_id: int
    staff_key: str


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret``."""
    return derived(secret, "csrf")


def start_session(
    crm: Any, staff_key: str, *, hours: float, address: str
) -> tuple[str, dt.datetime]:
    """A new session for ``staff_key`` (already signed in): its secret and expiry."""
    secret = new_secret()
    with crm.transaction(command="api:sign-in") as db:
        member = staff_by_key(connection(db), staff_key)
        now = crm.now()
        expires_at = now + dt.timedelta(hours=hours)
        connection(db).execute(
            insert(web_sessions).values(
                staff_id=member.id,
                session_hash=digest(secret),
                created_at=now,
                expires_at=expires_at,
                address=address[:64],
            )
        )
    return secret, expires_at


def session_caller(crm: Any, secret: str) -> SessionCaller | None:
    """Who the session cookie ``secret`` acts as; None when it is unknown, ended,
    expired or its member of staff has departed."""
    if not secret or len(secret) > 200:
        return None
    with crm.transaction(write=False, op="session_use") as db:
        row = connection(db).execute(
            select(web_sessions, staff.c.key, staff.c.active)
            .join(staff, staff.c.id == web_sessions.c.staff_id)
            .where(web_sessions.c.session_hash == digest(secret))
        ).first()
    if row is None or row.ended_at is not None or not row.active:
        return None
    if row.expires_at <= crm.now():
        return None
    return SessionCaller(session_id=row.id, staff_key=row.key)


def end_session(crm: Any, secret: str) -> bool:
    """End the session whose cookie holds ``secret``; whether one was open."""
    with crm.transaction(command="api:sign-out") as db:
        row = connection(db).execute(
            select(web_sessions.c.id, staff.c.key)
            .join(staff, staff.c.id == web_sessions.c.staff_id)
            .where(web_sessions.c.session_hash == digest(secret), web_sessions.c.ended_at.is_(None))
        ).first()
        if row is None:
            return False
        connection(db).execute(
            update(web_sessions).where(web_sessions.c.id == row.id).values(ended_at=crm.now())
        )
        db.audit("sign_in", row.key, "signed_out", None, {}, customer_id=None)
    return True
