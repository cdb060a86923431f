"""Insurance's part in search and segments: the policy number as a search key
(it finds the policyholder), and "policy maturing within N days" as a segment
condition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crm_insurance.tables import policies
from crmcore import SearchKey, SegmentCondition

MAX_DAYS = 3660


def search_keys() -> list[SearchKey]:
    return [
        SearchKey(
            name="insurance.policy_no",
            label="policy number",
            value=policies.c.policy_no,
            customer=policies.c.customer_id,
        )
    ]


def _maturing_within(
    crm: Any, params: Mapping[str, Any], customer_id: Any, as_of: dt.datetime
) -> Any:
    """Policyholders of an active policy whose contract ends in the next N days."""
    return customer_id.in_(
        select(policies.c.customer_id).where(
            policies.c.status == "active",
            policies.c.maturity >= as_of,
            policies.c.maturity < as_of + dt.timedelta(days=int(params["days"]) + 1),
        )
    )


def segment_conditions() -> list[SegmentCondition]:
    return [
        SegmentCondition(
            name="insurance.maturing_within",
            schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["days"],
                "properties": {"days": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS}},
            },
            compile=_maturing_within,
            description="holders of an active policy maturing within N days",
        )
    ]
