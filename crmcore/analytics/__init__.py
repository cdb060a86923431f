"""Set-based analytics over the whole customer base (no per-customer Python loop).

Each function runs in one transaction, stores its result as customer labels
(``customer_labels``: ``abc``, ``overdue``) where plugins use them, fires
``crm_analytics_computed``, and returns a JSON-able summary.
"""

from __future__ import annotations

from crmcore.analytics.abc import abc
from crmcore.analytics.overdue import overdue

__all__ = ["abc", "overdue"]
