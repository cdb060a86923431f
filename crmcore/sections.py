"""The crm.toml sections of lifecycle rules, follow-ups and data protection.

``[[crm.lifecycle.rules]]`` moves customers between stages by their last
purchase (see :mod:`crmcore.lifecycle_rules`); ``[crm.followups]`` defines
playbooks and what counts as the customer responding (see
:mod:`crmcore.followups`); ``[crm.protect]`` holds the retention rules (see
:mod:`crmcore.protect`). The JSON Schemas here are parts of the core's schema
(:data:`crmcore.config.CORE_SCHEMA`); :func:`check` says what a schema cannot
(a rule's move must be an allowed transition, a playbook must exist).
"""

from __future__ import annotations

from typing import Any

from crmcore.errors import ConfigError

NAME_PATTERN = "^[a-z][a-z0-9_.-]*$"

# what a rule looks at: no purchase for ``days`` days, or a purchase after the
# customer entered their current stage (a win-back)
RULE_KINDS = ("no_purchase", "purchase_since_stage")

LIFECYCLE_RULES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "default": [],
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "when", "from", "to"],
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN},
            "when": {"enum": list(RULE_KINDS)},
            "days": {"type": "integer", "minimum": 1},
            "from": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "to": {"type": "string"},
        },
    },
}

PLAYBOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["steps"],
    "properties": {
        "description": {"type": "string", "default": ""},
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["day", "action"],
                "properties": {
                    "day": {"type": "integer", "minimum": 0},
                    "action": {"type": "string", "minLength": 1, "maxLength": 64},
                    "text": {"type": "string", "maxLength": 500, "default": ""},
                },
            },
        },
    },
}

# the interaction kinds that are the customer turning to the company (a call,
# an SMS or an e-mail counts when its data says {"direction": "in"})
DEFAULT_RESPONSE_KINDS = ["visit", "complaint", "survey"]

FOLLOWUPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "default": {},
    "properties": {
        "playbooks": {
            "type": "object",
            "default": {},
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": PLAYBOOK_SCHEMA,
        },
        # stage -> the playbook started when a customer enters it
        "start_on_stage": {
            "type": "object",
            "default": {},
            "additionalProperties": {"type": "string"},
        },
        "response_kinds": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_RESPONSE_KINDS,
        },
        # a purchase after the start is a response too
        "purchase_is_response": {"type": "boolean", "default": True},
    },
}

PROTECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "default": {},
    "properties": {
        # customer attributes stored encrypted: "customers.attributes.NAME"
        "encrypted": {"type": "array", "items": {"type": "string"}, "default": []},
        "key_file": {"type": ["string", "null"], "default": None},
        "retention": {
            "type": "array",
            "default": [],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "inactive_years"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "inactive_years": {"type": "integer", "minimum": 1, "maximum": 100},
                    # restrict the rule to customers in these stages (default: any)
                    "stages": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def check(core: dict[str, Any], where: str) -> None:
    """Refuse what the schemas cannot: a rule whose move is not an allowed
    transition, a duplicate name, a ``no_purchase`` rule without ``days``, a
    stage or playbook that does not exist."""
    lc = core["lifecycle"]
    stages, transitions = lc["stages"], lc["transitions"]
    seen: set[str] = set()
    for i, rule in enumerate(lc["rules"]):
        key = f"{where}: crm.lifecycle.rules[{i}] ({rule['name']})"
        if rule["name"] in seen:
            raise ConfigError(f"{key}: the name is used by an earlier rule")
        seen.add(rule["name"])
        if rule["when"] == "no_purchase" and "days" not in rule:
            raise ConfigError(f"{key}: a no_purchase rule needs days")
        for stage in (*rule["from"], rule["to"]):
            if stage not in stages:
                raise ConfigError(f"{key}: unknown stage {stage!r}; stages are {stages}")
        for src in rule["from"]:
            if rule["to"] not in transitions.get(src, []):
                raise ConfigError(
                    f"{key}: cannot move from {src!r} to {rule['to']!r}; "
                    f"allowed from {src!r}: {transitions.get(src) or 'none'}"
                )
    if lc["lost_stage"] is None:
        lc["lost_stage"] = "lost" if "lost" in stages else stages[-1]
    if lc["lost_stage"] not in stages:
        raise ConfigError(
            f"{where}: crm.lifecycle.lost_stage: {lc['lost_stage']!r} is not one of the stages"
        )
    follow = core["followups"]
    for stage, playbook in follow["start_on_stage"].items():
        if stage not in stages:
            raise ConfigError(f"{where}: crm.followups.start_on_stage: unknown stage {stage!r}")
        if playbook not in follow["playbooks"]:
            raise ConfigError(
                f"{where}: crm.followups.start_on_stage.{stage}: no playbook {playbook!r} "
                f"in crm.followups.playbooks ({', '.join(sorted(follow['playbooks'])) or 'none'})"
            )
    names: set[str] = set()
    for i, rule in enumerate(core["protect"]["retention"]):
        key = f"{where}: crm.protect.retention[{i}] ({rule['name']})"
        if rule["name"] in names:
            raise ConfigError(f"{key}: the name is used by an earlier rule")
        names.add(rule["name"])
        for stage in rule.get("stages", ()):
            if stage not in stages:
                raise ConfigError(f"{key}: unknown stage {stage!r}; stages are {stages}")
