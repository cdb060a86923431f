"""Staff, customers, lifecycle stages, relationships, labels, merge and forget."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import case, func, or_, select, update

from crmcore import contacts
from crmcore.entities import Customer, Relationship, Staff, StageChange
from crmcore.errors import Conflict, NotFound, TransitionError, ValidationError
from crmcore.parse import clean_key, clean_text
from crmcore.schema import (
    audit_log,
    contact_points,
    customer_labels,
    customer_stats,
    customer_window_spend,
    customers,
    inbound_messages,
    interactions,
    live_customers,
    messages,
    relationships,
    reminders,
    staff,
    stage_changes,
    ticket_events,
    tickets,
    timeline_entries,
    transactions,
)
from crmcore.service import _forget, _rows
from crmcore.service._base import CRMBase, operation
from crmcore.storage._driver import connection

MAX_NAME = 300
CUSTOMER_KINDS = ("person", "organisation")
# customer->staff relationship kinds that give the staff member access to the customer
STAFF_RELATIONSHIPS = ("owner", "account_manager", "agent", "sales")


_CONTACT_LABELS = {"external_id": "external id", "phone": "phone", "email": "e-mail"}


def _by_id(conn: Any, customer_id: int) -> Any:
    """The customers row with this id (unscoped: the caller decides what to show)."""
    return conn.execute(select(customers).where(customers.c.id == customer_id)).first()


class CustomersMixin(CRMBase):
    # -- staff -----------------------------------------------------------------
    @operation()
    def add_staff(
        self,
        key: str,
        name: str,
        *,
        roles: Iterable[str] = ("rep",),
        team: str | None = None,
        supervisor: Any = None,
    ) -> Staff:
        """Add a member of staff; ``roles`` must be configured roles."""
        key = clean_key(key, field="staff key", max_len=64)
        name = clean_text(name, field="staff name", max_len=200) or ""
        roles = list(roles)
        unknown = [r for r in roles if r not in self.config.core["roles"]]
        if unknown:
            raise ValidationError(
                f"role(s) {unknown} not configured; roles: {sorted(self.config.core['roles'])}"
            )
        if connection(self.db).execute(select(staff.c.id).where(staff.c.key == key)).first():
            raise Conflict(f"staff member {key!r} already exists")
        sup = self._staff_id(supervisor)
        self._require_admin("add staff")
        res = self.db.execute(
            staff.insert().values(
                key=key, name=name, roles=roles, team=team, supervisor_id=sup, active=True
            )
        )
        return self.get_staff(res.inserted_primary_key[0])

    def require_admin_outside(self, what: str) -> None:
        """Refuse unless the acting principal has 'admin' (checked in its own read)."""
        with self.transaction(write=False):
            self._require_admin(what)

    def _require_admin(self, what: str) -> None:
        from crmcore.errors import AccessDenied

        if not self.db.principal.can("admin"):
            raise AccessDenied(
                f"{self.db.principal.key} may not {what}: needs the 'admin' permission"
            )

    @operation(write=False)
    def get_staff(self, ref: Any) -> Staff:
        """A member of staff by key or id; an unknown one is :class:`NotFound`."""
        return _rows.staff(self._staff_row(ref))

    @operation(write=False)
    def list_staff(self, *, active_only: bool = False) -> list[Staff]:
        """All members of staff by id; ``active_only`` leaves out those who left."""
        stmt = select(staff).order_by(staff.c.id)
        if active_only:
            stmt = stmt.where(staff.c.active.is_(True))
        return [_rows.staff(r) for r in connection(self.db).execute(stmt)]

    @operation()
    def staff_leave(self, ref: Any, *, handover_to: Any = None) -> dict[str, Any]:
        """A member of staff departs: access revoked at once; customers, open
        tickets and open reminders move to ``handover_to`` (default: their
        supervisor, else the active team member with the fewest customers)."""
        self._require_admin("record a departure")
        leaver = self._staff_row(ref)
        if not leaver.active:
            raise Conflict(f"staff member {leaver.key!r} has already left")
        heir = (
            self._staff_row(handover_to) if handover_to is not None else self._default_heir(leaver)
        )
        if heir is None:
            raise ValidationError(
                f"nobody to hand {leaver.key!r}'s customers to: give --handover-to STAFF"
            )
        if heir.id == leaver.id or not heir.active:
            raise ValidationError(f"cannot hand over to {heir.key!r}: not an active other member")
        now = self.now()
        db = self.db
        # the handed-over customers as they were, read only when a plugin listens
        handed = (
            [
                _rows.customer(r)
                for r in db.execute(
                    select(customers)
                    .where(customers.c.owner_id == leaver.id)
                    .order_by(customers.c.id)
                )
            ]
            if self.plugins.implementers("crm_customer_updated")
            else []
        )
        moved = {
            "customers": db.execute(
                update(customers)
                .where(customers.c.owner_id == leaver.id)
                .values(owner_id=heir.id, updated_at=now)
            ).rowcount,
            "tickets": db.execute(
                update(tickets)
                .where(tickets.c.owner_id == leaver.id, tickets.c.closed_at.is_(None))
                .values(owner_id=heir.id)
            ).rowcount,
            "reminders": db.execute(
                update(reminders)
                .where(reminders.c.staff_id == leaver.id, reminders.c.done_at.is_(None))
                .values(staff_id=heir.id)
            ).rowcount,
            "relationships": db.execute(
                update(relationships)
                .where(relationships.c.to_staff_id == leaver.id, relationships.c.active.is_(True))
                .values(to_staff_id=heir.id)
            ).rowcount,
        }
        db.execute(
            update(staff).where(staff.c.id == leaver.id).values(active=False, departed_at=now)
        )
        for before in handed:
            after = Customer(**{**_asdict(before), "owner_id": heir.id, "updated_at": now})
            self.hook.crm_customer_updated(crm=self, before=before, after=after)
        left = _rows.staff(self._staff_row(leaver.id))
        self.hook.crm_staff_departed(crm=self, staff=left, handover_to=_rows.staff(heir))
        return {"staff": leaver.key, "handover_to": heir.key, "moved": moved}

    def _default_heir(self, leaver: Any) -> Any:
        if leaver.supervisor_id is not None:
            sup = self._staff_row(leaver.supervisor_id)
            if sup.active:
                return sup
        if leaver.team is None:
            return None
        load = (
            select(customers.c.owner_id, func.count().label("n"))
            .group_by(customers.c.owner_id)
            .subquery()
        )
        stmt = (
            select(staff)
            .outerjoin(load, load.c.owner_id == staff.c.id)
            .where(staff.c.team == leaver.team, staff.c.active.is_(True), staff.c.id != leaver.id)
            .order_by(func.coalesce(load.c.n, 0), staff.c.id)
            .limit(1)
        )
        return connection(self.db).execute(stmt).first()

    # -- customers ---------------------------------------------------------------
    def normalise_phone(self, text: str) -> str:
        """The stored (E.164) form of a phone number, with the configured country code."""
        return contacts.normalise_phone(text, self.config.core["country_code"])

    @operation()
    def add_contact_point(
        self, customer: Any, kind: str, value: str, *, consent: bool = True
    ) -> None:
        """Add another phone, e-mail or channel address to a customer (normalised;
        matching finds the customer by it too). A value already held is refused."""
        row = self._customer_row(customer, write=True)
        kind = clean_text(kind, field="contact kind", max_len=32) or ""
        if kind == "phone":
            value = self.normalise_phone(value)
        elif kind == "email":
            value = contacts.normalise_email(value)
        else:
            value = clean_text(value, field=kind, max_len=254) or ""
        if kind in ("phone", "email"):
            clash = self.match_customer(**{kind: value})
            if clash is not None:
                raise Conflict(f"{kind} {value} belongs to customer {clash[0].id}")
        self.db.execute(
            contact_points.insert().values(
                customer_id=row.id, kind=kind, value=value, consent=consent
            )
        )

    @operation(write=False)
    def contact_points_of(self, customer: Any) -> list[dict[str, Any]]:
        """The customer's extra phones, e-mails and channel addresses (kind, value,
        consent), in the order they were added."""
        cid = self._customer_row(customer).id
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
    def match_customer(
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
                row = _by_id(conn, cp.customer_id) if cp is not None else None
            while row is not None and row.merged_into_id is not None:
                row = _by_id(conn, row.merged_into_id)
            if row is not None:
                if not self.db.can_see(row.id):
                    # a uniqueness answer: the value is taken, but by whom stays hidden
                    raise Conflict(f"{_CONTACT_LABELS[what]} {value} is already registered")
                return _rows.customer(row), what
        return None

    @operation()
    def add_customer(
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
        found = self.match_customer(phone=p, email=e, external_id=external_id)
        if found is not None:
            if on_match == "error":
                raise Conflict(f"customer {found[0].id} already has this {found[1]}")
            return found[0]
        lc = self.config.core["lifecycle"]
        stage = stage or lc["initial"]
        if stage not in lc["stages"]:
            raise ValidationError(f"stage {stage!r} is not configured; stages: {lc['stages']}")
        attrs_ = self.validate_attributes(attributes or {})
        owner_id = self._staff_id(owner) if owner is not None else self.db.principal.staff_id
        if owner_id is not None and not self._staff_row(owner_id).active:
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
        self.hook.crm_validate_customer(crm=self, customer=draft, before=None)
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
        customer = Customer(**{**_asdict(draft), "id": cid})
        self.db.audit("customers", str(cid), "insert", None, _asdict(customer), customer_id=cid)
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
        self.hook.crm_customer_created(crm=self, customer=customer)
        return customer

    @operation(write=False)
    def get_customer(self, ref: Any) -> Customer:
        """A customer by id, external id or entity (merged records resolve to the survivor)."""
        return _rows.customer(self._customer_row(ref))

    @operation(write=False)
    def list_customers(
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
            .where(*self._listing_filter(stage, owner))
            .order_by(live_customers.c.id)
        )
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        elif offset:
            stmt = stmt.offset(offset)
        return [_rows.customer(r) for r in self.db.execute(stmt)]

    def _listing_filter(self, stage: str | None, owner: Any) -> list[Any]:
        """The conditions on :data:`~crmcore.schema.live_customers` of a customer
        listing (in ``stage``, of ``owner``)."""
        where: list[Any] = []
        if stage is not None:
            if stage not in self.config.core["lifecycle"]["stages"]:
                raise ValidationError(f"stage {stage!r} is not configured")
            where.append(live_customers.c.stage == stage)
        if owner is not None:
            where.append(live_customers.c.owner_id == self._staff_id(owner))
        return where

    @operation()
    def update_customer(self, ref: Any, **changes: Any) -> Customer:
        """Change fields (name, phone, email, external_id, owner, kind, consent_sms,
        consent_email) and/or ``attributes`` (merged; a None value removes a key)."""
        row = self._customer_row(ref, write=True)
        before = _rows.customer(row)
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
                    clash = self.match_customer(**{field: val}) if val else None
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
            owner_row = self._staff_row(changes["owner"])
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
            self.validate_attributes({k: v for k, v in patch.items() if v is not None})
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
        after = Customer(**{**_asdict(before), **values})
        self.hook.crm_validate_customer(crm=self, customer=after, before=before)
        self.db.execute(update(customers).where(customers.c.id == row.id).values(**values))
        self.hook.crm_customer_updated(crm=self, before=before, after=after)
        return after

    # -- lifecycle -------------------------------------------------------------------
    @operation()
    def change_stage(self, ref: Any, stage: str, *, reason: str = "") -> StageChange:
        """Move a customer to another lifecycle stage; forbidden moves are refused."""
        row = self._customer_row(ref, write=True)
        lc = self.config.core["lifecycle"]
        if stage not in lc["stages"]:
            raise ValidationError(f"stage {stage!r} is not configured; stages: {lc['stages']}")
        allowed = lc["transitions"].get(row.stage, [])
        if stage not in allowed:
            raise TransitionError(
                f"customer {row.id}: cannot move from {row.stage!r} to {stage!r}; "
                f"allowed from {row.stage!r}: {allowed or 'none'}"
            )
        now = self.now()
        reason = (
            clean_text(reason, field="reason", max_len=2000, multiline=True, required=False) or ""
        )
        change = StageChange(
            customer_id=row.id,
            from_stage=row.stage,
            to_stage=stage,
            reason=reason,
            at=now,
            by_staff_id=self.db.principal.staff_id,
        )
        self.db.execute(
            update(customers).where(customers.c.id == row.id).values(stage=stage, updated_at=now)
        )
        self.db.execute(
            stage_changes.insert().values(
                customer_id=row.id,
                from_stage=row.stage,
                to_stage=stage,
                reason=reason,
                at=now,
                by_staff_id=self.db.principal.staff_id,
            )
        )
        self.hook.crm_stage_changed(crm=self, customer=self.get_customer(row.id), change=change)
        return change

    @operation(write=False)
    def stage_history(self, ref: Any) -> list[StageChange]:
        """The customer's lifecycle moves, oldest first, each with its reason and time."""
        row = self._customer_row(ref)
        rows = self.db.execute(
            select(stage_changes)
            .where(stage_changes.c.customer_id == row.id)
            .order_by(stage_changes.c.id)
        )
        return [
            StageChange(
                customer_id=r.customer_id,
                from_stage=r.from_stage,
                to_stage=r.to_stage,
                reason=r.reason,
                at=r.at,
                by_staff_id=r.by_staff_id,
            )
            for r in rows
        ]

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
        src = self._customer_row(customer, write=True)
        to_c = self._customer_row(to_customer).id if to_customer is not None else None
        to_s = self._staff_row(to_staff) if to_staff is not None else None
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
        rel = _rows.relationship(
            connection(self.db).execute(
                select(relationships).where(relationships.c.id == res.inserted_primary_key[0])
            ).one()
        )
        self.hook.crm_relationship_changed(crm=self, relationship=rel, action="added")
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
        self._customer_row(row.from_customer_id, write=True)
        with self.db._as_service():  # checked above: the principal may change this customer
            self.db.execute(
                update(relationships)
                .where(relationships.c.id == rel_id)
                .values(active=False, until=self.now())
            )
        rel = _rows.relationship(
            connection(self.db).execute(select(relationships).where(relationships.c.id == rel_id)).one()
        )
        self.hook.crm_relationship_changed(crm=self, relationship=rel, action="ended")
        return rel

    @operation(write=False)
    def relationships_of(self, ref: Any, *, active_only: bool = True) -> list[Relationship]:
        """The customer's relationships, both directions; one whose other end is a
        customer the principal may not see is left out (it would show that customer)."""
        cid = self._customer_row(ref).id
        stmt = select(relationships).where(
            or_(relationships.c.from_customer_id == cid, relationships.c.to_customer_id == cid)
        )
        if active_only:
            stmt = stmt.where(relationships.c.active.is_(True))
        rows = connection(self.db).execute(stmt.order_by(relationships.c.id)).all()
        db = self.db
        return [
            _rows.relationship(r)
            for r in rows
            if db.principal.unrestricted
            or all(
                other is None or other == cid or db.can_see(other)
                for other in (r.from_customer_id, r.to_customer_id)
            )
        ]

    # -- labels (segments, tiers) -------------------------------------------------------
    @operation()
    def set_label(self, ref: Any, name: str, value: str | None, *, source: str = "core") -> None:
        """Set (or with None, clear) a classification label such as ``abc`` = ``A``."""
        cid = self._customer_row(ref, write=True).id
        self.db.execute(
            customer_labels.delete().where(
                customer_labels.c.customer_id == cid, customer_labels.c.name == name
            )
        )
        if value is not None:
            self.db.execute(
                customer_labels.insert().values(
                    customer_id=cid, name=name, value=str(value), source=source, as_of=self.now()
                )
            )

    @operation(write=False)
    def labels(self, ref: Any) -> dict[str, str]:
        """The customer's labels (``abc``, ``rfm``, ``retail.tier``, ...) as name -> value."""
        cid = self._customer_row(ref).id
        rows = connection(self.db).execute(
            select(customer_labels.c.name, customer_labels.c.value).where(
                customer_labels.c.customer_id == cid
            )
        )
        return {r.name: r.value for r in rows}

    # -- merge and forget -----------------------------------------------------------------
    @operation()
    def merge_customers(self, keep: Any, other: Any) -> Customer:
        """Merge ``other`` into ``keep`` in one transaction: every record of
        ``other`` (core and plugins) moves to ``keep``; ``other`` then resolves to ``keep``."""
        k = self._customer_row(keep, write=True)
        o = self._customer_row(other, write=True)
        if k.id == o.id:
            raise ValidationError("cannot merge a customer into itself")
        keep_before, other_before = _rows.customer(k), _rows.customer(o)
        self.hook.crm_before_customers_merge(crm=self, keep=keep_before, other=other_before)
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
        db.execute(customer_labels.delete().where(customer_labels.c.customer_id == o.id))
        db.execute(customer_stats.delete().where(customer_stats.c.customer_id == o.id))
        connection(db).execute(  # a cache (see crmcore.analytics.abc), not audited data
            customer_window_spend.delete().where(customer_window_spend.c.customer_id == o.id)
        )
        skip = {
            "customers",
            "contact_points",
            "customer_labels",
            "customer_stats",
            "customer_window_spend",
            "audit_log",
        }
        # checked above: the principal may change both customers; their tickets
        # and staff links move with them
        with db._as_service():
            for name, table in self._customer_tables().items():
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
        self.refresh_stats([k.id])
        self.add_timeline_entry(
            k.id,
            "merge",
            f"merged customer {o.id} ({o.name}) into this record",
            data={"merged_id": o.id},
        )
        kept = self.get_customer(k.id)
        other_after = _rows.customer(_by_id(connection(db), o.id))
        self.hook.crm_customer_updated(crm=self, before=other_before, after=other_after)
        self.hook.crm_customer_updated(crm=self, before=keep_before, after=kept)
        return kept

    def _customer_tables(self) -> dict[str, Any]:
        """Every core and plugin table with a customer_id column."""
        from crmcore.schema import metadata

        tables = {t.name: t for t in metadata.tables.values() if "customer_id" in t.c}
        for name, table in self.plugins.declared.get("table", {}).items():
            if table is not None and "customer_id" in table.c:
                tables[name] = table
        return tables

    def _all_tables(self) -> list[Any]:
        """Every core table and every table an enabled plugin declares."""
        from crmcore.schema import metadata

        tables = dict(metadata.tables)
        for name, table in self.plugins.declared.get("table", {}).items():
            if table is not None:
                tables[name] = table
        return list(tables.values())

    def _merged_into(self, cid: int) -> list[Any]:
        """Every customer row merged into ``cid``, directly or through a chain of merges."""
        found: list[Any] = []
        level = [cid]
        while level:
            rows = connection(self.db).execute(
                select(customers.c.id, customers.c.name).where(
                    customers.c.merged_into_id.in_(level)
                )
            ).all()
            found += rows
            level = [r.id for r in rows]
        return found

    @operation()
    def forget_customer(self, ref: Any) -> dict[str, Any]:
        """Erase a customer's personal data everywhere (core and, through the
        hook, plugins); transactions stay, anonymous, for the statistics."""
        row = self._customer_row(ref, write=True)
        if not self.db.principal.can("pii"):
            from crmcore.errors import AccessDenied

            raise AccessDenied(f"{self.db.principal.key} may not erase personal data: needs 'pii'")
        cid, now, gone = row.id, self.now(), "[erased]"
        self.hook.crm_forget_customer(crm=self, customer=_rows.customer(row))
        db = self.db
        twins = self._merged_into(cid)  # records merged into this one keep their name
        contacts_ = connection(db).execute(
            select(contact_points.c.kind, contact_points.c.value).where(
                contact_points.c.customer_id == cid
            )
        ).all()
        needles = _forget.Needles(
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
            after = _rows.customer(_by_id(connection(db), before.id))
            self.hook.crm_customer_updated(crm=self, before=before, after=after)
        # copies anywhere else (other records' texts, plugin tables, audit values),
        # including any a crm_customer_updated hook has just written
        copies = _forget.sweep(connection(db), self._all_tables(), needles)
        # audit values: this customer's rows, the merged twins' and any row copying the data
        also = _forget.audit_condition(connection(db), needles)
        if twins:
            twin_rows = audit_log.c.customer_id.in_([t.id for t in twins])
            also = twin_rows if also is None else or_(also, twin_rows)
        audit_rows = db.audit_redact(cid, also=also)
        log_lines = _forget.redact_log_file(self.config.core["outbox_path"], needles, message_ids)
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
        return [_rows.customer(r) for r in rows]

    # -- export ----------------------------------------------------------------------
    def export_customers(self, path: str, *, fmt: str = "csv") -> dict[str, Any]:
        """Write the customers the principal may see to ``path`` (CSV or JSON lines).

        Needs the 'export' permission; phones and e-mails are masked unless the
        principal also has 'pii'. The export is audited twice: its intent (who,
        which format, where, with or without personal data) is committed before
        the first byte is written, and its completion (how many rows) with the
        reading. The file is written privately (mode 0600) under a temporary name
        and renamed when complete: an interrupted export leaves no file, and a
        file of personal data never exists without its audit row.
        """
        import csv
        import json
        from pathlib import Path

        from crmcore.errors import AccessDenied
        from crmcore.files import check_target, private_output
        from crmcore.masking import Masker

        if fmt not in ("csv", "jsonl"):
            raise ValidationError(f"export format {fmt!r}; expected csv or jsonl")
        target = Path(path)
        check_target(target, "export")
        command = f"customer export {fmt}"

        def require_export() -> bool:
            principal = self.db.principal
            if not principal.can("export"):
                raise AccessDenied(f"{principal.key} may not export customer data: needs 'export'")
            return principal.can("pii")

        where = str(target.absolute())
        with self.transaction(write=True, command=command):
            pii = require_export()
            self.db.audit(
                "export",
                None,
                "export_started",
                None,
                {"path": where, "format": fmt, "personal_data": pii},
                customer_id=None,
            )
        cols = ["id", "external_id", "name", "phone", "email", "stage", "owner_id"]
        stmt = (
            select(*(live_customers.c[c] for c in cols)).order_by(live_customers.c.id)
        )
        n = 0
        renamed = False
        try:
            with self.transaction(write=True, command=command):
                pii = require_export()
                with private_output(target, "export") as temp:
                    with temp.open("w", encoding="utf-8", newline="") as f:
                        writer = csv.writer(f) if fmt == "csv" else None
                        if writer:
                            writer.writerow(cols)
                        masker = Masker.for_crm(self)
                        for row in self.db.execute(stmt.execution_options(yield_per=5000)):
                            values = dict(masker.row(customers.name, row._mapping))
                            if writer:
                                writer.writerow([values[c] for c in cols])
                            else:
                                f.write(json.dumps(values, ensure_ascii=False) + "\n")
                            n += 1
                    self.db.audit(
                        "export",
                        None,
                        "export",
                        None,
                        {"path": where, "rows": n, "format": fmt, "personal_data": pii},
                        customer_id=None,
                    )
                renamed = True
        except BaseException:
            if renamed:  # the completion was not committed: the file goes too
                target.unlink(missing_ok=True)
            raise
        return {"path": str(target), "rows": n, "format": fmt, "personal_data": pii}

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


def _asdict(entity: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(entity, recurse=False)
