"""The ``[jobs.NAME]`` and ``[outbox]`` tables of crm.toml.

``[jobs."retail.tiers"]`` (or, without quotes, the nested ``[jobs.retail.tiers]``)
overrides one job's schedule, catch-up policy and retry policy;
``[outbox]`` sets the worker's attempts, backoff, lease and batch size. Checked
when the file is loaded, every error one line naming the key; whether a job of
that name exists is checked once the plugins are loaded
(:func:`crmcore.ops.schedules.plans`).
"""

from __future__ import annotations

from typing import Any

from crmcore import jsonschemas
from crmcore.errors import ConfigError

SECTIONS = ("jobs", "outbox")
CATCH_UP = ("run_once", "skip")
JOB_KEYS = ("schedule", "catch_up", "attempts", "backoff_seconds")

JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "schedule": {"type": "string", "minLength": 1, "maxLength": 100},
        "catch_up": {"enum": list(CATCH_UP)},
        "attempts": {"type": "integer", "minimum": 1, "maximum": 100},
        "backoff_seconds": {"type": "integer", "minimum": 0, "maximum": 86_400},
    },
}

OUTBOX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # default: [crm] outbox_max_attempts
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
        # the wait after the first failed attempt; doubled after each further one
        "backoff_seconds": {"type": "integer", "minimum": 0, "default": 30},
        "backoff_max_seconds": {"type": "integer", "minimum": 0, "default": 3600},
        # how long a worker holds a claimed message before another may take it
        "lease_seconds": {"type": "integer", "minimum": 1, "default": 300},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 20},
    },
}


def job_settings(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """The ``[jobs]`` table as ``{job name: settings}``, nested tables flattened
    (``[jobs.retail.tiers]`` is the job ``retail.tiers``)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: jobs: expected [jobs.NAME] tables")
    found: dict[str, dict[str, Any]] = {}
    stack: list[tuple[str, dict[str, Any]]] = [(k, v) for k, v in raw.items()]
    while stack:
        name, value = stack.pop()
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: jobs.{name}: expected a table of {', '.join(JOB_KEYS)}")
        own = {k: v for k, v in value.items() if not isinstance(v, dict)}
        stack.extend((f"{name}.{k}", v) for k, v in value.items() if isinstance(v, dict))
        if own or not value:
            try:
                found[name] = jsonschemas.validate(
                    own, JOB_SCHEMA, where=where, prefix=f"jobs.{name}"
                )
            except ValueError as e:
                raise ConfigError(str(e)) from None
    return found


def outbox_settings(raw: Any, core: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``[outbox]`` table with defaults filled in; ``max_attempts`` falls
    back to ``[crm] outbox_max_attempts``."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: outbox: expected a table")
    try:
        settings = jsonschemas.validate(dict(raw), OUTBOX_SCHEMA, where=where, prefix="outbox")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    settings.setdefault("max_attempts", core["outbox_max_attempts"])
    return settings
