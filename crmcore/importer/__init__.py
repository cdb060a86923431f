"""Streaming bulk import of customers and transactions (``crm import``).

Constant memory (one batch of plain tuples at a time), line-numbered errors,
all-or-nothing by default, ``skip_invalid`` with a rejects file, set-based
writes (sqlite3 ``executemany`` / PostgreSQL ``COPY`` into a staging table,
then one ``INSERT ... SELECT``), plugin hooks once per batch.

Plugins that implement only the singular hooks (``crm_customer_created``,
``crm_transaction_recorded``) are called once per imported row instead of the
batch hooks; ``crm_validate_customer`` / ``crm_validate_transaction`` run per
row only when some plugin implements them (their refusal becomes a line error).
Imports need an unrestricted principal (the system or an admin).
"""

from __future__ import annotations

from crmcore.importer._common import DEFAULT_BATCH, ImportFailed
from crmcore.importer._customers import import_customers
from crmcore.importer._transactions import import_transactions

__all__ = ["DEFAULT_BATCH", "ImportFailed", "import_customers", "import_transactions"]
