"""Timeline hook: entries a plugin contributes to a customer's 360 view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.entities import Customer, TimelineEntry
    from crmcore.service import CRM


@hookspec
def crm_timeline(crm: CRM, customer: Customer) -> Iterable[TimelineEntry]:
    """Return timeline entries from the plugin's own records.

    :param crm: the CRM bound to the read transaction.
    :param customer: the customer whose timeline is read.

    Called by ``crm timeline``. Entries are merged with the core's
    (interactions, transactions, stage changes, tickets, messages and stored
    ``crm.add_timeline_entry`` rows) in time order; set ``source`` to your
    plugin's name. Entries written with ``crm.add_timeline_entry`` need no hook.
    """
