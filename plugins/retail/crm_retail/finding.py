"""Retail's part in search and segments: the member number as a search key,
and "birthday within N days" as a segment condition."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import extract, select

from crm_retail.tables import members
from crmcore import SearchKey, SegmentCondition

MAX_BIRTHDAY_DAYS = 366


def search_keys() -> list[SearchKey]:
    """The member number finds its member."""
    return [
        SearchKey(
            name="retail.member_no",
            label="member number",
            value=members.c.member_no,
            customer=members.c.customer_id,
        )
    ]


def birthday_days(as_of: dt.date, days: int) -> list[int]:
    """month * 100 + day of every date from ``as_of`` to ``days`` days later; a
    Feb 28 of a non-leap year stands for Feb 29 too (as the greeting job does)."""
    found: list[int] = []
    for offset in range(days + 1):
        day = as_of + dt.timedelta(days=offset)
        found.append(day.month * 100 + day.day)
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            found.append(229)
    return sorted(set(found))


def _birthday_within(
    crm: Any, params: Mapping[str, Any], customer_id: Any, as_of: dt.datetime
) -> Any:
    """Members whose birthday falls in the next ``days`` days (today included)."""
    month_day = extract("month", members.c.birthday) * 100 + extract("day", members.c.birthday)
    return customer_id.in_(
        select(members.c.customer_id).where(
            members.c.birthday.is_not(None),
            month_day.in_(birthday_days(as_of.date(), int(params["days"]))),
        )
    )


def segment_conditions() -> list[SegmentCondition]:
    return [
        SegmentCondition(
            name="retail.birthday_within",
            schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["days"],
                "properties": {
                    "days": {"type": "integer", "minimum": 0, "maximum": MAX_BIRTHDAY_DAYS}
                },
            },
            compile=_birthday_within,
            description="members whose birthday is within N days (0: today)",
        )
    ]
