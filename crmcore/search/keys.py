"""What a plugin registers for search: a key customers are found by.

A plugin returns :class:`SearchKey` objects from ``crm_search_keys``: the column
holding the key (a member, policy, meter or unit number), the column naming the
customer it belongs to, and, when they are in different tables, the join
between them. Search compares the column itself (exactly and by prefix, through
the column's own index; by fragment of three characters or more) and never
copies the keys, so they are always as current as the plugin's table.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


def _valid_name(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"SearchKey.{attribute.name}: {value!r} must be lower-case letters, digits, "
            "'_', '.' or '-', starting with a letter"
        )


@attrs.frozen(kw_only=True)
class SearchKey:
    """A key customers are found by, held in a plugin's table.

    :param name: what matched, as search results show it (``retail.member_no``).
    :param label: the key in words (``member number``), for help and errors.
    :param value: the key's column (keep an index on it: exact and prefix matches use it).
    :param customer: the column holding the customer's id.
    :param join: the join of ``value``'s and ``customer``'s tables when they differ
        (a unit's code and its owners: ``owners.join(units, ...)``).
    :param where: a condition the rows must meet (current owners only: ``until IS NULL``).
    """

    name: str = attrs.field(validator=_valid_name)
    label: str
    value: Any
    customer: Any
    join: Any = None
    where: Any = None
