"""Hook names that hook contract v2 replaced, each with the name that replaced it.

Pluggy cannot alias a hook specification, and calling an old and a new hook
for the same event would run a plugin twice if it implemented both. So the old
names are not specified any more: a plugin that still implements one fails at
start-up with one line naming the plugin, the old name and the new one
(:func:`crmcore.plugins.build`). See "Hook contract v2" in docs/plugins.md.
"""

from __future__ import annotations

CONTRACT_VERSION = 2
"""The version of the hook contract the specifications in this package define."""

RENAMED_HOOKS: dict[str, str] = {
    # singular and batch hooks of one event are named alike: <event> and <event>_batch
    "crm_customers_imported": "crm_customer_created_batch",
    "crm_transactions_recorded_batch": "crm_transaction_recorded_batch",
    # it fires before the merge is marked, and is named for when it fires
    "crm_customers_merged": "crm_before_customers_merge",
}
"""Old hook name -> its name in hook contract v2."""
