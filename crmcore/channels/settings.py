"""The ``[channels.NAME]`` and ``[messages]`` tables of crm.toml, validated.

A channel's table names its ``kind`` (``smtp``, ``sms_http``, ``aliyun``,
``nats``) and that kind's settings. Secrets never live in the file: a setting
ending in ``_env`` names the environment variable that holds the secret.
``[messages]`` holds the messaging rules (quiet hours, frequency caps,
unsubscribe words) applied when a message is queued and again when it is sent.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from crmcore import jsonschemas
from crmcore.errors import ConfigError

KINDS = ("smtp", "sms_http", "aliyun", "nats")
# the medium each kind delivers over: the consent and address a message needs
MEDIUM = {"smtp": "email", "sms_http": "sms", "aliyun": "sms", "nats": "event"}
DEFAULT_UNSUBSCRIBE_WORDS = ["退订", "TD", "STOP"]
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_ENV_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
_TEMPLATE_IDS = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
_TIMEOUT = {"type": "number", "exclusiveMinimum": 0, "maximum": 300, "default": 10}

MESSAGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # "21:00-08:00": marketing messages queued in this window wait for its end
        "quiet_hours": {
            "type": ["string", "null"],
            "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$",
            "default": None,
        },
        "max_marketing_per_day": {"type": ["integer", "null"], "minimum": 1, "default": None},
        "max_marketing_per_week": {"type": ["integer", "null"], "minimum": 1, "default": None},
        "unsubscribe_words": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 32},
            "default": DEFAULT_UNSUBSCRIBE_WORDS,
        },
    },
}

KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "smtp": {
        "required": ["host", "from"],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "security": {"enum": ["starttls", "ssl", "none"], "default": "starttls"},
            "username": {"type": "string"},
            "password_env": _ENV_NAME,
            "from": {"type": "string", "minLength": 3},
            "subject": {"type": "string", "default": ""},
            "subjects": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "default": {},
            },
            "message_id_domain": {"type": "string"},
            "ca_file": {"type": "string"},
            "timeout": _TIMEOUT,
        },
    },
    "sms_http": {
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "pattern": "^https?://"},
            "format": {"enum": ["json", "form"], "default": "json"},
            # our field -> the gateway's field name; "to", "body" and "key" are always sent
            "fields": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    name: {"type": "string", "minLength": 1}
                    for name in ("to", "body", "key", "sign_name", "template")
                },
                "default": {},
            },
            "auth_header": {"type": "string", "default": "Authorization"},
            "auth_env": _ENV_NAME,
            "id_field": {"type": "string"},  # the response's message-id field
            "sign_name": {"type": "string"},
            "templates": {**_TEMPLATE_IDS, "default": {}},
            "timeout": _TIMEOUT,
            # receipts and replies pushed to /api/v1/hooks/sms/NAME
            "receipt_secret_env": _ENV_NAME,
            "signature_header": {"type": "string", "default": "X-Signature"},
            "delivered_values": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["delivered"],
            },
        },
    },
    "aliyun": {
        "required": ["access_key_id", "access_key_secret_env", "sign_name", "templates"],
        "properties": {
            "access_key_id": {"type": "string", "minLength": 1},
            "access_key_secret_env": _ENV_NAME,
            "sign_name": {"type": "string", "minLength": 1},
            "templates": _TEMPLATE_IDS,
            "endpoint": {
                "type": "string",
                "pattern": "^https?://",
                "default": "https://dysmsapi.aliyuncs.com/",
            },
            "region": {"type": "string", "default": "cn-hangzhou"},
            "timeout": _TIMEOUT,
            "receipt_token_env": _ENV_NAME,
        },
    },
    "nats": {
        "properties": {
            "servers": {
                "type": "array",
                "items": {"type": "string", "pattern": "^(nats|tls)://"},
                "minItems": 1,
                "default": ["nats://127.0.0.1:4222"],
            },
            "subject_prefix": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
                "default": "crm",
            },
            "timeout": _TIMEOUT,
        },
    },
}


def validate_messages(raw: Any, where: str) -> dict[str, Any]:
    """``[messages]`` with defaults filled in; a ConfigError naming the key otherwise."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: messages: expected a table")
    try:
        rules = jsonschemas.validate(
            copy.deepcopy(raw), MESSAGES_SCHEMA, where=where, prefix="messages"
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if rules["quiet_hours"] is not None:
        from crmcore.channels.rules import parse_window

        try:
            parse_window(rules["quiet_hours"])
        except ValueError as e:
            raise ConfigError(f"{where}: messages.quiet_hours: {e}") from None
    return rules


def validate_channels(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """Each ``[channels.NAME]`` table checked against its kind's schema, defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: channels: expected [channels.NAME] tables")
    checked: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        prefix = f"channels.{name}"
        if not _CHANNEL_NAME.match(name):
            raise ConfigError(
                f"{where}: {prefix}: a channel name is lower-case letters, digits, '_', '.' "
                "or '-', starting with a letter, at most 32 characters"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {prefix}: expected a table")
        kind = table.get("kind")
        if kind not in KINDS:
            raise ConfigError(
                f"{where}: {prefix}.kind: expected one of {list(KINDS)}, got {kind!r}"
            )
        spec = KIND_SCHEMAS[kind]
        schema = {
            "type": "object",
            "additionalProperties": False,
            "required": spec.get("required", []),
            "properties": {"kind": {"const": kind}, **spec["properties"]},
        }
        try:
            checked[name] = jsonschemas.validate(
                copy.deepcopy(table), schema, where=where, prefix=prefix
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return checked
