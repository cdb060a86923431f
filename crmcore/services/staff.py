"""``crm.staff``: members of staff, their departures and the acting principal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from sqlalchemy import func, inspect, select, update

from crmcore.access import Principal
from crmcore.entities import Customer, Staff
from crmcore.errors import AccessDenied, Conflict, ValidationError
from crmcore.parse import clean_key, clean_text
from crmcore.schema import customers, relationships, reminders, staff, tickets
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.refs import require_admin, staff_id, staff_row
from crmcore.storage._driver import connection


class StaffService(Service):
    """Members of staff: add, get, list, a departure's hand-over, and who is acting."""

    area = "staff"

    @operation()
    def add(
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
        sup = staff_id(self.db, supervisor)
        require_admin(self.db, "add staff")
        res = self.db.execute(
            staff.insert().values(
                key=key, name=name, roles=roles, team=team, supervisor_id=sup, active=True
            )
        )
        return self.get(res.inserted_primary_key[0])

    def require_admin(self, what: str) -> None:
        """Refuse unless the acting principal has 'admin' (checked in its own read)."""
        with self.crm.transaction(write=False):
            require_admin(self.db, what)

    @operation(write=False)
    def get(self, ref: Any) -> Staff:
        """A member of staff by key or id; an unknown one is :class:`NotFound`."""
        return make.staff(staff_row(self.db, ref))

    @operation(write=False)
    def list(self, *, active_only: bool = False) -> list[Staff]:
        """All members of staff by id; ``active_only`` leaves out those who left."""
        stmt = select(staff).order_by(staff.c.id)
        if active_only:
            stmt = stmt.where(staff.c.active.is_(True))
        return [make.staff(r) for r in connection(self.db).execute(stmt)]

    @operation()
    def leave(self, ref: Any, *, handover_to: Any = None) -> dict[str, Any]:
        """A member of staff departs: access revoked at once; customers, open
        tickets and open reminders move to ``handover_to`` (default: their
        supervisor, else the active team member with the fewest customers)."""
        require_admin(self.db, "record a departure")
        leaver = staff_row(self.db, ref)
        if not leaver.active:
            raise Conflict(f"staff member {leaver.key!r} has already left")
        heir = (
            staff_row(self.db, handover_to) if handover_to is not None else self._default_heir(leaver)
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
                make.customer(r)
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
            after = Customer(**{**attrs.asdict(before, recurse=False), "owner_id": heir.id, "updated_at": now})
            self.hook.crm_customer_updated(crm=self.crm, before=before, after=after)
        left = make.staff(staff_row(self.db, leaver.id))
        self.hook.crm_staff_departed(crm=self.crm, staff=left, handover_to=make.staff(heir))
        return {"staff": leaver.key, "handover_to": heir.key, "moved": moved}

    def _default_heir(self, leaver: Any) -> Any:
        if leaver.supervisor_id is not None:
            sup = staff_row(self.db, leaver.supervisor_id)
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

    # -- the acting principal ----------------------------------------------------
    def acting_principal(self) -> Principal | None:
        """The principal this CRM acts as, resolved now (one read): an unknown
        staff key is refused (:class:`AccessDenied`, one line). None only for a
        database without tables yet acting as the config's ``default_principal``
        (nobody is anyone before the schema exists)."""
        ref = self.crm.principal_ref
        if isinstance(ref, Principal):
            return ref
        with self.crm.engine.connect() as conn:
            if not inspect(conn).has_table(staff.name):
                if ref == self.config.core.get("default_principal"):
                    return None
                raise AccessDenied(
                    f"unknown staff member {ref!r}: the database has no staff yet; "
                    "create the schema without --as (crm init)"
                )
            return self.crm.resolve_principal(conn)
