"""The CRM application service: every write goes through here.

``CRM`` is assembled from small mixins, one per area; each public method is
one database transaction (or joins the open one).
"""

from __future__ import annotations

from typing import Any

from crmcore import config as config_mod
from crmcore.service._admin import AdminMixin
from crmcore.service._base import operation
from crmcore.service._customers import CustomersMixin
from crmcore.service._lifecycle import LifecycleMixin
from crmcore.service._messages import MessagesMixin
from crmcore.service._protect import ProtectMixin
from crmcore.service._records import RecordsMixin
from crmcore.service._tickets import TicketsMixin


class CRM(
    LifecycleMixin,
    AdminMixin,
    MessagesMixin,
    TicketsMixin,
    ProtectMixin,
    RecordsMixin,
    CustomersMixin,
):
    """The CRM: customers, relationships, lifecycle, records, tickets, outbox, jobs.

    Build one with :meth:`open` (reads crm.toml) or directly from a
    :class:`~crmcore.config.Config`.
    """

    @classmethod
    def open(
        cls,
        config_path: str | None = None,
        *,
        database: str | None = None,
        principal: Any = None,
        **kwargs: Any,
    ) -> CRM:
        """A CRM from a crm.toml (``config_path``, else ``./crm.toml`` or ``CRM_CONFIG``), with
        ``database`` and ``principal`` as the command line's ``--db`` and ``--as``."""
        cfg = config_mod.load(config_path, database=database)
        return cls(cfg, principal=principal, **kwargs)


__all__ = ["CRM", "operation"]
