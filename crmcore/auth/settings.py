"""The ``[web]`` section of crm.toml: sign-in, sessions, limits of the HTTP API.

Every key has a default, so a crm.toml without ``[web]`` serves the API with
the values below; a key that is not known, or a value of the wrong type, is a
:class:`~crmcore.errors.ConfigError` naming it.
"""

from __future__ import annotations

from typing import Any

import attrs

from crmcore import jsonschemas
from crmcore.errors import ConfigError

WEB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # a browser session lasts this long after sign-in
        "session_hours": {"type": "number", "exclusiveMinimum": 0, "default": 12},
        # failures of one account within the window before it is locked
        "lockout_failures": {"type": "integer", "minimum": 1, "default": 5},
        # failures from one client address (any account) before it is locked
        "lockout_address_failures": {"type": "integer", "minimum": 1, "default": 20},
        "lockout_window_minutes": {"type": "number", "exclusiveMinimum": 0, "default": 15},
        # the first lock lasts this long and doubles with each further failure
        "lockout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "lockout_max_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 900},
        # request bodies larger than this are refused (413)
        "max_body_bytes": {"type": "integer", "minimum": 1024, "default": 1048576},
        # requests per credential (or client address, unauthenticated) per window
        "rate_limit": {"type": "integer", "minimum": 1, "default": 600},
        "rate_window_seconds": {"type": "integer", "minimum": 1, "default": 60},
        # how long a POST's Idempotency-Key is remembered
        "idempotency_hours": {"type": "number", "exclusiveMinimum": 0, "default": 24},
        # mark the session cookie Secure even when the request arrived over http
        # (behind a proxy that ends TLS); it is always Secure over https
        "secure_cookies": {"type": "boolean", "default": False},
    },
}


@attrs.frozen(kw_only=True)
class WebSettings:
    """The validated ``[web]`` section (see :data:`WEB_SCHEMA` for each key)."""

    session_hours: float
    lockout_failures: int
    lockout_address_failures: int
    lockout_window_minutes: float
    lockout_seconds: float
    lockout_max_seconds: float
    max_body_bytes: int
    rate_limit: int
    rate_window_seconds: int
    idempotency_hours: float
    secure_cookies: bool


def web_settings(config: Any) -> WebSettings:
    """The ``[web]`` settings of ``config`` (a :class:`~crmcore.config.Config`),
    defaults filled in; a bad key or value raises :class:`ConfigError`."""
    raw = getattr(config, "web", None) or {}
    where = str(config.path) if getattr(config, "path", None) else "configuration"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: web: expected a table")
    try:
        values = jsonschemas.validate(dict(raw), WEB_SCHEMA, where=where, prefix="web")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return WebSettings(**values)
