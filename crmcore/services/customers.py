"""``crm.customers``: customers, their contact points and matching, listings and aggregates.

The lifecycle and labels, relationships, merge and forget are in their own
modules (:mod:`crmcore.services.lifecycle`, ``relationships``, ``merge``,
``forget``); :class:`CustomerService` brings them together as ``crm.customers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from sqlalchemy import case, func, or_, select, update

from crmcore import contacts
from crmcore.entities import Customer
from crmcore.errors import Conflict, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import (
    contact_points,
    customer_stats,
    customers,
    live_customers,
    stage_changes,
    transactions,
)
from crmcore.services import rows as make
from crmcore.services.base import operation
from crmcore.services.export import ExportOps
from crmcore.services.forget import ForgetOps
from crmcore.services.lifecycle import LifecycleOps
from crmcore.services.merge import MergeOps
from crmcore.services.refs import customer_row, staff_id, staff_row, stored_customer
from crmcore.services.relationships import RelationshipOps
from crmcore.storage._driver import connection

MAX_NAME = 300
CUSTOMER_KINDS = ("person", "organisation")
# customer->staff relationship kinds that give the staff member access to the customer
STAFF_RELATIONSHIPS = ("owner", "account_manager", "agent", "sales")

_CONTACT_LABELS = {"external_id": "external id", "phone": "phone", "email": "e-mail"}


class CustomerService(LifecycleOps, RelationshipOps, MergeOps, ForgetOps, ExportOps):
    """Customers: add, get, list, count, update, match, contact points, stage,
    labels, relationships, merge, forget, export rows and the kept aggregates."""

    area = "customers"

    def normalise_phone(self, text: str) -> str:
        """The stored (E.164) form of a phone number, with the configured country code."""
        return contacts.normalise_phone(text, self.config.core["country_code"])

    @operation()
    def add_contact_point(
        self, customer: Any, kind: str, value: str, *, consent: bool = True
    ) -> None:
        """Add another phone, e-mail or channel address to a customer (normalised;
        matching finds the customer by it too). A value already held is refused."""
        row = customer_row(self.db, customer, write=True)
        kind = clean_text(kind, field="contact kind", max_len=32) or ""
        if kind == "phone":
            value = self.normalise_phone(value)
        elif kind == "email":
            value = contacts.normalise_email(value)
        else:
            value = clean_text(value, field=kind, max_len=254) or ""
        if kind in ("phone", "email"):
            clash = self.crm.customers.match(**{kind: value})
            if clash is not None:
                raise Conflict(f"{kind} {value} belongs to customer {clash[0].id}")
        self.db.execute(
            contact_points.insert().values(
                customer_id=row.id, kind=kind, value=value, consent=consent
            )
        )

    @operation(write=False)
    def contact_points(self, customer: Any) -> list[dict[str, Any]]:
        """The customer's extra phones, e-mails and channel addresses (kind, value,
        consent), in the order they were added."""
        cid = customer_row(self.db, customer).id
        rows = self.db.execute(
            select(contact_points)
            .where(contact_points.c.customer_id == cid)
            .order_by(contact_points.c.id)
        )
        return [{"kind": r.kind, "value": r.value, "consent": r.consent} for r in rows]

    def _norm_contacts(self, phone: Any, email: Any) -> tuple[str | None, str | None]:
        cc = self.config.core["country_code"]
        p = contacts.normalise_phone(phone, cc) if phone not in (None, "") else None
        e = contacts.normalise_email(email) if email not in (None, "") else None
        return p, e

    @operation(write=False)
    def match(
        self, *, phone: str | None = None, email: str | None = None, external_id: str | None = None
    ) -> tuple[Customer, str] | None:
        """An existing customer with this external id, phone or email (normalised;
        in that order of precedence), and which of them matched; None if none.

        A match the acting principal may not see is refused with :class:`Conflict`
        ("phone +86... is already registered") that does not name the customer:
        the value is taken, so it cannot be used again, but whose it is stays hidden."""
        p, e = self._norm_contacts(phone, email)
        wanted = [("external_id", external_id), ("phone", p), ("email", e)]
        conds = [customers.c[what] == value for what, value in wanted if value]
        if not conds:
            return None
        conn = connection(self.db)
        rows = conn.execute(select(customers).where(or_(*conds)).limit(10)).all()
        if len(conds) > 1 or external_id is None:
            extra = [
                (contact_points.c.kind == what) & (contact_points.c.value == value)
                for what, value in wanted[1:]
                if value
            ]
            if extra:
                cps = conn.execute(
                    select(
                        contact_points.c.customer_id, contact_points.c.kind, contact_points.c.value
                    )
                    .where(or_(*extra))
                    .limit(10)
                ).all()
            else:
                cps = []
        else:
            cps = []
        for what, value in wanted:
            if not value:
                continue
            row = next((r for r in rows if getattr(r, what) == value), None)
            if row is None and what != "external_id":
                cp = next((c for c in cps if c.kind == what and c.value == value), None)
                row = stored_customer(conn, cp.customer_id) if cp is not None else None
            while row is not None and row.merged_into_id is not None:
                row = stored_customer(conn, row.merged_into_id)
            if row is not None:
                if not self.db.can_see(row.id):
                    # a uniqueness answer: the value is taken, but by whom stays hidden
                    raise Conflict(f"{_CONTACT_LABELS[what]} {value} is already registered")
                return make.customer(row), what
        return None

    @operation()
    def add(
        self,
        name: str,
        *,
        phone: str | None = None,
        email: str | None = None,
        external_id: str | None = None,
        owner: Any = None,
        kind: str = "person",
        attributes: Mapping[str, Any] | None = None,
        consent_sms: bool = True,
        consent_email: bool = True,
        stage: str | None = None,
        on_match: str = "return",
    ) -> Customer:
        """Create a customer, or return the existing one with the same external
        id, phone or email (``on_match="error"`` refuses instead)."""
        self.db.require_write()
        name = clean_text(name, field="name", max_len=MAX_NAME) or ""
        external_id = clean_text(external_id, field="external id", max_len=128, required=False)
        if kind not in CUSTOMER_KINDS:
            raise ValidationError(f"kind: {kind!r}; expected one of {CUSTOMER_KINDS}")
        p, e = self._norm_contacts(phone, email)
        found = self.crm.customers.match(phone=p, email=e, external_id=external_id)
        if found is not None:
            if on_match == "error":
                raise Conflict(f"customer {found[0].id} already has this {found[1]}")
            return found[0]
        lc = self.config.core["lifecycle"]
        stage = stage or lc["initial"]
        if stage not in lc["stages"]:
            raise ValidationError(f"stage {stage!r} is not configured; stages: {lc['stages']}")
        attrs_ = self.crm.validate_attributes(attributes or {})
        owner_id = staff_id(self.db, owner) if owner is not None else self.db.principal.staff_id
        if owner_id is not None and not staff_row(self.db, owner_id).active:
            raise ValidationError(f"owner {owner!r} has left; choose an active member of staff")
        now = self.now()
        draft = Customer(
            id=0,
            name=name,
            external_id=external_id,
            kind=kind,
            phone=p,
            email=e,
            consent_sms=bool(consent_sms),
            consent_email=bool(consent_email),
            owner_id=owner_id,
            stage=stage,
            attributes=attrs_,
            created_at=now,
            updated_at=now,
        )
        self.hook.crm_validate_customer(crm=self.crm, customer=draft, before=None)
        res = connection(self.db).execute(
            customers.insert(),
            {
                "name": name,
                "external_id": external_id,
                "kind": kind,
                "phone": p,
                "email": e,
                "consent_sms": bool(consent_sms),
                "consent_email": bool(consent_email),
                "owner_id": owner_id,
                "stage": stage,
                "attributes": attrs_,
                "created_at": now,
                "updated_at": now,
            },
        )
        key = res.inserted_primary_key
        assert key is not None  # a one-row insert knows the key it made
        cid = key[0]
        customer = Customer(**{**attrs.asdict(draft, recurse=False), "id": cid})
        self.db.audit("customers", str(cid), "insert", None, attrs.asdict(customer, recurse=False), customer_id=cid)
        connection(self.db).execute(
            stage_changes.insert(),
            {
                "customer_id": cid,
                "from_stage": None,
                "to_stage": stage,
                "reason": "created",
                "at": now,
                "by_staff_id": self.db.principal.staff_id,
            },
        )
        self.hook.crm_customer_created(crm=self.crm, customer=customer)
        return customer

    @operation(write=False)
    def get(self, ref: Any) -> Customer:
        """A customer by id, external id or entity (merged records resolve to the survivor)."""
        return make.customer(customer_row(self.db, ref))

    @operation()
    def update(self, ref: Any, **changes: Any) -> Customer:
        """Change fields (name, phone, email, external_id, owner, kind, consent_sms,
        consent_email) and/or ``attributes`` (merged; a None value removes a key)."""
        row = customer_row(self.db, ref, write=True)
        before = make.customer(row)
        allowed = {
            "name",
            "phone",
            "email",
            "external_id",
            "owner",
            "kind",
            "consent_sms",
            "consent_email",
            "attributes",
        }
        bad = set(changes) - allowed
        if bad:
            raise ValidationError(f"cannot change {sorted(bad)}; changeable: {sorted(allowed)}")
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = clean_text(changes["name"], field="name", max_len=MAX_NAME)
        if "phone" in changes or "email" in changes:
            p, e = self._norm_contacts(changes.get("phone"), changes.get("email"))
            for field, val in (("phone", p), ("email", e)):
                if field in changes:
                    clash = self.crm.customers.match(**{field: val}) if val else None
                    if clash and clash[0].id != row.id:
                        raise Conflict(
                            f"{field} belongs to customer {clash[0].id}; merge them instead"
                        )
                    values[field] = val
        if "external_id" in changes:
            values["external_id"] = clean_text(
                changes["external_id"], field="external id", max_len=128, required=False
            )
        if "owner" in changes:
            owner_row = staff_row(self.db, changes["owner"])
            if owner_row is not None and not owner_row.active:
                raise ValidationError(
                    f"owner {owner_row.key!r} has left; choose an active member of staff"
                )
            values["owner_id"] = owner_row.id if owner_row is not None else None
        if "kind" in changes:
            if changes["kind"] not in CUSTOMER_KINDS:
                raise ValidationError(f"kind: expected one of {CUSTOMER_KINDS}")
            values["kind"] = changes["kind"]
        for flag in ("consent_sms", "consent_email"):
            if flag in changes:
                values[flag] = bool(changes[flag])
        if "attributes" in changes:
            patch = dict(changes["attributes"] or {})
            self.crm.validate_attributes({k: v for k, v in patch.items() if v is not None})
            merged = dict(before.attributes)
            for k, v in patch.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            values["attributes"] = merged
        if not values:
            return before
        values["updated_at"] = self.now()
        after = Customer(**{**attrs.asdict(before, recurse=False), **values})
        self.hook.crm_validate_customer(crm=self.crm, customer=after, before=before)
        self.db.execute(update(customers).where(customers.c.id == row.id).values(**values))
        self.hook.crm_customer_updated(crm=self.crm, before=before, after=after)
        return after

    def listing_filter(self, stage: str | None, owner: Any) -> list[Any]:
        """The conditions on :data:`~crmcore.schema.live_customers` of a customer
        listing (in ``stage``, of ``owner``)."""
        where: list[Any] = []
        if stage is not None:
            if stage not in self.config.core["lifecycle"]["stages"]:
                raise ValidationError(f"stage {stage!r} is not configured")
            where.append(live_customers.c.stage == stage)
        if owner is not None:
            where.append(live_customers.c.owner_id == staff_id(self.db, owner))
        return where

    @operation(write=False)
    def count(self, *, stage: str | None = None, owner: Any = None) -> int:
        """How many live customers the principal may see (in ``stage``, of ``owner``):
        the total of what :meth:`list_customers` pages through."""
        where = self.listing_filter(stage, owner)
        return int(self.db.scalar(select(func.count()).select_from(live_customers).where(*where)))

    # -- statistics ---------------------------------------------------------------------
    def refresh_stats(self, customer_ids: Iterable[int] | None = None) -> None:
        """Recompute per-customer aggregates (first/last purchase, count, spend)
        set-based, for the given customers or for everyone. Refunds count in the
        spend only: the count and the first and last times are of purchases (of
        any transaction for a customer who has refunds only, which older data
        may hold, so the row is still complete). It rewrites kept figures, so it
        needs 'write' or 'admin' (an auditor may only read them)."""
        db = self.db
        if not (db.principal.can("write") or db.principal.can("admin")):
            from crmcore.errors import AccessDenied

            raise AccessDenied(
                f"{db.principal.key} may not rebuild the aggregates: needs 'write' or 'admin'"
            )
        t = transactions
        bought = t.c.kind == "purchase"
        agg = select(
            t.c.customer_id,
            func.coalesce(func.min(case((bought, t.c.occurred_at))), func.min(t.c.occurred_at)),
            func.coalesce(func.max(case((bought, t.c.occurred_at))), func.max(t.c.occurred_at)),
            func.count(case((bought, 1))),
            func.sum(t.c.amount_cents),
        ).group_by(t.c.customer_id)
        dele = customer_stats.delete()
        if customer_ids is not None:
            ids = list(customer_ids)
            if not ids:
                return
            agg = agg.where(t.c.customer_id.in_(ids))
            dele = dele.where(customer_stats.c.customer_id.in_(ids))
        connection(db).execute(dele)
        connection(db).execute(
            customer_stats.insert().from_select(
                ["customer_id", "first_at", "last_at", "tx_count", "spend_cents"], agg
            )
        )

    @operation(write=False)
    def list(
        self,
        *,
        stage: str | None = None,
        owner: Any = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Customer]:
        """The live customers the principal may see, by id; with ``limit`` one
        page of them (``offset`` rows skipped), read as one paged query."""
        stmt = (
            select(live_customers)
            .where(*self.listing_filter(stage, owner))
            .order_by(live_customers.c.id)
        )
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        elif offset:
            stmt = stmt.offset(offset)
        return [make.customer(r) for r in self.db.execute(stmt)]
