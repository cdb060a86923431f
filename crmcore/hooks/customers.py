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
    """A customer was created.

    :param crm: the CRM bound to the creating transaction; write through it.
    :param customer: the new customer (``id`` set).

    Fires inside the creating transaction, after the insert. Your writes commit
    with it; raising rolls the creation back. Return value ignored.
    """


@hookspec
def crm_customer_created_batch(crm: CRM, batch: CustomerBatch) -> None:
    """Many customers were created by a bulk import (one call per batch).

    :param crm: the CRM bound to the import's transaction.
    :param batch: the id range of the new customers (:class:`CustomerBatch`).

    Fires inside the import's transaction. React with set-based SQL over the id
    range. A plugin that implements only ``crm_customer_created`` is called once
    per customer instead (correct, but slow). Raising rolls the batch back.
    """


@hookspec
def crm_customer_updated(crm: CRM, before: Customer, after: Customer) -> None:
    """A stored customer changed; one call per customer changed.

    :param crm: the CRM bound to the open transaction.
    :param before: the customer as it was.
    :param after: the customer as written.

    Fires inside the changing transaction, after the write; raising rolls the
    whole operation back. It fires for every change of a customer's row:

    - ``update_customer`` (fields, attributes, owner, consent);
    - a merge: for ``other`` (its phone and e-mail moved to ``keep``; it now
      resolves to ``keep``), then for ``keep`` (contacts and attributes filled
      in), after ``crm_before_customers_merge``;
    - a forget (``crm customer forget``): for the customer and for each record
      merged into it, ``after`` being the erased record. ``before`` holds the
      personal data being erased: do not copy it; whatever the hook writes is
      swept for it like every other table;
    - a departure (``crm staff leave``): for each customer handed over to the
      successor (``owner_id`` changed), before ``crm_staff_departed``.

    It does not fire for a creation (``crm_customer_created``, or
    ``crm_customer_created_batch`` for a bulk import), for a lifecycle move
    (``crm_stage_changed``; the ``stage`` field changes only that way), for
    labels and aggregates (stored apart from the customer), nor when
    ``crm plugins purge`` removes a disabled plugin's attribute values.
    """


@hookspec
def crm_stage_changed(crm: CRM, customer: Customer, change: StageChange) -> None:
    """A customer moved lifecycle stage (the change is already recorded).

    :param crm: the CRM bound to the open transaction.
    :param customer: the customer after the move.
    :param change: the :class:`StageChange` (from, to, reason, time, by whom).

    Fires inside the transaction; raise to refuse the move after the fact (the
    whole call rolls back).
    """


@hookspec
def crm_relationship_changed(crm: CRM, relationship: Relationship, action: str) -> None:
    """A relationship was added or ended.

    :param crm: the CRM bound to the open transaction.
    :param relationship: the relationship after the change.
    :param action: ``"added"`` or ``"ended"``.

    Fires inside the transaction; raising rolls the change back.
    """


@hookspec
def crm_classify_customer(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """Return the plugin's classification labels for a customer card.

    :param crm: the CRM bound to the read transaction.
    :param customer: the customer whose card is read.

    Called when a customer card is read (``crm customer show``); read-only.
    Return e.g. ``{"retail.tier": "gold"}`` or ``None``; results of all plugins
    are merged over the stored labels.
    """


@hookspec
def crm_before_customers_merge(crm: CRM, keep: Customer, other: Customer) -> None:
    """``other`` is being merged into ``keep``: move your own records.

    Fires inside the merge transaction, before ``other`` is marked merged. The
    core moves every plugin table that has a ``customer_id`` column by itself;
    implement this for anything else (unique keys that would clash, sums to
    combine). Raise to refuse the merge.
    """


@hookspec
def crm_forget_customer(crm: CRM, customer: Customer) -> None:
    """Erase the customer's personal data from your tables (right to be forgotten).

    :param crm: the CRM bound to the ``crm customer forget`` transaction.
    :param customer: the customer as stored before erasure.

    Fires inside that transaction, before the core erases its own tables. Keep
    anonymous facts needed for statistics (amounts, dates); blank names, phones,
    plates, free text. Raising aborts the erasure. Afterwards the core replaces
    every copy of the customer's name, e-mail and phone (in any written form)
    that is left in a text or JSON column of any table, yours included, and in
    the outbox log: data the customer never gave you in those forms (an address,
    a plate) is yours to erase here.
    """


@hookspec
def crm_staff_departed(crm: CRM, staff: Staff, handover_to: Staff) -> None:
    """``staff`` left; the core has already moved their customers, open tickets and
    open reminders to ``handover_to`` and revoked their access.

    Fires inside the departure transaction. Move or flag your own records (e.g.
    policies whose serving agent left). Raise to refuse the departure.
    """
