"""``crm.tickets``: tickets (complaints, service requests), their workflows, and reminders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from crmcore.entities import Reminder, Ticket, TicketMove
from crmcore.errors import NotFound, TransitionError, ValidationError
from crmcore.parse import clean_text, parse_int
from crmcore.registry import Workflow
from crmcore.schema import reminders, ticket_events, tickets
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.checks import check_time
from crmcore.services.refs import customer_row, staff_id, staff_row
from crmcore.storage._driver import connection


class TicketService(Service):
    """Tickets: workflows, open, get, move, update, history, list; and reminders."""

    area = "tickets"

    def workflows(self) -> dict[str, Workflow]:
        """Every ticket workflow: the core's, the plugins', and those in the config."""
        flows = dict(self.plugins.declared.get("workflow", {}))
        for name, spec in self.config.core["workflows"].items():
            try:
                flows[name] = Workflow(
                    name=name,
                    states=spec["states"],
                    transitions={k: tuple(v) for k, v in spec.get("transitions", {}).items()},
                    due_hours=spec.get("due_hours", {}),
                )
            except ValueError as e:
                raise ValidationError(f"{self.config.where}: crm.workflows.{name}: {e}") from None
        return flows

    def workflow(self, name: str) -> Workflow:
        """The ticket workflow of that name (the config's and the plugins'); an unknown name is
        a :class:`ValidationError` naming the defined ones."""
        flows = self.workflows()
        if name not in flows:
            raise ValidationError(
                f"ticket workflow {name!r} is not defined; defined: {sorted(flows)}"
            )
        return flows[name]

    def _due(self, flow: Workflow, state: str, now: dt.datetime) -> dt.datetime | None:
        hours = flow.due_hours.get(state)
        return now + dt.timedelta(hours=hours) if hours is not None else None

    @operation()
    def open(
        self,
        customer: Any,
        subject: str,
        *,
        kind: str = "complaint",
        workflow: str = "default",
        owner: Any = None,
        due_at: dt.datetime | None = None,
        data: Mapping[str, Any] | None = None,
        source: str = "core",
        at: dt.datetime | None = None,
    ) -> Ticket:
        """Open a ticket in the workflow's first state, owned by ``owner`` (default:
        the customer's owner) and due by ``due_at`` (default: the state's allowance)."""
        row = customer_row(self.db, customer, write=True)
        flow = self.workflow(workflow)
        subject = clean_text(subject, field="subject", max_len=2000) or ""
        kind = clean_text(kind, field="kind", max_len=32) or ""
        now = check_time(at or self.now(), "at")
        state = flow.states[0]
        owner_id = staff_id(self.db, owner) if owner is not None else row.owner_id
        due = due_at or self._due(flow, state, now)
        with self.db._as_service():  # a ticket's customer and owner decide access
            res = self.db.execute(
                tickets.insert().values(
                    customer_id=row.id,
                    kind=kind,
                    workflow=flow.name,
                    state=state,
                    subject=subject,
                    owner_id=owner_id,
                    due_at=due,
                    opened_at=now,
                    data=dict(data or {}),
                    source=source,
                )
            )
        tid = res.inserted_primary_key[0]
        self.db.execute(
            ticket_events.insert().values(
                ticket_id=tid,
                from_state=None,
                to_state=state,
                owner_id=owner_id,
                due_at=due,
                at=now,
                by_staff_id=self.db.principal.staff_id,
            )
        )
        ticket = self.get(tid)
        self.hook.crm_ticket_opened(crm=self.crm, ticket=ticket)
        return self.get(tid)

    def _ticket_row(self, ticket_id: Any, *, write: bool = False) -> Any:
        tid = getattr(ticket_id, "id", ticket_id)
        try:
            tid = parse_int(tid, field="ticket")  # ASCII digits, 64-bit
        except ValidationError as e:
            if "out of range" in str(e):
                raise NotFound(f"ticket {ticket_id!r} not found") from None
            raise NotFound(f"ticket {ticket_id!r}: expected a ticket number") from None
        row = self.db.execute(select(tickets).where(tickets.c.id == tid)).first()
        if row is None:
            raise NotFound(f"ticket {tid} not found")
        if write:
            self.db.require_customer(row.customer_id, write=True)
        return row

    @operation(write=False)
    def get(self, ticket_id: Any) -> Ticket:
        """A ticket by id, if the principal may see its customer (else :class:`NotFound`)."""
        return make.ticket(self._ticket_row(ticket_id))

    @operation()
    def move(
        self,
        ticket_id: Any,
        to_state: str,
        *,
        owner: Any = None,
        due_at: dt.datetime | None = None,
        note: str | None = None,
        at: dt.datetime | None = None,
    ) -> Ticket:
        """Move a ticket to the next state its workflow allows; others are refused.
        ``at`` back-dates the step (default now); it may not precede the last step."""
        row = self._ticket_row(ticket_id, write=True)
        flow = self.workflow(row.workflow)
        if row.closed_at is not None:
            raise TransitionError(f"ticket {row.id} is closed ({row.state})")
        allowed = list(flow.allowed(row.state))
        if to_state not in allowed:
            raise TransitionError(
                f"ticket {row.id}: cannot move from {row.state!r} to {to_state!r}; allowed: {allowed or 'none'}"
            )
        now = check_time(at, "at") if at is not None else self.now()
        last = connection(self.db).execute(
            select(ticket_events.c.at)
            .where(ticket_events.c.ticket_id == row.id)
            .order_by(ticket_events.c.id.desc())
            .limit(1)
        ).scalar()
        if last is not None and now < last:
            raise ValidationError(
                f"ticket {row.id}: a step at {now} cannot precede the last one ({last})"
            )
        owner_id = staff_id(self.db, owner) if owner is not None else row.owner_id
        due = due_at or self._due(flow, to_state, now)
        closed = now if to_state == flow.final else None
        note = clean_text(note, field="note", max_len=4000, multiline=True, required=False)
        with self.db._as_service():  # checked above: the principal may change this customer
            self.db.execute(
                update(tickets)
                .where(tickets.c.id == row.id)
                .values(state=to_state, owner_id=owner_id, due_at=due, closed_at=closed)
            )
        self.db.execute(
            ticket_events.insert().values(
                ticket_id=row.id,
                from_state=row.state,
                to_state=to_state,
                owner_id=owner_id,
                due_at=due,
                at=now,
                note=note,
                by_staff_id=self.db.principal.staff_id,
            )
        )
        move = TicketMove(
            ticket_id=row.id,
            from_state=row.state,
            to_state=to_state,
            at=now,
            owner_id=owner_id,
            due_at=due,
            note=note,
        )
        ticket = self.get(row.id)
        self.hook.crm_ticket_moved(crm=self.crm, ticket=ticket, move=move)
        return self.get(row.id)

    @operation()
    def update(
        self,
        ticket_id: Any,
        *,
        owner: Any = None,
        due_at: dt.datetime | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Ticket:
        """Reassign, reschedule or add data (merged) without changing state."""
        row = self._ticket_row(ticket_id, write=True)
        values: dict[str, Any] = {}
        if owner is not None:
            values["owner_id"] = staff_id(self.db, owner)
        if due_at is not None:
            values["due_at"] = check_time(due_at, "due_at")
        if data is not None:
            values["data"] = {**(row.data or {}), **dict(data)}
        if values:
            with self.db._as_service():  # checked above: the principal may change this customer
                self.db.execute(update(tickets).where(tickets.c.id == row.id).values(**values))
        return self.get(row.id)

    @operation(write=False)
    def history(self, ticket_id: Any) -> list[TicketMove]:
        """A ticket's moves between workflow states, oldest first."""
        row = self._ticket_row(ticket_id)
        rows = connection(self.db).execute(
            select(ticket_events)
            .where(ticket_events.c.ticket_id == row.id)
            .order_by(ticket_events.c.id)
        )
        return [
            TicketMove(
                ticket_id=r.ticket_id,
                from_state=r.from_state,
                to_state=r.to_state,
                at=r.at,
                owner_id=r.owner_id,
                due_at=r.due_at,
                note=r.note,
            )
            for r in rows
        ]

    @operation()
    def add_reminder(
        self,
        staff: Any,
        text: str,
        due_at: dt.datetime,
        *,
        customer: Any = None,
        key: str | None = None,
        source: str = "core",
    ) -> Reminder:
        """A follow-up for ``staff`` due at ``due_at`` (not before the clock's now:
        a reminder due in the past would never fire on time). With ``key``,
        adding the same reminder again returns the first one (jobs stay
        idempotent)."""
        if key is not None:
            seen = connection(self.db).execute(select(reminders).where(reminders.c.key == key)).first()
            if seen is not None:
                return make.reminder(seen)
        member = staff_row(self.db, staff)
        if member is None or not member.active:
            raise ValidationError(f"reminder: staff member {staff!r} is not active")
        due_at = check_time(due_at, "due_at")
        now = self.now()
        if due_at < now:
            raise ValidationError(
                f"reminder: due {due_at:%Y-%m-%d %H:%M} is before now ({now:%Y-%m-%d %H:%M}); "
                "give a time from now on"
            )
        cid = customer_row(self.db, customer, write=True).id if customer is not None else None
        text = clean_text(text, field="text", max_len=2000) or ""
        res = self.db.execute(
            reminders.insert().values(
                staff_id=member.id,
                customer_id=cid,
                due_at=due_at,
                text=text,
                key=key,
                source=source,
            )
        )
        return make.reminder(
            connection(self.db).execute(
                select(reminders).where(reminders.c.id == res.inserted_primary_key[0])
            ).one()
        )

    @operation(write=False)
    def due_reminders(
        self,
        *,
        at: dt.datetime | None = None,
        staff: Any = None,
        customer: Any = None,
        include_done: bool = False,
    ) -> list[Reminder]:
        """Open reminders due by ``at`` (default now), for one member of staff or all."""
        stmt = select(reminders).order_by(reminders.c.due_at, reminders.c.id)
        if not include_done:
            stmt = stmt.where(reminders.c.done_at.is_(None))
        if at is not None or customer is None:
            stmt = stmt.where(reminders.c.due_at <= (at or self.now()))
        if staff is not None:
            stmt = stmt.where(reminders.c.staff_id == staff_id(self.db, staff))
        if customer is not None:
            stmt = stmt.where(reminders.c.customer_id == customer_row(self.db, customer).id)
        return [make.reminder(r) for r in self.db.execute(stmt)]

    @operation()
    def complete_reminder(self, reminder_id: int, *, outcome: str | None = None) -> Reminder:
        """Mark a reminder done, with an optional ``outcome`` note; a reminder already done is
        refused."""
        row = self.db.execute(select(reminders).where(reminders.c.id == reminder_id)).first()
        if row is None:
            raise NotFound(f"reminder {reminder_id} not found")
        if row.done_at is not None:
            raise TransitionError(f"reminder {reminder_id} is already done")
        text = row.text + (f" — outcome: {outcome}" if outcome else "")
        self.db.execute(
            update(reminders).where(reminders.c.id == row.id).values(done_at=self.now(), text=text)
        )
        if outcome and row.customer_id is not None:
            self.crm.records.add_interaction(
                row.customer_id,
                "note",
                f"follow-up done: {outcome}",
                data={"reminder_id": row.id},
                source=row.source,
            )
        return make.reminder(
            connection(self.db).execute(select(reminders).where(reminders.c.id == row.id)).one()
        )

    @operation(write=False)
    def list(
        self,
        *,
        customer: Any = None,
        state: str | None = None,
        kind: str | None = None,
        open_only: bool = False,
        overdue_at: dt.datetime | None = None,
    ) -> list[Ticket]:
        """Tickets the principal may see, by id: of one ``customer``, in one ``state`` or workflow
        ``kind``, only open ones, or those overdue at ``overdue_at``."""
        stmt = select(tickets).order_by(tickets.c.id)
        if customer is not None:
            stmt = stmt.where(tickets.c.customer_id == customer_row(self.db, customer).id)
        if state is not None:
            stmt = stmt.where(tickets.c.state == state)
        if kind is not None:
            stmt = stmt.where(tickets.c.kind == kind)
        if open_only or overdue_at is not None:
            stmt = stmt.where(tickets.c.closed_at.is_(None))
        if overdue_at is not None:
            stmt = stmt.where(tickets.c.due_at < overdue_at)
        return [make.ticket(r) for r in self.db.execute(stmt)]

    # -- reminders ------------------------------------------------------------------
