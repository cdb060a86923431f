"""The records behind ``Idempotency-Key`` (table ``web_idempotency``), kept in
the database so that every process answers a retry the same way.

A first request claims its key (a row without a status); its answer is then
stored, or the claim released when the answer must not be replayed. A claim
left by a process that died is taken over after :data:`STALE_CLAIM`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from crmcore.auth.tables import web_idempotency
from crmcore.errors import Conflict
from crmcore.storage._driver import connection

STALE_CLAIM = dt.timedelta(minutes=5)
OTHER_REQUEST = (
    "Idempotency-Key {key!r} was already used for another request; use a new key for a new request"
)
IN_PROGRESS = "the request with Idempotency-Key {key!r} is still being answered; retry shortly"


@attrs.frozen(kw_only=True)
class Claim:
    """What to do with a POST carrying a key: ``new`` (run it), ``replay`` (send
    the kept answer), ``refused`` (a problem: ``status`` and ``detail``)."""

    state: str
    status: int = 0
    detail: str = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    body: str = ""

    def response(self) -> Any:
        """The kept answer, as first sent (marked ``Idempotent-Replayed: true``)."""
        from starlette.responses import Response

        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-type"}
        headers["Idempotent-Replayed"] = "true"
        return Response(
            self.body,
            status_code=self.status,
            headers=headers,
            media_type=self.headers.get("content-type", "application/json"),
        )


def _where(caller: str, key: str) -> Any:
    return (web_idempotency.c.caller == caller) & (web_idempotency.c.key == key)


def claim(crm: Any, caller: str, key: str, request_hash: str, ttl: dt.timedelta) -> Claim:
    """Claim ``key`` for ``caller``'s request, or say how it was answered before."""
    try:
        with crm.transaction(command="api:idempotency") as db:
            now = crm.now()
            row = connection(db).execute(select(web_idempotency).where(_where(caller, key))).first()
            stale = row is not None and (
                row.created_at <= now - ttl
                or (row.status is None and row.created_at <= now - STALE_CLAIM)
            )
            if row is not None and not stale:
                if row.request_hash != request_hash:
                    return Claim(state="refused", status=422, detail=OTHER_REQUEST.format(key=key))
                if row.status is None:
                    return Claim(state="refused", status=409, detail=IN_PROGRESS.format(key=key))
                return Claim(
                    state="replay",
                    status=row.status,
                    headers=dict(row.headers or {}),
                    body=row.body or "",
                )
            if stale:
                connection(db).execute(delete(web_idempotency).where(_where(caller, key)))
            connection(db).execute(
                insert(web_idempotency).values(
                    caller=caller, key=key, request_hash=request_hash, created_at=now
                )
            )
    except (Conflict, IntegrityError):  # another process claimed it a moment ago
        return Claim(state="refused", status=409, detail=IN_PROGRESS.format(key=key))
    return Claim(state="new")


def store(crm: Any, caller: str, key: str, status: int, headers: dict[str, str], body: str) -> None:
    """Keep the answer to the claimed request."""
    with crm.transaction(command="api:idempotency") as db:
        connection(db).execute(
            update(web_idempotency)
            .where(_where(caller, key))
            .values(status=status, headers=dict(headers), body=body)
        )


def release(crm: Any, caller: str, key: str) -> None:
    """Give the key up: the request may be sent again and run again."""
    with crm.transaction(command="api:idempotency") as db:
        connection(db).execute(
            delete(web_idempotency).where(_where(caller, key), web_idempotency.c.status.is_(None))
        )
