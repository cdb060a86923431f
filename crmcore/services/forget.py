"""Forgetting a customer: their personal data erased everywhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update

from crmcore.entities import Customer
from crmcore.errors import AccessDenied
from crmcore.schema import (
    audit_log,
    contact_points,
    customers,
    inbound_messages,
    interactions,
    messages,
    relationships,
    reminders,
    ticket_events,
    tickets,
    timeline_entries,
)
from crmcore.services import erasure
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row, stored_customer
from crmcore.services.tables import all_tables, derived_customer_tables
from crmcore.storage._driver import connection


class ForgetOps(Service):
    """``crm.customers.forget``."""

    @operation()
    def forget(self, ref: Any) -> dict[str, Any]:
        """Erase a customer's personal data everywhere (core and, through the
        hook, plugins); transactions stay, anonymous, for the statistics. The
        customer's rows in derived tables (labels, a plugin's scores) are
        deleted and the kept aggregates recomputed from those transactions."""
        row = customer_row(self.db, ref, write=True)
        if not self.db.principal.can("pii"):
            raise AccessDenied(f"{self.db.principal.key} may not erase personal data: needs 'pii'")
        cid, now, gone = row.id, self.now(), "[erased]"
        self.hook.crm_forget_customer(crm=self.crm, customer=make.customer(row))
        db = self.db
        twins = _merged_into(connection(db), cid)  # records merged into this one keep their name
        contacts_ = connection(db).execute(
            select(contact_points.c.kind, contact_points.c.value).where(
                contact_points.c.customer_id == cid
            )
        ).all()
        needles = erasure.Needles(
            [row.name, *(t.name for t in twins)],
            [row.phone, *(v for k, v in contacts_ if k == "phone")],
            [row.email, *(v for k, v in contacts_ if k == "email")],
        )
        message_ids = {
            r.id
            for r in connection(db).execute(select(messages.c.id).where(messages.c.customer_id == cid))
        }
        if row.phone:
            with db._as_service():  # raw input (internal), erased for a customer checked above
                db.execute(
                    update(inbound_messages)
                    .where(inbound_messages.c.from_address == row.phone)
                    .values(from_address=gone, text=gone)
                )
        db.execute(contact_points.delete().where(contact_points.c.customer_id == cid))
        db.execute(
            update(interactions).where(interactions.c.customer_id == cid).values(text=gone, data={})
        )
        db.execute(
            update(messages)
            .where(messages.c.customer_id == cid)
            .values(to_address=None, body=gone, payload=None)
        )
        db.execute(
            update(tickets).where(tickets.c.customer_id == cid).values(subject=gone, data={})
        )
        db.execute(
            update(timeline_entries)
            .where(timeline_entries.c.customer_id == cid)
            .values(summary=gone, data={})
        )
        with db._as_service():  # staff links of a customer checked above
            db.execute(
                update(relationships)
                .where(relationships.c.from_customer_id == cid)
                .values(note=None)
            )
        db.execute(update(reminders).where(reminders.c.customer_id == cid).values(text=gone))
        connection(db).execute(  # not audited: the audit row would copy the notes again
            update(ticket_events)
            .where(
                ticket_events.c.ticket_id.in_(
                    select(tickets.c.id).where(tickets.c.customer_id == cid)
                )
            )
            .values(note=None)
        )
        # derived rows (labels, aggregates, caches; see crmcore.services.tables) go,
        # and the aggregates are recomputed from the transactions, which stay
        ids = [cid, *(t.id for t in twins)]
        for table in derived_customer_tables(self.plugins):  # recomputable: not audited
            connection(db).execute(table.delete().where(table.c.customer_id.in_(ids)))
        self.crm.customers.refresh_stats(ids)
        befores = self._forgotten_befores(row, twins)
        db.execute(
            update(customers)
            .where(customers.c.id == cid)
            .values(
                name=f"forgotten customer {cid}",
                phone=None,
                email=None,
                external_id=None,
                attributes={},
                consent_sms=False,
                consent_email=False,
                forgotten_at=now,
                updated_at=now,
            )
        )
        for twin in twins:  # the merged rows are part of this customer, whoever owns them
            connection(db).execute(
                update(customers)
                .where(customers.c.id == twin.id)
                .values(
                    name=f"forgotten customer {twin.id}",
                    external_id=None,
                    attributes={},
                    forgotten_at=now,
                    updated_at=now,
                )
            )
        for before in befores:  # the erased record as ``after``
            after = make.customer(stored_customer(connection(db), before.id))
            self.hook.crm_customer_updated(crm=self.crm, before=before, after=after)
        # copies anywhere else (other records' texts, plugin tables, audit values),
        # including any a crm_customer_updated hook has just written
        copies = erasure.sweep(connection(db), all_tables(self.plugins), needles)
        # audit values: this customer's rows, the merged twins' and any row copying the data
        also = erasure.audit_condition(connection(db), needles)
        if twins:
            twin_rows = audit_log.c.customer_id.in_([t.id for t in twins])
            also = twin_rows if also is None else or_(also, twin_rows)
        audit_rows = db.audit_redact(cid, also=also)
        log_lines = erasure.redact_log_file(self.config.core["outbox_path"], needles, message_ids)
        db.audit(
            "customers",
            str(cid),
            "forget_copies",
            None,
            {"rows": copies, "audit_rows": audit_rows, "outbox_log_lines": log_lines},
            customer_id=cid,
        )
        return {"customer": cid, "forgotten_at": now.isoformat()}

    def _forgotten_befores(self, row: Any, twins: list[Any]) -> list[Customer]:
        """The customer and each record merged into it as stored before erasure,
        for ``crm_customer_updated`` (read only when a plugin listens)."""
        if not self.plugins.implementers("crm_customer_updated"):
            return []
        rows = [row]
        if twins:
            rows += connection(self.db).execute(
                select(customers)
                .where(customers.c.id.in_([t.id for t in twins]))
                .order_by(customers.c.id)
            ).all()
        return [make.customer(r) for r in rows]


def _merged_into(conn: Any, cid: int) -> list[Any]:
    """Every customer row merged into ``cid``, directly or through a chain of merges."""
    found: list[Any] = []
    level = [cid]
    while level:
        merged = conn.execute(
            select(customers.c.id, customers.c.name).where(customers.c.merged_into_id.in_(level))
        ).all()
        found += merged
        level = [r.id for r in merged]
    return found
