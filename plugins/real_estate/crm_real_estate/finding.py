"""Real estate's part in search and segments: a unit's code finds its current
owners and tenants, and "owner of a unit handed over in the last N days" is a
segment condition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crmcore import SearchKey, SegmentCondition

from .tables import unit_owners, units

MAX_DAYS = 3660


def search_keys() -> list[SearchKey]:
    return [
        SearchKey(
            name="real_estate.unit",
            label="unit number",
            value=units.c.code,
            customer=unit_owners.c.customer_id,
            join=unit_owners.join(units, units.c.id == unit_owners.c.unit_id),
            where=unit_owners.c.until.is_(None),
        )
    ]


def _handed_over_within(
    crm: Any, params: Mapping[str, Any], customer_id: Any, as_of: dt.datetime
) -> Any:
    """Current owners (role owner or co-owner) of a unit handed over in the last N days."""
    since = as_of - dt.timedelta(days=int(params["days"]))
    return customer_id.in_(
        select(unit_owners.c.customer_id)
        .join(units, units.c.id == unit_owners.c.unit_id)
        .where(
            unit_owners.c.until.is_(None),
            unit_owners.c.role.in_(("owner", "co-owner")),
            units.c.handover_at >= since,
            units.c.handover_at <= as_of,
        )
    )


def segment_conditions() -> list[SegmentCondition]:
    return [
        SegmentCondition(
            name="real_estate.handed_over_within",
            schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["days"],
                "properties": {"days": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS}},
            },
            compile=_handed_over_within,
            description="owners of a unit handed over in the last N days",
        )
    ]
