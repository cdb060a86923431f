"""Interaction and transaction hooks, single and batch.

Single-record writes call the singular hooks; bulk paths (imports, jobs) call
the plural ``*_batch`` hooks once per batch so a plugin can react with one
set-based statement. A plugin that implements only the singular hook is called
once per record on bulk paths instead: correct, but slow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.entities import Interaction, Transaction, TransactionBatch
    from crmcore.service import CRM


@hookspec
def crm_validate_interaction(crm: CRM, interaction: Interaction) -> None:
    """Validate an interaction before it is written.

    :param crm: the CRM bound to the open transaction.
    :param interaction: the interaction to write (``id`` is None).

    Raise ``ValidationError`` to refuse: nothing is written. Return value ignored.
    """


@hookspec
def crm_interaction_recorded(crm: CRM, interaction: Interaction) -> None:
    """An interaction was written.

    :param crm: the CRM bound to the open transaction.
    :param interaction: the stored interaction (``id`` set).

    Fires inside the transaction; raising rolls the write back.
    """


@hookspec
def crm_validate_transaction(crm: CRM, transaction: Transaction) -> None:
    """Validate a transaction before it is written.

    :param crm: the CRM bound to the open transaction.
    :param transaction: the transaction to write (``id`` is None).

    Raise ``ValidationError`` to refuse: nothing is written. Return value ignored.
    """


@hookspec
def crm_transaction_recorded(crm: CRM, transaction: Transaction) -> None:
    """A single transaction was written (``record_transaction``).

    :param crm: the CRM bound to the open transaction.
    :param transaction: the stored transaction (``id`` set).

    Fires inside the transaction, after the per-customer aggregates were updated.
    Write your own effects (points, tiers) through ``crm``; raising rolls the
    write back. Return value ignored.
    """


@hookspec
def crm_transaction_recorded_batch(crm: CRM, batch: TransactionBatch) -> None:
    """Many transactions were written by a bulk import; one call per batch.

    :param crm: the CRM bound to the import's transaction.
    :param batch: the id range and the customers touched (:class:`TransactionBatch`);
        select the rows from ``crmcore.schema.transactions`` by ``id`` in the range.

    Fires inside the import's transaction; raising rolls the batch (and, in
    all-or-nothing mode, the whole import) back.
    """
