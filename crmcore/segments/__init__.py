"""Saved segments: a named filter stored as data (a JSON condition document,
see :mod:`crmcore.segments.conditions`), compiled to one statement over the live
customers and run through the access filter, so counts and members are always
those the acting principal may see.

The functions here are the service (the CLI and campaigns call them); each is
one transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from crmcore.errors import AccessDenied, Conflict, NotFound, ValidationError
from crmcore.parse import clean_key, clean_text
from crmcore.present import show_email, show_phone
from crmcore.schema import campaigns, live_customers, segments
from crmcore.segments.conditions import (
    SegmentCondition,
    compile_condition,
    plugin_conditions,
    validate,
)
from crmcore.storage._driver import connection

MAX_MEMBERS = 10_000
EXPORT_COLUMNS = ("id", "external_id", "name", "stage", "owner_id", "phone", "email")


def parse_conditions(text: str, *, where: str = "--where") -> Any:
    """A JSON condition document from the command line or a file."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationError(f"{where}: not JSON ({e.msg} at character {e.pos})") from None


def _row(crm: Any, name: str) -> Any:
    name = clean_key(name, field="segment name", max_len=64)
    row = crm.db.execute(select(segments).where(segments.c.name == name)).first()
    if row is None:
        raise NotFound(f"segment {name!r} not found; see `crm segment list`")
    return row


def _plain(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "conditions": row.conditions,
        "description": row.description,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
    }


def add_segment(crm: Any, name: str, conditions: Any, *, description: str = "") -> dict[str, Any]:
    """Save a segment; the conditions are validated and compiled first, so a
    saved segment always runs. A name already used is refused."""
    name = clean_key(name, field="segment name", max_len=64)
    description = clean_text(description, field="description", max_len=500, required=False) or ""
    with crm.transaction() as db:
        db.require_write()
        validate(crm, conditions)
        compile_condition(crm, conditions, crm.now())
        if db.exists_globally(segments, name=name):
            raise Conflict(f"segment {name!r} already exists; remove it first or pick another name")
        db.execute(
            segments.insert().values(
                name=name,
                conditions=conditions,
                description=description,
                created_at=crm.now(),
                created_by=db.principal.key,
            )
        )
        return _plain(_row(crm, name))


def list_segments(crm: Any) -> list[dict[str, Any]]:
    """Every saved segment, by name."""
    with crm.transaction(write=False) as db:
        return [_plain(r) for r in db.execute(select(segments).order_by(segments.c.name))]


def show_segment(crm: Any, name: str) -> dict[str, Any]:
    """One saved segment."""
    with crm.transaction(write=False):
        return _plain(_row(crm, name))


def remove_segment(crm: Any, name: str) -> dict[str, Any]:
    """Delete a segment no campaign uses."""
    with crm.transaction() as db:
        db.require_write()
        row = _row(crm, name)
        used = (
            connection(db).execute(select(campaigns.c.name).where(campaigns.c.segment_id == row.id))
            .scalars()
            .all()
        )
        if used:
            raise Conflict(f"segment {row.name!r} is used by campaign(s) {', '.join(used)}")
        db.execute(segments.delete().where(segments.c.id == row.id))
        return {"removed": row.name}


def where_clause(crm: Any, conditions: Mapping[str, Any], as_of: dt.datetime | None = None) -> Any:
    """The clause on ``live_customers`` of ``conditions`` (validated here)."""
    validate(crm, conditions)
    return compile_condition(crm, conditions, as_of or crm.now())


def members_statement(crm: Any, name: str, as_of: dt.datetime | None = None) -> Any:
    """``SELECT live_customers.* WHERE <the segment's conditions>`` (unscoped:
    run it through ``crm.db.execute``, which applies the access filter)."""
    row = _row(crm, name)
    return select(live_customers).where(where_clause(crm, row.conditions, as_of))


def count_members(crm: Any, name: str, *, at: dt.datetime | None = None) -> int:
    """How many live customers the principal may see are in the segment."""
    with crm.transaction(write=False) as db:
        stmt = members_statement(crm, name, at).subquery("members")
        return int(db.execute(select(func.count()).select_from(stmt)).scalar_one())


def _member(crm: Any, r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "external_id": r.external_id,
        "name": r.name,
        "stage": r.stage,
        "owner_id": r.owner_id,
        "phone": show_phone(crm, r.phone),
        "email": show_email(crm, r.email),
    }


def segment_members(
    crm: Any, name: str, *, limit: int = 100, at: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The segment's members the principal may see, by id (phone and e-mail
    masked without 'pii')."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_MEMBERS:
        raise ValidationError(f"segment members: --limit {limit!r}; expected 1 to {MAX_MEMBERS}")
    with crm.transaction(write=False) as db:
        stmt = members_statement(crm, name, at).order_by(live_customers.c.id).limit(limit)
        return [_member(crm, r) for r in db.execute(stmt)]


def export_members(
    crm: Any, name: str, path: str, *, at: dt.datetime | None = None
) -> dict[str, Any]:
    """Write the segment's visible members to ``path`` as CSV, a private file
    written atomically (needs 'export'; phones and e-mails masked without 'pii')."""
    from crmcore.files import private_output

    with crm.transaction() as db:  # the audit row of the export commits with it
        principal = db.principal
        if not principal.can("export"):
            raise AccessDenied(f"{principal.key} may not export customer data: needs 'export'")
        stmt = members_statement(crm, name, at).order_by(live_customers.c.id)
        rows = 0
        with private_output(path, "segment export") as temp:
            with open(temp, "w", encoding="utf-8", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
                writer.writeheader()
                for r in db.execute(stmt):
                    writer.writerow(_member(crm, r))
                    rows += 1
        db.audit(
            "segments", name, "export", None, {"rows": rows, "path": str(path)}, customer_id=None
        )
    return {"segment": name, "rows": rows, "path": str(path)}


__all__ = [
    "SegmentCondition",
    "add_segment",
    "count_members",
    "export_members",
    "list_segments",
    "members_statement",
    "parse_conditions",
    "plugin_conditions",
    "remove_segment",
    "segment_members",
    "show_segment",
    "where_clause",
]
