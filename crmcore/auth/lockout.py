"""Lockout after repeated failed sign-ins, per account and per client address.

Failures are rows in ``web_login_failures`` (subject ``staff:KEY`` or
``address:ADDR``), so every process sees the same count. Once a subject has
``lockout_failures`` (an address: ``lockout_address_failures``) failures within
``lockout_window_minutes``, it is locked for ``lockout_seconds`` after its last
failure, doubled for each failure beyond the threshold, at most
``lockout_max_seconds``. A successful sign-in clears the account's failures,
never the address's (one good password must not unlock guessing others).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select

from crmcore.auth.settings import WebSettings
from crmcore.auth.tables import web_login_failures


def _threshold(subject: str, settings: WebSettings) -> int:
    if subject.startswith("address:"):
        return settings.lockout_address_failures
    return settings.lockout_failures


def retry_after(
    conn: Any, subjects: Sequence[str], *, now: dt.datetime, settings: WebSettings
) -> int:
    """Seconds until the first of ``subjects`` that is locked may try again (0: none is)."""
    since = now - dt.timedelta(minutes=settings.lockout_window_minutes)
    rows = conn.execute(
        select(
            web_login_failures.c.subject,
            func.count(),
            func.max(web_login_failures.c.at),
        )
        .where(web_login_failures.c.subject.in_(list(subjects)), web_login_failures.c.at > since)
        .group_by(web_login_failures.c.subject)
    ).all()
    wait = 0.0
    for subject, count, last in rows:
        over = count - _threshold(subject, settings)
        if over < 0:
            continue
        locked = min(settings.lockout_max_seconds, settings.lockout_seconds * 2 ** min(over, 30))
        remaining = (last + dt.timedelta(seconds=locked) - now).total_seconds()
        wait = max(wait, remaining)
    return math.ceil(wait) if wait > 0 else 0


def record_failure(conn: Any, subjects: Sequence[str], *, now: dt.datetime) -> None:
    """Count one failed sign-in against each of ``subjects``."""
    conn.execute(insert(web_login_failures), [{"subject": s, "at": now} for s in subjects])


def clear(conn: Any, subject: str) -> None:
    """Forget the failures of ``subject`` (after it signed in)."""
    conn.execute(delete(web_login_failures).where(web_login_failures.c.subject == subject))
