"""The ``[plugins.utility]`` section: JSON Schema with every default.

The README's "Configuration" section lists the same keys; keep them in step.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import ConfigError

NAME = "utility"
CLASSES = ("residential", "commercial", "large_industrial")
AREAS = ("urban", "rural", "remote")
VOLTAGE_LEVELS = ("220V", "380V", "10kV", "20kV", "35kV", "110kV", "220kV")
TICKET_TYPES = ("fault_repair", "complaint", "enquiry", "new_connection")
DEVICE_KINDS = ("transformer", "switchgear", "cable", "capacitor", "meter", "generator", "other")
DUNNING_ACTIONS = (
    "reminder_message",
    "formal_notice",
    "restricted_supply_proposal",
    "disconnection_proposal",
)

# minutes by area; None = the type has no on-site deadline
DEFAULT_DEADLINES: dict[str, dict[str, Any]] = {
    "fault_repair": {
        "response_minutes": {"urban": 15, "rural": 15, "remote": 15},
        "on_site_minutes": {"urban": 45, "rural": 90, "remote": 120},
    },
    "complaint": {
        "response_minutes": {"urban": 1440, "rural": 1440, "remote": 1440},
        "on_site_minutes": {"urban": 4320, "rural": 4320, "remote": 4320},
    },
    "enquiry": {
        "response_minutes": {"urban": 1440, "rural": 1440, "remote": 1440},
        "on_site_minutes": None,
    },
    "new_connection": {
        "response_minutes": {"urban": 1440, "rural": 1440, "remote": 1440},
        "on_site_minutes": {"urban": 4320, "rural": 7200, "remote": 10080},
    },
}

DEFAULT_LADDER = [
    {"name": "reminder_message", "days_overdue": 1},
    {"name": "formal_notice", "days_overdue": 15},
    {"name": "restricted_supply_proposal", "days_overdue": 30},
    {"name": "disconnection_proposal", "days_overdue": 45},
]

DEFAULT_INTERVALS = {
    "transformer": 180,
    "switchgear": 365,
    "cable": 365,
    "capacitor": 180,
    "meter": 730,
    "generator": 180,
    "other": 365,
}

_MINUTES = {
    "type": "object",
    "additionalProperties": False,
    "required": list(AREAS),
    "properties": {a: {"type": "number", "exclusiveMinimum": 0} for a in AREAS},
}
_PERIOD = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-4]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$",
}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "default": {}, "properties": props}


SCHEMA: dict[str, Any] = _obj(
    {
        "key_customer": _obj(
            {
                "classes": {
                    "type": "array",
                    "items": {"enum": list(CLASSES)},
                    "default": ["large_industrial"],
                },
                "min_contracted_kva": {"type": ["integer", "null"], "minimum": 1, "default": 315},
            }
        ),
        "default_area": {"enum": list(AREAS), "default": "urban"},
        "deadlines": _obj(
            {
                t: {
                    "type": "object",
                    "additionalProperties": False,
                    "default": DEFAULT_DEADLINES[t],
                    "properties": {
                        "response_minutes": {
                            **_MINUTES,
                            "default": DEFAULT_DEADLINES[t]["response_minutes"],
                        },
                        "on_site_minutes": {
                            "anyOf": [_MINUTES, {"type": "null"}],
                            "default": DEFAULT_DEADLINES[t]["on_site_minutes"],
                        },
                    },
                }
                for t in TICKET_TYPES
            }
        ),
        "escalation": _obj(
            {
                "interval_minutes": {"type": "number", "exclusiveMinimum": 0, "default": 60},
                "max_levels": {"type": "integer", "minimum": 1, "default": 3},
            }
        ),
        "tariffs": _obj(
            {
                "peak_cents_per_kwh": {"type": "number", "minimum": 0, "default": 110},
                "flat_cents_per_kwh": {"type": "number", "minimum": 0, "default": 70},
                "valley_cents_per_kwh": {"type": "number", "minimum": 0, "default": 35},
                "peak_periods": {
                    "type": "array",
                    "items": _PERIOD,
                    "default": ["08:00-11:00", "18:00-23:00"],
                },
                "valley_periods": {"type": "array", "items": _PERIOD, "default": ["23:00-07:00"]},
            }
        ),
        "advice": _obj(
            {
                "peak_valley_ratio_min": {"type": "number", "exclusiveMinimum": 1, "default": 3.0},
                "shiftable_share": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 1,
                    "default": 0.2,
                },
                "min_power_factor": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 1,
                    "default": 0.9,
                },
                "overload_ratio": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
                "days_per_month": {"type": "integer", "minimum": 1, "default": 30},
            }
        ),
        "equipment": _obj(
            {
                "interval_days": {
                    "type": "object",
                    "additionalProperties": False,
                    "default": DEFAULT_INTERVALS,
                    "properties": {
                        k: {"type": "integer", "minimum": 1, "default": v}
                        for k, v in DEFAULT_INTERVALS.items()
                    },
                },
                "reminder_lead_days": {"type": "integer", "minimum": 0, "default": 14},
            }
        ),
        "dunning": _obj(
            {
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "default": DEFAULT_LADDER,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "days_overdue"],
                        "properties": {
                            "name": {"enum": list(DUNNING_ACTIONS)},
                            "days_overdue": {"type": "integer", "minimum": 0},
                        },
                    },
                },
                "legal_notice_days": {"type": "integer", "minimum": 1, "default": 7},
                "min_days_between_steps": {"type": "integer", "minimum": 0, "default": 7},
            }
        ),
    }
)


def cfg(crm: Any) -> dict[str, Any]:
    return crm.plugin_config(NAME)


def ladder(crm: Any) -> list[dict[str, Any]]:
    """The dunning ladder (checked at start-up by :func:`check`)."""
    return list(cfg(crm)["dunning"]["steps"])


def check(section: dict[str, Any]) -> None:
    """What the schema cannot say, checked at start-up (``crm_validate_config``):
    the dunning ladder's names unique, days strictly increasing, a disconnection
    proposal only last and only after a formal notice; tariff periods within the day."""
    steps = section["dunning"]["steps"]
    names = [s["name"] for s in steps]
    where = "plugins.utility.dunning.steps"
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: each step may appear once; got {names}")
    days = [s["days_overdue"] for s in steps]
    if any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise ConfigError(f"{where}: days_overdue must increase step by step; got {days}")
    if "disconnection_proposal" in names:
        i = names.index("disconnection_proposal")
        if i != len(names) - 1:
            raise ConfigError(f"{where}: disconnection_proposal must be the last step")
        if "formal_notice" not in names[:i]:
            raise ConfigError(
                f"{where}: a disconnection proposal needs a formal_notice step before it"
            )
    for band in ("peak", "valley"):
        parse_periods(section["tariffs"][f"{band}_periods"])


def parse_periods(periods: list[str]) -> list[tuple[int, int]]:
    """'23:00-07:00' -> minute ranges within the day [(1380, 1440), (0, 420)]."""
    out: list[tuple[int, int]] = []
    for p in periods:
        a, b = p.split("-")
        start = int(a[:2]) * 60 + int(a[3:])
        end = int(b[:2]) * 60 + int(b[3:])
        if start > 1440 or end > 1440:
            raise ConfigError(f"plugins.utility.tariffs: period {p!r} is outside the day")
        if start < end:
            out.append((start, end))
        elif start > end:
            out += [(start, 1440), (0, end)]
    return out


def tariff_bands(crm: Any) -> Any:
    """A function: start of an interval -> 'peak', 'valley' or 'flat' (periods parsed once)."""
    t = cfg(crm)["tariffs"]
    ranges = [(band, parse_periods(t[f"{band}_periods"])) for band in ("peak", "valley")]

    def band_of(at: dt.datetime) -> str:
        minute = at.hour * 60 + at.minute
        for band, spans in ranges:
            if any(a <= minute < b for a, b in spans):
                return band
        return "flat"

    return band_of


def tariff_band(crm: Any, at: dt.datetime) -> str:
    """'peak', 'valley' or 'flat' for an interval starting at ``at``."""
    return tariff_bands(crm)(at)
