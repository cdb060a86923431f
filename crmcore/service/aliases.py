"""The flat operation names of the CRM before its services, kept for one release.

``crm.add_customer(...)`` still works: it warns (:class:`DeprecationWarning`
naming the new name) and calls ``crm.customers.add(...)``, the same bound
method with the same parameters. One table, :data:`RENAMED`, says where each
old name went: ``"AREA.METHOD"`` is an operation of the service ``crm.AREA``;
``"module:function"`` is a presentation function that takes the CRM first
(``show_phone(crm, value)``). ``crm.jobs()`` (now ``crm.jobs.list()``) is
the one name that is also a service: :class:`~crmcore.services.jobs.JobService`
answers the call itself.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Any

#: old flat name -> where it went
RENAMED: dict[str, str] = {
    # customers
    "add_customer": "customers.add",
    "get_customer": "customers.get",
    "list_customers": "customers.list",
    "count_customers": "customers.count",
    "update_customer": "customers.update",
    "match_customer": "customers.match",
    "normalise_phone": "customers.normalise_phone",
    "add_contact_point": "customers.add_contact_point",
    "contact_points_of": "customers.contact_points",
    "change_stage": "customers.change_stage",
    "stage_history": "customers.stage_history",
    "add_relationship": "customers.add_relationship",
    "end_relationship": "customers.end_relationship",
    "relationships_of": "customers.relationships",
    "set_label": "customers.set_label",
    "labels": "customers.labels",
    "merge_customers": "customers.merge",
    "forget_customer": "customers.forget",
    "refresh_stats": "customers.refresh_stats",
    "export_customers": "crmcore.cli.export:export_customers",
    # records
    "record_interaction": "records.add_interaction",
    "interactions_of": "records.interactions",
    "record_transaction": "records.add_transaction",
    "transactions_of": "records.transactions",
    "add_timeline_entry": "records.add_timeline_entry",
    "timeline": "records.timeline",
    "card": "records.card",
    "till_lookup": "records.till_lookup",
    # tickets
    "workflows": "tickets.workflows",
    "workflow": "tickets.workflow",
    "open_ticket": "tickets.open",
    "get_ticket": "tickets.get",
    "move_ticket": "tickets.move",
    "update_ticket": "tickets.update",
    "ticket_history": "tickets.history",
    "list_tickets": "tickets.list",
    "add_reminder": "tickets.add_reminder",
    "due_reminders": "tickets.due_reminders",
    "complete_reminder": "tickets.complete_reminder",
    # messages
    "enqueue_message": "messages.enqueue",
    "emit_after_commit": "messages.emit_after_commit",
    "outbox": "messages.outbox",
    "send_outbox": "messages.send_outbox",
    "receive_sms": "messages.receive_sms",
    # jobs ("jobs" itself: see JobService.__call__)
    "run_jobs": "jobs.run",
    # staff
    "add_staff": "staff.add",
    "get_staff": "staff.get",
    "list_staff": "staff.list",
    "staff_leave": "staff.leave",
    "acting_principal": "staff.acting_principal",
    "require_admin_outside": "staff.require_admin",
    # admin
    "upgrade": "admin.upgrade",
    "check_schema": "admin.check_schema",
    "audit_trail": "admin.audit_trail",
    "verify_audit_trail": "admin.verify_audit_trail",
    "purge_plan": "admin.purge_plan",
    "purge_plugin": "admin.purge_plugin",
    # presentation
    "show_phone": "crmcore.present:show_phone",
    "show_email": "crmcore.present:show_email",
    "show_id_number": "crmcore.present:show_id_number",
    "coerce_attribute": "crmcore.present:coerce_attribute",
}


def new_name(old: str) -> str:
    """How code now says ``crm.OLD``: ``crm.customers.add`` or ``crmcore.present.show_phone(crm, ...)``."""
    target = RENAMED[old]
    if ":" in target:
        module, function = target.split(":")
        return f"{module}.{function}(crm, ...)"
    return f"crm.{target}"


class DeprecatedName:
    """A class attribute that forwards ``crm.OLD`` to its new place, with a warning."""

    def __init__(self, old: str) -> None:
        self.old = old
        self.target = RENAMED[old]

    def __get__(self, crm: Any, owner: type | None = None) -> Any:
        if crm is None:
            return self  # the class itself: documentation tools see the alias, not a method
        warnings.warn(
            f"crm.{self.old} is deprecated; use {new_name(self.old)}",
            DeprecationWarning,
            stacklevel=2,
        )
        if ":" in self.target:
            module, function = self.target.split(":")
            return functools.partial(getattr(importlib.import_module(module), function), crm)
        area, method = self.target.split(".")
        return getattr(getattr(crm, area), method)

    def __repr__(self) -> str:
        return f"<deprecated crm.{self.old}: use {new_name(self.old)}>"


def install(cls: type) -> None:
    """Give ``cls`` (the CRM) every old name of :data:`RENAMED`."""
    for old in RENAMED:
        if old in vars(cls):
            raise TypeError(f"CRM.{old} is both an operation and a deprecated alias")
        setattr(cls, old, DeprecatedName(old))
