"""The ``[plugins.retail]`` configuration: its JSON Schema (with every default)
and a parsed, checked view of it (:func:`settings`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from crmcore import ConfigError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

DEFAULT_TIERS: list[dict[str, Any]] = [
    {
        "name": "standard",
        "min_spend_cents": 0,
        "multiplier": 1.0,
        "benefits": ["member prices", "member-only goods", "member day"],
    },
    {
        "name": "silver",
        "min_spend_cents": 300_000,
        "multiplier": 1.2,
        "benefits": ["member prices", "member-only goods", "member day", "free gift wrapping"],
    },
    {
        "name": "gold",
        "min_spend_cents": 1_000_000,
        "multiplier": 1.5,
        "benefits": [
            "member prices",
            "member-only goods",
            "member day",
            "fast-lane checkout",
            "free home delivery",
        ],
    },
    {
        "name": "platinum",
        "min_spend_cents": 3_000_000,
        "multiplier": 2.0,
        "benefits": [
            "member prices",
            "member-only goods",
            "member day",
            "fast-lane checkout",
            "free home delivery",
            "personal shopper",
        ],
    },
]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "store_name": {"type": "string", "minLength": 1, "default": "our store"},
        "member_no_prefix": {"type": "string", "pattern": "^[A-Z0-9-]{0,8}$", "default": "M"},
        "tiers": {
            "description": "The tier ladder. A list given replaces the default tiers (it is "
            "not merged); defaults it leaves out are no longer used, and the core warns "
            "naming them.",
            "type": "array",
            "minItems": 1,
            "default": DEFAULT_TIERS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "min_spend_cents"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"},
                    "min_spend_cents": {"type": "integer", "minimum": 0},
                    "multiplier": {"type": "number", "minimum": 0, "maximum": 100, "default": 1.0},
                    "benefits": {"type": "array", "items": {"type": "string"}, "default": []},
                },
            },
        },
        "tier_window_days": {"type": "integer", "minimum": 1, "maximum": 3660, "default": 365},
        "tier_review_date": {
            "type": "string",
            "pattern": "^[0-9]{2}-[0-9]{2}$",
            "default": "01-01",
        },
        "points_per_yuan": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 1},
        "points_expiry_days": {"type": "integer", "minimum": 0, "default": 365},
        "member_day": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "enabled": {"type": "boolean", "default": True},
                "day": {
                    "oneOf": [
                        {"enum": list(WEEKDAYS)},
                        {"type": "integer", "minimum": 1, "maximum": 31},
                    ],
                    "default": "wednesday",
                },
                "discount": {"type": "number", "minimum": 0, "maximum": 0.9, "default": 0.05},
                "points_multiplier": {
                    "type": "number",
                    "minimum": 1,
                    "maximum": 20,
                    "default": 2.0,
                },
                "remind_day_before": {"type": "boolean", "default": True},
            },
        },
        "dm_reward_points": {"type": "integer", "minimum": 0, "default": 200},
        "abc": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "a_share": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": 1,
                    "default": 0.7,
                },
                "b_share": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.2},
                "window_days": {"type": "integer", "minimum": 1, "default": 365},
                "default_account_manager": {"type": ["string", "null"], "default": None},
            },
        },
        "survey": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "recent_days": {"type": "integer", "minimum": 1, "default": 30},
                "sample_size": {"type": "integer", "minimum": 1, "default": 20},
                "scale": {"type": "integer", "minimum": 2, "maximum": 100, "default": 10},
            },
        },
        "fuel": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "customers_per_employee": {"type": "integer", "minimum": 0, "default": 15},
                "employee_roles": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": ["rep"],
                },
                "grace_days": {"type": "number", "minimum": 0, "default": 3},
                "min_purchases": {"type": "integer", "minimum": 2, "default": 3},
                "callback_due_hours": {"type": "number", "minimum": 0, "default": 24},
            },
        },
    },
}


@attrs.frozen
class Tier:
    rank: int
    name: str
    min_spend_cents: int
    multiplier_milli: int  # the point multiplier x 1000 (integer arithmetic)
    benefits: tuple[str, ...]

    @property
    def multiplier(self) -> float:
        return self.multiplier_milli / 1000


@attrs.frozen
class Settings:
    raw: dict[str, Any]
    tiers: tuple[Tier, ...]
    review_month: int
    review_day: int

    def tier(self, name: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)

    def rank(self, name: str | None) -> int:
        t = self.tier(name)
        return -1 if t is None else t.rank

    def qualifying(self, spend_cents: int) -> Tier:
        best = self.tiers[0]
        for t in self.tiers:
            if spend_cents >= t.min_spend_cents:
                best = t
        return best

    def last_review(self, on: dt.date) -> dt.date:
        """The latest tier review date on or before ``on``."""
        this_year = dt.date(on.year, self.review_month, self.review_day)
        return (
            this_year
            if this_year <= on
            else dt.date(on.year - 1, self.review_month, self.review_day)
        )

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]


_CACHE: dict[int, tuple[dict[str, Any], Settings]] = {}


def settings(crm: Any) -> Settings:
    """The checked retail settings of this CRM (cached per configuration)."""
    raw = crm.plugin_config("retail")
    hit = _CACHE.get(id(raw))
    if hit is not None and hit[0] is raw:
        return hit[1]
    parsed = parse(raw, where=crm.config.where)
    _CACHE[id(raw)] = (raw, parsed)
    return parsed


def parse(raw: dict[str, Any], *, where: str = "") -> Settings:
    """Check what the JSON Schema cannot say; errors name the key (and the file
    ``where``, when given). Run at start-up by ``crm_validate_config``."""
    pre = f"{where}: plugins.retail" if where else "plugins.retail"
    tiers = []
    seen: set[str] = set()
    prev = -1
    for i, t in enumerate(raw["tiers"]):
        if t["name"] in seen:
            raise ConfigError(f"{pre}.tiers.{i}.name: tier {t['name']!r} is defined twice")
        seen.add(t["name"])
        if i == 0 and t["min_spend_cents"] != 0:
            raise ConfigError(
                f"{pre}.tiers.0.min_spend_cents: the first (entry) tier must start at 0"
            )
        if t["min_spend_cents"] <= prev:
            raise ConfigError(
                f"{pre}.tiers.{i}.min_spend_cents: thresholds must increase "
                f"({t['min_spend_cents']} <= {prev})"
            )
        prev = t["min_spend_cents"]
        tiers.append(
            Tier(
                rank=i,
                name=t["name"],
                min_spend_cents=t["min_spend_cents"],
                multiplier_milli=round(t["multiplier"] * 1000),
                benefits=tuple(t["benefits"]),
            )
        )
    try:
        review = dt.date(2025, int(raw["tier_review_date"][:2]), int(raw["tier_review_date"][3:]))
    except ValueError:
        raise ConfigError(
            f"{pre}.tier_review_date: {raw['tier_review_date']!r} is not a month-day "
            "that exists every year (MM-DD, e.g. 01-01)"
        ) from None
    abc = raw["abc"]
    if abc["a_share"] + abc["b_share"] > 1:
        raise ConfigError(f"{pre}.abc: a_share + b_share must be at most 1")
    return Settings(raw=raw, tiers=tuple(tiers), review_month=review.month, review_day=review.day)


def is_member_day(s: Settings, day: dt.date) -> bool:
    md = s["member_day"]
    if not md["enabled"]:
        return False
    want = md["day"]
    if isinstance(want, str):
        return WEEKDAYS[day.weekday()] == want
    # day of month; in months too short for it, the month's last day
    last = (dt.date(day.year + day.month // 12, day.month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return day.day == min(int(want), last)


def member_day_text(s: Settings) -> str:
    md = s["member_day"]
    parts = []
    if md["discount"]:
        parts.append(f"{md['discount'] * 100:g}% off")
    if md["points_multiplier"] != 1:
        parts.append(f"x{md['points_multiplier']:g} points")
    return " and ".join(parts) or "member offers"


def tier_ladder(crm: Any) -> dict[str, Any]:
    """The configured tiers as the CLI (``crm retail tiers list``) and the HTTP API
    show them: the rolling window, the review date and each tier's threshold,
    point multiplier and benefits."""
    s = settings(crm)
    return {
        "window_days": s["tier_window_days"],
        "review_date": s["tier_review_date"],
        "tiers": [
            {
                "name": t.name,
                "min_spend_cents": t.min_spend_cents,
                "multiplier": t.multiplier,
                "benefits": list(t.benefits),
            }
            for t in s.tiers
        ],
    }
