"""The ``crm`` command line. Plugins add groups through ``crm_cli_commands`` and
get the CRM with :func:`pass_crm`; ``JSON_OPTION`` and :func:`emit` give them the
same ``--json`` behaviour as the core's commands."""

from __future__ import annotations

from crmcore.cli import (  # noqa: F401  (register commands)
    _admin,
    _analytics,
    _campaigns,
    _customers,
    _import,
    _inbox,
    _lifecycle,
    _ops,
    _records,
    _scaffold,
    _search,
    _segments,
    _staff,
    _web,
    _webhooks,
)
from crmcore.cli._app import (
    JSON_OPTION,
    cli,
    emit,
    main,
    parse_at,
    pass_crm,
    to_plain,
)
from crmcore.cli.params import Number, Whole

__all__ = [
    "JSON_OPTION",
    "Number",
    "Whole",
    "cli",
    "emit",
    "main",
    "parse_at",
    "pass_crm",
    "to_plain",
]
