"""References: a customer or a member of staff named by id, external id, key or entity.

Every service resolves references here, in the open transaction's query layer
and as its principal may see them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from crmcore.db import DB, Prepared
from crmcore.errors import AccessDenied, NotFound
from crmcore.schema import customers, staff
from crmcore.storage._driver import connection, run

# Built once: statement construction costs more than executing a cached one.
_BY_ID = select(customers).where(customers.c.id == bindparam("id"))
_BY_EXT = select(customers).where(customers.c.external_id == bindparam("ext"))
_BY_ID_OR_EXT = select(customers).where(
    (customers.c.id == bindparam("id")) | (customers.c.external_id == bindparam("ext"))
)
_ID_MERGED = Prepared(
    select(customers.c.id, customers.c.merged_into_id).where(customers.c.id == bindparam("id"))
)


def not_found_customer(ref: Any) -> NotFound:
    """The one answer for a customer reference that does not exist *or* that the
    acting principal may not see: the two must be indistinguishable."""
    shown = getattr(ref, "id", ref)
    return NotFound(f"customer {shown!r} not found")


def customer_row(db: DB, ref: Any, *, write: bool = False) -> Any:
    """Find a customer by id, external id or entity, as the principal may see it.

    A customer the principal may not see answers exactly like one that does
    not exist (:class:`NotFound`, "customer REF not found"), so a reference
    never confirms that someone else's customer exists. The ``write``
    permission is checked first, before the lookup, for the same reason."""
    principal = db.principal
    if not principal.active:  # refused as departed, before any lookup
        raise AccessDenied(f"{principal.key} has departed and may not see or change customers")
    if write:
        db.require_write()
    ref_id = getattr(ref, "id", None)
    if ref_id is not None or (isinstance(ref, int) and not isinstance(ref, bool)):
        rows = connection(db).execute(_BY_ID, {"id": ref_id if ref_id is not None else ref}).all()
    elif isinstance(ref, str) and ref.strip():
        text = ref.strip()
        if text.isascii() and text.isdigit() and len(text) < 18:  # not '²' or '١'
            rows = connection(db).execute(_BY_ID_OR_EXT, {"id": int(text), "ext": text}).all()
        else:
            rows = connection(db).execute(_BY_EXT, {"ext": text}).all()
    else:
        raise NotFound(f"customer {ref!r}: give an id or an external id")
    if not principal.unrestricted:
        rows = [r for r in rows if db.can_see(r.merged_into_id or r.id)]
    if not rows:
        raise not_found_customer(ref)
    row = rows[0] if len(rows) == 1 else next(r for r in rows if str(r.id) == str(ref).strip())
    while row.merged_into_id is not None:
        target = connection(db).execute(_BY_ID, {"id": row.merged_into_id}).first()
        if target is None or not db.can_see(target.id):
            raise not_found_customer(ref)
        row = target
    return row


def customer_id(db: DB, ref: Any, *, write: bool = False) -> int:
    """:func:`customer_row`'s id; an unrestricted principal's lookup by id (an
    int or an entity) reads only the id and the merge pointer, on the driver."""
    if db.principal.unrestricted:
        ref_id = getattr(ref, "id", None)
        if ref_id is None and isinstance(ref, int) and not isinstance(ref, bool):
            ref_id = ref
        if ref_id is not None:
            if write:
                db.require_write()
            row = run(db, _ID_MERGED, {"id": ref_id}).fetchone()
            if row is None:
                raise not_found_customer(ref)
            if row[1] is not None:
                return customer_id(db, row[1], write=write)
            return int(row[0])
    return int(customer_row(db, ref, write=write).id)


def staff_row(db: DB, ref: Any) -> Any:
    """The staff row named by key, id or entity (None for None); an unknown one is
    :class:`NotFound`."""
    if ref is None:
        return None
    ref_id = getattr(ref, "id", None)
    if ref_id is not None:
        cond = staff.c.id == ref_id
    elif isinstance(ref, int):
        cond = staff.c.id == ref
    else:
        cond = staff.c.key == str(ref)
    row = connection(db).execute(select(staff).where(cond)).first()
    if row is None:
        raise NotFound(f"staff member {ref!r} not found")
    return row


def staff_id(db: DB, ref: Any) -> int | None:
    """:func:`staff_row`'s id (None for None)."""
    row = staff_row(db, ref)
    return None if row is None else int(row.id)


def require_admin(db: DB, what: str) -> None:
    """Refuse unless the acting principal has 'admin' (:class:`AccessDenied` naming ``what``)."""
    if not db.principal.can("admin"):
        raise AccessDenied(f"{db.principal.key} may not {what}: needs the 'admin' permission")


def stored_customer(conn: Any, cid: int) -> Any:
    """The customers row with this id, unscoped: the caller has checked the
    reference and decides what to show."""
    return conn.execute(_BY_ID, {"id": cid}).first()
