"""Merging two customer records into one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from crmcore.entities import Customer
from crmcore.errors import ValidationError
from crmcore.schema import contact_points, customers, relationships
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row, stored_customer
from crmcore.services.tables import customer_tables, derived_customer_tables
from crmcore.storage._driver import connection


class MergeOps(Service):
    """``crm.customers.merge``."""

    @operation()
    def merge(self, keep: Any, other: Any) -> Customer:
        """Merge ``other`` into ``keep`` in one transaction: every record of
        ``other`` (core and plugins) moves to ``keep``; ``other`` then resolves to ``keep``."""
        k = customer_row(self.db, keep, write=True)
        o = customer_row(self.db, other, write=True)
        if k.id == o.id:
            raise ValidationError("cannot merge a customer into itself")
        keep_before, other_before = make.customer(k), make.customer(o)
        self.hook.crm_before_customers_merge(crm=self.crm, keep=keep_before, other=other_before)
        db = self.db
        # contact points: carry over other's phone/email and extras, skipping duplicates
        have = {
            (r.kind, r.value)
            for r in connection(db).execute(
                select(contact_points.c.kind, contact_points.c.value).where(
                    contact_points.c.customer_id == k.id
                )
            )
        }
        have |= {("phone", k.phone), ("email", k.email)}
        extra = [
            (r.kind, r.value)
            for r in connection(db).execute(
                select(contact_points.c.kind, contact_points.c.value).where(
                    contact_points.c.customer_id == o.id
                )
            )
        ]
        extra += [("phone", o.phone), ("email", o.email)]
        db.execute(contact_points.delete().where(contact_points.c.customer_id == o.id))
        for kind_, value in dict.fromkeys(extra):
            if value and (kind_, value) not in have:
                db.execute(
                    contact_points.insert().values(
                        customer_id=k.id, kind=kind_, value=value, consent=True
                    )
                )
        # derived rows (labels, aggregates, caches; see crmcore.services.tables):
        # the merged record's go, the kept record's aggregates are recomputed below
        derived = derived_customer_tables(self.plugins)
        for table in derived:  # recomputable data: its deletion is not audited
            connection(db).execute(table.delete().where(table.c.customer_id == o.id))
        skip = {"customers", "contact_points", "audit_log", *(t.name for t in derived)}
        # checked above: the principal may change both customers; their tickets
        # and staff links move with them
        with db._as_service():
            for name, table in customer_tables(self.plugins).items():
                if name not in skip:
                    db.execute(
                        update(table).where(table.c.customer_id == o.id).values(customer_id=k.id)
                    )
            db.execute(
                update(relationships)
                .where(relationships.c.from_customer_id == o.id)
                .values(from_customer_id=k.id)
            )
            db.execute(
                update(relationships)
                .where(relationships.c.to_customer_id == o.id)
                .values(to_customer_id=k.id)
            )
            db.execute(
                relationships.delete().where(
                    relationships.c.from_customer_id == k.id,
                    relationships.c.to_customer_id == k.id,
                )
            )
        merged_attrs = {**(o.attributes or {}), **(k.attributes or {})}
        db.execute(
            update(customers)
            .where(customers.c.id == o.id)
            .values(merged_into_id=k.id, phone=None, email=None, updated_at=self.now())
        )
        fill = {"attributes": merged_attrs, "updated_at": self.now()}
        if not k.phone and o.phone:
            fill["phone"] = o.phone
        if not k.email and o.email:
            fill["email"] = o.email
        db.execute(update(customers).where(customers.c.id == k.id).values(**fill))
        self.crm.customers.refresh_stats([k.id])
        self.crm.records.add_timeline_entry(
            k.id,
            "merge",
            f"merged customer {o.id} ({o.name}) into this record",
            data={"merged_id": o.id},
        )
        kept = self.crm.customers.get(k.id)
        other_after = make.customer(stored_customer(connection(db), o.id))
        self.hook.crm_customer_updated(crm=self.crm, before=other_before, after=other_after)
        self.hook.crm_customer_updated(crm=self.crm, before=keep_before, after=kept)
        return kept
