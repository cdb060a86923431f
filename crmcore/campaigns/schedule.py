"""When a campaign is due, and which occurrence a run belongs to.

A schedule is a JSON object:

- ``{"kind": "once", "at": "2026-06-20T09:00"}``: one occurrence (``once``),
  due from that moment on;
- ``{"kind": "yearly", "holiday": "mid_autumn", "days_before": 1}``: every year
  on a holiday (``spring_festival``, ``dragon_boat``, ``mid_autumn``,
  ``national_day``) or on a fixed ``"date": "MM-DD"``; the occurrence is the
  year's date, due from ``days_before`` days before it to the day itself;
- ``{"kind": "daily"}``: every day, the occurrence is the day (with the segment
  condition ``retail.birthday_within`` 0, a greeting on each member's birthday).

Lunar holidays move: :data:`HOLIDAYS` holds their Gregorian dates per year; a
year not in it is an error naming the holiday and the year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import jsonschema

from crmcore.errors import ValidationError
from crmcore.parse import parse_datetime

HOLIDAYS: dict[str, dict[int, str]] = {
    # 春节 Spring Festival (the first day of the lunar year)
    "spring_festival": {
        2024: "02-10",
        2025: "01-29",
        2026: "02-17",
        2027: "02-06",
        2028: "01-26",
        2029: "02-13",
        2030: "02-03",
    },
    # 端午 Dragon Boat Festival (the fifth day of the fifth lunar month)
    "dragon_boat": {
        2024: "06-10",
        2025: "05-31",
        2026: "06-19",
        2027: "06-09",
        2028: "05-28",
        2029: "06-16",
        2030: "06-05",
    },
    # 中秋 Mid-Autumn Festival (the fifteenth day of the eighth lunar month)
    "mid_autumn": {
        2024: "09-17",
        2025: "10-06",
        2026: "09-25",
        2027: "09-15",
        2028: "10-03",
        2029: "09-22",
        2030: "09-12",
    },
}
FIXED_HOLIDAYS = {"national_day": "10-01"}  # 国庆 National Day

SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "at"],
            "properties": {"kind": {"const": "once"}, "at": {"type": "string"}},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind"],
            "properties": {
                "kind": {"const": "yearly"},
                "holiday": {"enum": sorted([*HOLIDAYS, *FIXED_HOLIDAYS])},
                "date": {"type": "string", "pattern": r"^\d\d-\d\d$"},
                "days_before": {"type": "integer", "minimum": 0, "maximum": 60},
            },
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind"],
            "properties": {"kind": {"const": "daily"}},
        },
    ]
}


def validate(schedule: Any) -> dict[str, Any]:
    """The schedule, checked (one line naming what is wrong)."""
    try:
        jsonschema.validate(schedule, SCHEMA)
    except jsonschema.ValidationError as e:
        raise ValidationError(f"campaign schedule: {e.message}") from None
    if schedule["kind"] == "once":
        parse_datetime(schedule["at"], field="schedule at")
    if schedule["kind"] == "yearly":
        if ("holiday" in schedule) == ("date" in schedule):
            raise ValidationError("campaign schedule: a yearly schedule names a holiday or a date")
        if "date" in schedule:
            _month_day(schedule["date"], 2024)
    return dict(schedule)


def _month_day(text: str, year: int) -> dt.date:
    try:
        return dt.date.fromisoformat(f"{year}-{text}")
    except ValueError:
        raise ValidationError(f"campaign schedule: date {text!r} is not a MM-DD day") from None


def yearly_date(schedule: Mapping[str, Any], year: int) -> dt.date:
    """The day of a yearly schedule in ``year``."""
    if "date" in schedule:
        return _month_day(schedule["date"], year)
    holiday = schedule["holiday"]
    if holiday in FIXED_HOLIDAYS:
        return _month_day(FIXED_HOLIDAYS[holiday], year)
    day = HOLIDAYS[holiday].get(year)
    if day is None:
        raise ValidationError(
            f"campaign schedule: the date of {holiday} in {year} is not known here "
            f"(known: {min(HOLIDAYS[holiday])}-{max(HOLIDAYS[holiday])}); use a fixed date"
        )
    return _month_day(day, year)


def occurrence(schedule: Mapping[str, Any], at: dt.datetime) -> tuple[str, bool]:
    """The occurrence a run at ``at`` belongs to and whether it is due then.

    ``once``: due from its moment. ``yearly``: this year's date, or next year's
    once this year's has passed; due from ``days_before`` days before it.
    ``daily``: the day, always due."""
    kind = schedule["kind"]
    if kind == "once":
        return "once", at >= parse_datetime(schedule["at"], field="schedule at")
    if kind == "daily":
        return at.date().isoformat(), True
    day = yearly_date(schedule, at.year)
    if day < at.date():
        day = yearly_date(schedule, at.year + 1)
    start = day - dt.timedelta(days=int(schedule.get("days_before", 0)))
    return day.isoformat(), start <= at.date() <= day
