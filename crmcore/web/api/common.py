"""What every core route shares: plain, masked output; ETags; keyset cursors;
``fields=`` projection; the page shape."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from crmcore.errors import ValidationError
from crmcore.schema import customers
from crmcore.storage._driver import connection
from crmcore.web.problems import PreconditionFailed, PreconditionRequired

MAX_ID = 2**63 - 1  # BIGINT; a larger number cannot name a record
MAX_LIMIT = 500
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A record's id in a body or query."""
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A record's id in a path."""
DEFAULT_LIMIT = 50


class Strict(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    """One page of a listing; ``next_cursor`` reads the next (None: the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


def plain(crm: Any, value: Any) -> Any:
    """``value`` (entities, datetimes, lists) as JSON-able data, personal data
    masked for the acting principal exactly as the CLI prints it."""
    from crmcore.cli._app import to_plain
    from crmcore.masking import Masker

    with crm.transaction(write=False):
        return Masker.for_crm(crm).output(to_plain(value))


def etag_of(data: Any) -> str:
    """A strong ETag of a resource's representation."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'


def with_etag(response: Response, data: dict[str, Any]) -> dict[str, Any]:
    """Set ``ETag`` for the single resource ``data`` and return it."""
    response.headers["ETag"] = etag_of(data)
    return data


def require_match(request: Request, current: dict[str, Any]) -> None:
    """Refuse an update unless ``If-Match`` names the current version: 428
    without the header, 412 when another change came first."""
    sent = request.headers.get("if-match")
    if sent is None:
        raise PreconditionRequired(
            "If-Match is required: send the ETag of the version you read (GET it first)"
        )
    tags = [t.strip().removeprefix("W/") for t in sent.split(",")]
    if "*" not in tags and etag_of(current) not in tags:
        raise PreconditionFailed(
            "If-Match does not name the current version: it changed since you read it; "
            "GET it again and reapply your change"
        )


def lock_customer(crm: Any, customer_id: int) -> None:
    """Hold the customer's row until the open transaction ends, so a check of its
    version and the update that follows cannot interleave with another update
    (PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite's write transaction already
    holds the database's one write lock). Call after the principal's lookup."""
    connection(crm.db).execute(
        select(customers.c.id).where(customers.c.id == customer_id).with_for_update()
    )


def encode_cursor(position: Sequence[Any]) -> str:
    """An opaque cursor for the keyset ``position`` (the last row's sort key)."""
    raw = json.dumps(list(position), separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, *, arity: int = 1) -> list[Any] | None:
    """The keyset position ``cursor`` names (None: from the start); a cursor this
    API did not hand out is a :class:`ValidationError`."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if (
        not isinstance(position, list)
        or len(position) != arity
        or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= MAX_ID for p in position
        )
    ):
        raise ValidationError(f"cursor {cursor[:40]!r}: not a cursor this API handed out")
    return position


def project(items: Iterable[Mapping[str, Any]], fields: str | None) -> list[dict[str, Any]]:
    """``items`` with only the comma-separated ``fields`` (all without it); a
    field the items do not have is a :class:`ValidationError`."""
    rows = [dict(i) for i in items]
    if not fields:
        return rows
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    if not wanted:
        raise ValidationError("fields: name at least one field")
    if rows:
        unknown = [f for f in wanted if f not in rows[0]]
        if unknown:
            raise ValidationError(
                f"fields: unknown field(s) {', '.join(unknown)}; known: {', '.join(rows[0])}"
            )
    return [{f: r[f] for f in wanted} for r in rows]
