"""The ``[plugins.insurance]`` config schema, its defaults, and small shared helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_insurance import NAME
from crmcore import AccessDenied, ValidationError

PRODUCT_LINES = ("life", "accident", "critical_illness", "health", "annuity", "property")
TERMS = ("long", "short")
POLICY_STATUSES = ("active", "lapsed", "matured", "surrendered", "terminated")
PAYOUT_KINDS = ("benefit", "claim")

DEFAULT_GRADES: list[dict[str, Any]] = [
    {
        "name": "diamond",
        "visits_per_year": 12,
        "match": "any",
        "min_annual_premium_cents": 10_000_000,
        "min_sum_at_risk_cents": 500_000_000,
    },
    {
        "name": "gold",
        "visits_per_year": 6,
        "match": "any",
        "min_annual_premium_cents": 3_000_000,
        "min_sum_at_risk_cents": 200_000_000,
    },
    {
        "name": "silver",
        "visits_per_year": 4,
        "match": "any",
        "min_annual_premium_cents": 1_000_000,
        "min_sum_at_risk_cents": 100_000_000,
        "min_tenure_years": 10,
    },
]

_GRADE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "visits_per_year"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
        "visits_per_year": {"type": "integer", "minimum": 1, "maximum": 365},
        "match": {"enum": ["any", "all"], "default": "any"},
        "min_annual_premium_cents": {"type": "integer", "minimum": 0},
        "min_sum_at_risk_cents": {"type": "integer", "minimum": 0},
        "min_tenure_years": {"type": "number", "minimum": 0},
    },
    "anyOf": [
        {"required": ["min_annual_premium_cents"]},
        {"required": ["min_sum_at_risk_cents"]},
        {"required": ["min_tenure_years"]},
    ],
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "visit_window_hours": {"type": "number", "exclusiveMinimum": 0, "default": 48},
        "opportunity_horizon_days": {"type": "integer", "minimum": 1, "default": 30},
        "first_visit_due_days": {"type": "integer", "minimum": 0, "default": 7},
        "agent_roles": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "default": ["rep"],
        },
        "vip_grades": {
            "description": "VIP grades, tried in order (the first that holds wins). A list "
            "given replaces the default grades (it is not merged); defaults it leaves out "
            "are no longer used, and the core warns naming them.",
            "type": "array",
            "items": _GRADE,
            "default": DEFAULT_GRADES,
        },
    },
}


def config(crm: Any) -> dict[str, Any]:
    return crm.plugin_config(NAME)


def window(crm: Any) -> dt.timedelta:
    return dt.timedelta(hours=float(config(crm)["visit_window_hours"]))


def grades(crm: Any) -> list[dict[str, Any]]:
    return list(config(crm)["vip_grades"])


def require(crm: Any, permission: str, what: str) -> None:
    """Refuse at once for a principal without ``permission`` (a departed agent has none)."""
    p = crm.db.principal
    if not p.can(permission):
        why = "has departed" if not p.active else f"lacks the {permission!r} permission"
        raise AccessDenied(f"{p.key} may not {what}: {why}")


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValidationError(f"{what}: {value!r}; expected one of {', '.join(choices)}")
    return value


def staff_by_ref(crm: Any, ref: Any, what: str = "agent", *, active: bool = True) -> Any:
    s = crm.staff.get(ref)
    if active and not s.active:
        raise ValidationError(f"{what} {s.key!r} has departed; choose an active member of staff")
    return s
