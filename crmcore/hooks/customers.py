"""Customer, stage and relationship hooks.

Validation hooks run before the write; after-write hooks run after it, inside
the same transaction. A hook that raises (validation hooks raise
:class:`~crmcore.errors.ValidationError`) rolls the whole operation back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.entities import Customer, CustomerBatch, Relationship, Staff, StageChange
    from crmcore.service import CRM


@hookspec
def crm_validate_customer(crm: CRM, customer: Customer, before: Customer | None) -> None:
    """Validate a customer before it is written.

    :param crm: the CRM bound to the open transaction.
    :param customer: the customer as it will be written (``id`` is 0 for a new one).
    :param before: the stored customer for an update, ``None`` for a create.

    Fires on ``add_customer`` and ``update_customer``, inside the transaction,
    before the write. Raise ``ValidationError`` to refuse; the return is ignored.
    """


@hookspec
def crm_customer_created(crm: CRM, customer: Customer) -> None:
    """A customer was created (``customer.id`` is set).

    Fires inside the creating transaction, after the insert. Write your own
    records through ``crm``; raising rolls the creation back.
    """


@hookspec
def crm_customers_imported(crm: CRM, batch: CustomerBatch) -> None:
    """Many customers were created by a bulk import (one call per batch).

    :param batch: the id range of the new customers.

    Fires inside the import's transaction. React with set-based SQL over the id
    range. A plugin that implements only ``crm_customer_created`` is called once
    per customer instead (correct, but slow).
    """


@hookspec
def crm_customer_updated(crm: CRM, before: Customer, after: Customer) -> None:
    """A customer's fields or attributes changed. Fires inside the transaction."""


@hookspec
def crm_stage_changed(crm: CRM, customer: Customer, change: StageChange) -> None:
    """A customer moved lifecycle stage (the change is already recorded).

    Fires inside the transaction; raise to refuse the move after the fact (the
    whole call rolls back).
    """


@hookspec
def crm_relationship_changed(crm: CRM, relationship: Relationship, action: str) -> None:
    """A relationship was added (``action="added"``) or ended (``"ended"``).
    Fires inside the transaction."""


@hookspec
def crm_classify_customer(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """Return the plugin's classification labels for a customer card, e.g.
    ``{"retail.tier": "gold"}``, or ``None``.

    Called when a customer card is read (``crm customer show``); read-only, in
    the read's transaction. Results from all plugins are merged.
    """


@hookspec
def crm_customers_merged(crm: CRM, keep: Customer, other: Customer) -> None:
    """``other`` is being merged into ``keep``: move your own records.

    Fires inside the merge transaction, before ``other`` is marked merged. The
    core moves every plugin table that has a ``customer_id`` column by itself;
    implement this for anything else (unique keys that would clash, sums to
    combine). Raise to refuse the merge.
    """


@hookspec
def crm_forget_customer(crm: CRM, customer: Customer) -> None:
    """Erase the customer's personal data from your tables (right to be forgotten).

    Fires inside the ``crm customer forget`` transaction. Keep anonymous facts
    needed for statistics (amounts, dates); blank names, phones, plates, free
    text. The core erases its own tables.
    """


@hookspec
def crm_staff_departed(crm: CRM, staff: Staff, handover_to: Staff) -> None:
    """``staff`` left; the core has already moved their customers, open tickets and
    open reminders to ``handover_to`` and revoked their access.

    Fires inside the departure transaction. Move or flag your own records (e.g.
    policies whose serving agent left). Raise to refuse the departure.
    """
