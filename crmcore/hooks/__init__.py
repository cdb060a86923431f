"""Hook specifications, a module per lifecycle group.

- :mod:`.setup` — start-up registration: metadata, config schema and checks,
  attributes, tables, migrations, CLI commands, jobs, templates, channels, workflows.
- :mod:`.customers` — validate-before-write and after-write events for customers,
  stages and relationships; classification; merge and forget.
- :mod:`.records` — interactions and transactions, single and batch.
- :mod:`.tickets` — ticket opened and moved.
- :mod:`.messages` — inbound routing, after-commit events.
- :mod:`.timeline` — timeline entries a plugin contributes.
- :mod:`.analytics` — results of analytics runs.
- :mod:`.web` — routers a plugin adds to the HTTP API.
- :mod:`.search` — keys search finds customers by; conditions segments may use.
- :mod:`.lifecycle` — stage moves of the lifecycle rules in bulk; follow-up playbooks.

All write-time hooks run inside the caller's open database transaction and get
``crm``, the CRM bound to that transaction: whatever they write through it is
committed with the operation, and if any hook raises, nothing of the operation
is written.
"""

from __future__ import annotations

from crmcore.hooks import (
    analytics,
    customers,
    lifecycle,
    messages,
    records,
    search,
    setup,
    tickets,
    timeline,
    web,
)
from crmcore.hooks.markers import PROJECT, hookimpl, hookspec

SPEC_MODULES = (
    setup,
    customers,
    records,
    tickets,
    messages,
    timeline,
    analytics,
    web,
    search,
    lifecycle,
)

__all__ = ["PROJECT", "SPEC_MODULES", "hookimpl", "hookspec"]
