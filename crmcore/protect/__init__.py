"""Data protection: retention of inactive customers' personal data.

``[[crm.protect.retention]]`` rules name how many years of inactivity make a
customer's data due for erasure (see :mod:`crmcore.protect.retention`).
"""

from __future__ import annotations

from crmcore.protect.retention import apply, cutoff_of, preview

__all__ = ["apply", "cutoff_of", "preview"]
