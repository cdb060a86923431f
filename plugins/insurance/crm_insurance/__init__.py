"""crmcore plugin for life insurers and their agents' customer visits.

Policies with their serving agent, agent visits verified by the customer's own
satisfaction SMS, agent reports, VIP grades with guaranteed visits, orphan
customers and opportunity lists. The hook implementations are in
:mod:`crm_insurance.plugin` (the entry point); each area has its own module.
"""

from __future__ import annotations

NAME = "insurance"
__version__ = "0.1.0"
