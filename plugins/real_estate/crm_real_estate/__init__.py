"""crmcore plugin for property developers (real estate).

Projects, buildings and units; owners, co-owners and tenants linked to units;
one after-sales centre whose repair and complaint requests are core tickets;
warranty classification from the unit's handover; dispatch to maintenance
teams with deadlines, escalation, owner revisits; owner-rights incident
detection; reports. The hook implementations live in :mod:`crm_real_estate.plugin`.
"""

from __future__ import annotations

NAME = "real_estate"
__version__ = "0.1.0"
