"""Set-based analytics over the whole customer base (no per-customer Python loop).

Each function runs in one transaction, reads the per-customer aggregates
(``customer_stats``, kept set-based on every write and import) or one
set-based query, computes with numpy, stores its result as customer labels
(``abc``, ``rfm``, ``overdue``, ``p_alive``, ``expected_purchases``; written only
where they changed), records a ``job_runs`` row ``analytics.NAME``, fires
``crm_analytics_computed`` and returns a JSON-able summary.

numpy is a dependency of crmcore; scipy, which only ``clv`` needs, comes with the
``analytics`` extra.
"""

from __future__ import annotations

from crmcore.analytics.abc import abc
from crmcore.analytics.clv import clv
from crmcore.analytics.overdue import overdue
from crmcore.analytics.rfm import rfm

__all__ = ["abc", "clv", "overdue", "rfm"]
