"""The CRM's operations, one service object per area.

:class:`~crmcore.service.CRM` is the facade: it owns the unit of work (the
transaction, the query layer ``crm.db``, the acting principal, the hooks and
the clock) and creates one service per area, ``crm.customers``,
``crm.records``, ``crm.tickets``, ``crm.messages``, ``crm.jobs``,
``crm.staff`` and ``crm.admin``. A service holds the facade and works only
through that unit of work, so the areas call each other through the facade
(``self.crm.records.add_timeline_entry(...)``), never through inheritance.

The package imports nothing at import time: each module is imported on its
own (``import crmcore.services.tickets``) and the facade imports them all.
"""

from __future__ import annotations
