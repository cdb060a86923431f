"""Timeline hook: the streams a plugin contributes to a customer's 360 view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.registry import TimelineSource


@hookspec
def crm_timeline_sources() -> Iterable[TimelineSource]:
    """Return the timeline streams kept in the plugin's own tables.

    Called by ``crm timeline`` (``crm.timeline``) for every read. Each
    :class:`~crmcore.TimelineSource` gives the SELECT of one customer's rows
    (columns labelled ``at`` and ``id``) and how a row becomes an entry; the
    core merges them with its own (stage changes, interactions, transactions,
    tickets, messages and stored ``crm.records.add_timeline_entry`` rows) in one
    UNION ALL ordered by time and cut to the page in the database, so a page
    of a long history reads only the page's rows. Set each entry's ``source``
    to your plugin's name; stream names are unique across plugins. Entries
    written with ``crm.records.add_timeline_entry`` need no hook.
    """
