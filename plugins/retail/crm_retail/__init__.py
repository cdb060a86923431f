"""crmcore-retail: the retail industry plugin for crmcore (supermarket members,
tiers, points, member day, greetings, ABC service levels, DM reports, waiting
lists, after-sale surveys; fuel-station profiling, 1:15 and overdue call-backs).

The hook implementations are in :mod:`crm_retail.plugin` (the entry point).
"""

from __future__ import annotations

__version__ = "0.1.0"
