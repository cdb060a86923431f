"""Lifecycle monitoring, exit reasons, follow-up playbooks, recurring reminders and
retention: the operations (the rules themselves live in
:mod:`crmcore.lifecycle_rules`, :mod:`crmcore.lifecycle_report`,
:mod:`crmcore.followups` and :mod:`crmcore.protect`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from crmcore import followups, lifecycle_report, lifecycle_rules, protect
from crmcore.entities import Reminder
from crmcore.errors import ValidationError
from crmcore.parse import clean_text
from crmcore.schema import exit_reasons, reminders
from crmcore.services import rows as make
from crmcore.services.base import Service, operation
from crmcore.services.refs import customer_row, staff_row
from crmcore.services.tickets import TicketService


class LifecycleService(Service):
    """``crm.lifecycle``: what the lifecycle rules would move, the loss rate, exit
    reasons and follow-up playbooks."""

    area = "lifecycle"

    @operation(write=False)
    def preview(self, at: dt.datetime | None = None) -> dict[str, Any]:
        """What the lifecycle rules would move as of ``at`` (default now), per rule,
        changing nothing."""
        return lifecycle_rules.preview(self.crm, at or self.now())

    @operation(write=False)
    def report(self, start: dt.datetime, end: dt.datetime, *, by: str = "whole") -> dict[str, Any]:
        """The loss rate from ``start`` to ``end`` (whole, or ``by="month"``), per owner
        and team, with the exit reasons counted; of the customers the principal sees."""
        return lifecycle_report.report(self.crm, start, end, by=by)

    @operation()
    def exit_reason(self, customer: Any, reason: str, *, note: str = "") -> dict[str, Any]:
        """Record why a lost customer left (an exit survey's answer); the customer
        must be in the lost stage."""
        row = customer_row(self.db, customer, write=True)
        lost = self.config.core["lifecycle"]["lost_stage"]
        if row.stage != lost:
            raise ValidationError(
                f"customer {row.id} is {row.stage!r}, not {lost!r}: "
                "exit reasons are recorded for lost customers"
            )
        reason = clean_text(reason, field="reason", max_len=200) or ""
        note = clean_text(note, field="note", max_len=2000, multiline=True, required=False) or ""
        now = self.now()
        res = self.db.execute(
            exit_reasons.insert().values(
                customer_id=row.id,
                reason=reason,
                note=note,
                at=now,
                by_staff_id=self.db.principal.staff_id,
            )
        )
        return {
            "id": res.inserted_primary_key[0],
            "customer": row.id,
            "reason": reason,
            "note": note,
            "at": now.isoformat(),
        }

    def playbooks(self) -> dict[str, followups.Playbook]:
        """Every follow-up playbook by name (crm.toml's and the plugins')."""
        return followups.playbooks(self.crm)

    @operation()
    def start_playbook(self, name: str, customer: Any) -> dict[str, Any]:
        """Start playbook ``name`` for ``customer`` now: a reminder per step for the
        customer's owner, cancelled when the customer responds."""
        return followups.start(self.crm, name, customer)


class ProtectService(Service):
    """``crm.protect``: retention rules and the keys of encrypted attributes."""

    area = "protect"

    def encrypted_attributes(self) -> tuple[str, ...]:
        """The attributes stored encrypted (``[crm.protect] encrypted``)."""
        return self.crm.sealing.encrypted

    def retention_preview(self, at: dt.datetime | None = None) -> dict[str, Any]:
        """Per retention rule, the customers who would be forgotten as of ``at``."""
        return protect.preview(self.crm, at or self.now())

    def retention_apply(self, at: dt.datetime | None = None) -> dict[str, Any]:
        """Forget the customers the retention rules select as of ``at``."""
        return protect.apply(self.crm, at or self.now())

    def rotate_key(self) -> dict[str, Any]:
        """Re-encrypt every value sealed with a key other than the current one
        (see :meth:`crmcore.services.sealed.Sealing.rotate_key`)."""
        return self.crm.sealing.rotate_key()


class RecurringTickets(TicketService):
    """``crm.tickets`` with recurring reminders: ``every`` on a reminder makes the
    next one when it is done."""

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
        every: str | None = None,
    ) -> Reminder:
        """A follow-up for ``staff`` due at ``due_at`` (see
        :meth:`TicketService.add_reminder`); with ``every`` (``30d``, ``2w``,
        ``1m``) it recurs: done, the next one is created."""
        repeat = followups.check_every(every)
        made = super().add_reminder(staff, text, due_at, customer=customer, key=key, source=source)
        if repeat is not None:
            self.db.execute(
                update(reminders).where(reminders.c.id == made.id).values(repeat_every=repeat)
            )
        return made

    @operation()
    def complete_reminder(self, reminder_id: int, *, outcome: str | None = None) -> Reminder:
        """Mark a reminder done (optional ``outcome`` note); a recurring one makes
        the next, due one interval later (see :meth:`next_reminder`). The next one
        goes to the customer's owner when the member of staff has left."""
        before = self.db.execute(select(reminders).where(reminders.c.id == reminder_id)).first()
        done = super().complete_reminder(reminder_id, outcome=outcome)
        if before is not None and before.repeat_every:
            staff_id = before.staff_id
            if staff_id is not None and not staff_row(self.db, staff_id).active:
                owner = None
                if before.customer_id is not None:
                    owner = customer_row(self.db, before.customer_id).owner_id
                staff_id = owner
            if staff_id is not None:
                self.add_reminder(
                    staff_id,
                    before.text,
                    followups.next_due(before.due_at, before.repeat_every, self.now()),
                    customer=before.customer_id,
                    key=f"repeat:{before.id}",
                    source=before.source,
                    every=before.repeat_every,
                )
        return done

    @operation(write=False)
    def next_reminder(self, reminder_id: int) -> Reminder | None:
        """The reminder a recurring reminder made when it was done (None if none)."""
        row = self.db.execute(
            select(reminders).where(reminders.c.key == f"repeat:{reminder_id}")
        ).first()
        return None if row is None else make.reminder(row)
