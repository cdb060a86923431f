"""Search and segment hooks: the keys customers are found by and the conditions
a saved segment may use, contributed by plugins.

Both are called when a search or a segment runs (inside its read
transaction), for enabled plugins only, and must return the same thing every
time: they describe columns and SQL clauses, they do not read data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.search.keys import SearchKey
    from crmcore.segments.conditions import SegmentCondition


@hookspec
def crm_search_keys() -> Iterable[SearchKey]:
    """Return :class:`~crmcore.search.SearchKey` objects: keys in the plugin's
    tables that ``crm customer search`` finds customers by (a member, policy,
    meter or unit number).

    Each names the key's column, the customer's column and, when they are in
    different tables, the join. Search matches the column exactly, by prefix
    and (three characters or more) by fragment, inside the same statement as
    the core's index, and shows only the customers the caller may see.
    """


@hookspec
def crm_segment_conditions() -> Iterable[SegmentCondition]:
    """Return :class:`~crmcore.segments.SegmentCondition` objects: conditions a
    saved segment may use, named ``<plugin>.<name>`` (``retail.birthday_within``).

    Each gives the JSON schema of its parameters and a function compiling
    ``(crm, params, customer_id_column, as_of)`` to a SQLAlchemy clause, for
    example ``customer_id_column.in_(select(members.c.customer_id).where(...))``.
    The segment is one statement, run through the access filter, so the
    clause may read only the CRM's tables with plain SQL expressions.
    """
