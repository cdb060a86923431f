"""The ``[plugins.real_estate]`` section: JSON Schema, defaults, merged settings.

Mappings (``categories``, ``seasons``, ``deadline_hours``) are merged over the
defaults: a key you give replaces or adds that one entry; the others stay.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from crmcore import ConfigError

from . import NAME

# The PRC Regulation on the Quality Management of Construction Projects
# (建设工程质量管理条例, State Council Order No. 279 of 2000), art. 40: the minimum
# warranty periods.
DEFAULT_CATEGORIES: dict[str, dict[str, Any]] = {
    # foundations and main structure: the design life in the design documents
    "structure": {"warranty": "design_life", "label": "地基基础和主体结构"},
    # roofing, wet rooms and external walls against leaks: 5 years
    "waterproofing": {"warranty": "years", "period": 5, "label": "防水防渗漏"},
    # heating and cooling systems: 2 heating seasons, 2 cooling seasons
    "heating_cooling": {
        "warranty": "seasons",
        "period": 2,
        "season_kinds": ["heating", "cooling"],
        "label": "供热与供冷系统",
    },
    # electrical wiring, water supply and drainage, equipment, decoration: 2 years
    "electrical": {"warranty": "years", "period": 2, "label": "电气管线"},
    "plumbing": {"warranty": "years", "period": 2, "label": "给排水管道"},
    "decoration": {"warranty": "years", "period": 2, "label": "装修工程"},
    # common parts (lifts, corridor lighting, doors): equipment installation, 2 years
    "public_areas": {"warranty": "years", "period": 2, "label": "公共区域"},
    # property service, noise, neighbours: complaints that no warranty covers
    "service": {"warranty": "none", "label": "物业服务"},
    "other": {"warranty": "none", "label": "其他"},
}

# Northern China's usual heating season and a summer cooling season.
DEFAULT_SEASONS: dict[str, dict[str, str]] = {
    "heating": {"start": "11-15", "end": "03-15"},
    "cooling": {"start": "06-01", "end": "09-30"},
}

DEFAULT_DEADLINE_HOURS: dict[str, float] = {"emergency": 4, "urgent": 24, "normal": 72}

_MONTH_DAY = "^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"

CATEGORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["warranty"],
    "properties": {
        "warranty": {"enum": ["years", "seasons", "design_life", "none"]},
        "period": {"type": "integer", "minimum": 1},
        "season_kinds": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "label": {"type": "string"},
    },
    "if": {"properties": {"warranty": {"enum": ["years", "seasons"]}}},
    "then": {"required": ["warranty", "period"]},
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "categories": {"type": "object", "additionalProperties": CATEGORY_SCHEMA, "default": {}},
        "design_life_years": {"type": "integer", "minimum": 1, "default": 50},
        "seasons": {
            "type": "object",
            "default": {},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start", "end"],
                "properties": {
                    "start": {"type": "string", "pattern": _MONTH_DAY},
                    "end": {"type": "string", "pattern": _MONTH_DAY},
                },
            },
        },
        "channels": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "default": ["phone", "visit", "fax", "online"],
        },
        "deadline_hours": {
            "type": "object",
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
            "default": {},
        },
        "default_urgency": {"type": "string", "default": "normal"},
        "auto_dispatch": {"type": "boolean", "default": True},
        "second_escalation_after_hours": {"type": "number", "minimum": 0, "default": 24},
        "management_staff": {"type": "array", "items": {"type": "string"}, "default": []},
        "revisit_after_hours": {"type": "number", "minimum": 0, "default": 24},
        "revisit_staff": {"type": ["string", "null"], "default": None},
        "satisfied_from": {"type": "integer", "minimum": 1, "maximum": 5, "default": 4},
        "incident": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "threshold": {"type": "integer", "minimum": 2, "default": 5},
                "window_days": {"type": "number", "exclusiveMinimum": 0, "default": 7},
            },
        },
        "buyer_followup_days": {"type": "integer", "minimum": 1, "default": 30},
        "handover_notice_days": {"type": "integer", "minimum": 0, "default": 14},
        "age_buckets_days": {
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0},
            "minItems": 1,
            "default": [1, 3, 7, 30],
        },
    },
}


@attrs.frozen
class Settings:
    categories: dict[str, dict[str, Any]]
    design_life_years: int
    seasons: dict[str, tuple[tuple[int, int], tuple[int, int]]]
    channels: tuple[str, ...]
    deadline_hours: dict[str, float]
    default_urgency: str
    auto_dispatch: bool
    second_escalation_after: dt.timedelta
    management_staff: tuple[str, ...]
    revisit_after: dt.timedelta
    revisit_staff: str | None
    satisfied_from: int
    incident_threshold: int
    incident_window: dt.timedelta
    buyer_followup_days: int
    handover_notice: dt.timedelta
    age_buckets_days: tuple[float, ...]


def _month_day(text: str, where: str) -> tuple[int, int]:
    month, day = (int(p) for p in text.split("-"))
    try:
        dt.date(2024, month, day)  # a leap year: 02-29 is allowed
    except ValueError:
        raise ConfigError(
            f"plugins.real_estate.{where}: {text!r} is not a day of the year"
        ) from None
    return month, day


def settings(crm: Any) -> Settings:
    """The effective settings (defaults merged, cross-references checked)."""
    return settings_of(crm.plugin_config(NAME))


def settings_of(cfg: dict[str, Any]) -> Settings:
    """The effective settings of a validated section; what the JSON Schema cannot
    say (season names, days of the year, the default urgency) is checked here,
    at start-up through ``crm_validate_config``."""
    categories = {**DEFAULT_CATEGORIES, **cfg["categories"]}
    raw_seasons = {**DEFAULT_SEASONS, **cfg["seasons"]}
    seasons = {
        name: (
            _month_day(s["start"], f"seasons.{name}.start"),
            _month_day(s["end"], f"seasons.{name}.end"),
        )
        for name, s in raw_seasons.items()
    }
    for name, spec in categories.items():
        for kind in spec.get("season_kinds", ["heating"]) if spec["warranty"] == "seasons" else ():
            if kind not in seasons:
                raise ConfigError(
                    f"plugins.real_estate.categories.{name}.season_kinds: unknown season {kind!r}; "
                    f"seasons: {sorted(seasons)}"
                )
    hours = {**DEFAULT_DEADLINE_HOURS, **cfg["deadline_hours"]}
    if cfg["default_urgency"] not in hours:
        raise ConfigError(
            f"plugins.real_estate.default_urgency: {cfg['default_urgency']!r} is not one of "
            f"the deadline_hours urgencies {sorted(hours)}"
        )
    return Settings(
        categories=categories,
        design_life_years=cfg["design_life_years"],
        seasons=seasons,
        channels=tuple(cfg["channels"]),
        deadline_hours=hours,
        default_urgency=cfg["default_urgency"],
        auto_dispatch=cfg["auto_dispatch"],
        second_escalation_after=dt.timedelta(hours=cfg["second_escalation_after_hours"]),
        management_staff=tuple(cfg["management_staff"]),
        revisit_after=dt.timedelta(hours=cfg["revisit_after_hours"]),
        revisit_staff=cfg["revisit_staff"],
        satisfied_from=cfg["satisfied_from"],
        incident_threshold=cfg["incident"]["threshold"],
        incident_window=dt.timedelta(days=cfg["incident"]["window_days"]),
        buyer_followup_days=cfg["buyer_followup_days"],
        handover_notice=dt.timedelta(days=cfg["handover_notice_days"]),
        age_buckets_days=tuple(sorted(cfg["age_buckets_days"])),
    )
