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
    """Validate an interaction before it is written (``interaction.id`` is None).
    Raise ``ValidationError`` to refuse. Inside the transaction."""


@hookspec
def crm_interaction_recorded(crm: CRM, interaction: Interaction) -> None:
    """An interaction was written (``id`` set). Inside the transaction."""


@hookspec
def crm_validate_transaction(crm: CRM, transaction: Transaction) -> None:
    """Validate a transaction before it is written (``id`` is None).
    Raise ``ValidationError`` to refuse. Inside the transaction."""


@hookspec
def crm_transaction_recorded(crm: CRM, transaction: Transaction) -> Transaction | None:
    """A transaction was written (``id`` set). Inside the transaction.

    Return value ignored; write your own effects (points, tiers) through ``crm``.
    """


@hookspec
def crm_transactions_recorded_batch(crm: CRM, batch: TransactionBatch) -> None:
    """Many transactions were written by a bulk import; one call per batch.

    :param batch: the id range and the customers touched. Select the rows from
        ``crmcore.schema.transactions`` where ``id`` is in the range.

    Fires inside the import's transaction; raising rolls the batch (and, in
    all-or-nothing mode, the whole import) back.
    """
