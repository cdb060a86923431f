"""Relationships: a customer's links to other customers and to staff."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select, update

from crmcore.entities import Relationship
from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import relationships
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row, staff_row
from crmcore.storage._driver import connection


class RelationshipOps(Service):
    """``crm.customers``' relationship operations (directed: from a customer)."""

    # -- relationships -----------------------------------------------------------------
    @operation()
    def add_relationship(
        self,
        kind: str,
        customer: Any,
        *,
        to_customer: Any = None,
        to_staff: Any = None,
        note: str | None = None,
        since: dt.datetime | None = None,
    ) -> Relationship:
        """Link a customer to another customer (household, referral, company_contact,
        ...) or to staff (owner, account_manager, agent, ...). Directed: from ``customer``."""
        kind = clean_text(kind, field="relationship kind", max_len=64) or ""
        if (to_customer is None) == (to_staff is None):
            raise ValidationError(
                "a relationship links to exactly one of: a customer, a member of staff"
            )
        src = customer_row(self.db, customer, write=True)
        to_c = customer_row(self.db, to_customer).id if to_customer is not None else None
        to_s = staff_row(self.db, to_staff) if to_staff is not None else None
        if to_c == src.id:
            raise ValidationError("a customer cannot be related to itself")
        if to_s is not None and not to_s.active:
            raise ValidationError(f"staff member {to_s.key!r} has left")
        dup = connection(self.db).execute(
            select(relationships.c.id).where(
                relationships.c.kind == kind,
                relationships.c.from_customer_id == src.id,
                relationships.c.to_customer_id.is_(None)
                if to_c is None
                else relationships.c.to_customer_id == to_c,
                relationships.c.to_staff_id.is_(None)
                if to_s is None
                else relationships.c.to_staff_id == to_s.id,
                relationships.c.active.is_(True),
            )
        ).first()
        if dup:
            raise Conflict(f"relationship {kind!r} already exists (id {dup.id})")
        with self.db._as_service():  # checked above: both ends are the principal's to link
            res = self.db.execute(
                relationships.insert().values(
                    kind=kind,
                    from_customer_id=src.id,
                    to_customer_id=to_c,
                    to_staff_id=to_s.id if to_s is not None else None,
                    since=since or self.now(),
                    active=True,
                    note=note,
                )
            )
        rel = make.relationship(
            connection(self.db).execute(
                select(relationships).where(relationships.c.id == res.inserted_primary_key[0])
            ).one()
        )
        self.hook.crm_relationship_changed(crm=self.crm, relationship=rel, action="added")
        return rel

    @operation()
    def end_relationship(self, rel_id: int) -> Relationship:
        """End an active relationship; one of a customer the principal may not
        see is "not found", like one that does not exist."""
        self.db.require_write()
        row = connection(self.db).execute(
            select(relationships).where(relationships.c.id == rel_id)
        ).first()
        if row is None or not row.active or not self.db.can_see(row.from_customer_id):
            raise NotFound(f"active relationship {rel_id} not found")
        customer_row(self.db, row.from_customer_id, write=True)
        with self.db._as_service():  # checked above: the principal may change this customer
            self.db.execute(
                update(relationships)
                .where(relationships.c.id == rel_id)
                .values(active=False, until=self.now())
            )
        rel = make.relationship(
            connection(self.db).execute(select(relationships).where(relationships.c.id == rel_id)).one()
        )
        self.hook.crm_relationship_changed(crm=self.crm, relationship=rel, action="ended")
        return rel

    @operation(write=False)
    def relationships(self, ref: Any, *, active_only: bool = True) -> list[Relationship]:
        """The customer's relationships, both directions; one whose other end is a
        customer the principal may not see is left out (it would show that customer)."""
        cid = customer_row(self.db, ref).id
        stmt = select(relationships).where(
            or_(relationships.c.from_customer_id == cid, relationships.c.to_customer_id == cid)
        )
        if active_only:
            stmt = stmt.where(relationships.c.active.is_(True))
        rows = connection(self.db).execute(stmt.order_by(relationships.c.id)).all()
        db = self.db
        return [
            make.relationship(r)
            for r in rows
            if db.principal.unrestricted
            or all(
                other is None or other == cid or db.can_see(other)
                for other in (r.from_customer_id, r.to_customer_id)
            )
        ]
