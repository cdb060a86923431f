"""crmcore: a small, fast, pluggable CRM core.

A plugin needs only this namespace::

    from crmcore import hookimpl, PluginInfo, Attribute, Job, Template, Channel, Workflow

The names below are imported on first use (PEP 562), so ``import crmcore`` and
commands that need no database (``crm --version``, ``crm --help``) do not load
SQLAlchemy, Alembic or jsonschema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmcore.access import Principal
    from crmcore.clock import Clock, FixedClock, SystemClock
    from crmcore.config import Config
    from crmcore.entities import (
        ContactPoint,
        Customer,
        CustomerBatch,
        InboundMessage,
        Interaction,
        Message,
        Relationship,
        Reminder,
        Staff,
        StageChange,
        Ticket,
        TicketMove,
        TimelineEntry,
        TimelinePage,
        Transaction,
        TransactionBatch,
    )
    from crmcore.errors import (
        AccessDenied,
        ConfigError,
        Conflict,
        CRMError,
        NotFound,
        PluginError,
        RetryableError,
        TransitionError,
        ValidationError,
    )
    from crmcore.hooks.markers import hookimpl
    from crmcore.registry import (
        Attribute,
        Channel,
        Job,
        PluginInfo,
        Template,
        TimelineSource,
        Workflow,
    )
    from crmcore.search.keys import SearchKey
    from crmcore.segments.conditions import SegmentCondition
    from crmcore.service import CRM

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Principal": "crmcore.access",
    **dict.fromkeys(["Clock", "FixedClock", "SystemClock"], "crmcore.clock"),
    "Config": "crmcore.config",
    **dict.fromkeys(
        [
            "ContactPoint",
            "Customer",
            "CustomerBatch",
            "InboundMessage",
            "Interaction",
            "Message",
            "Relationship",
            "Reminder",
            "Staff",
            "StageChange",
            "Ticket",
            "TicketMove",
            "TimelineEntry",
            "TimelinePage",
            "Transaction",
            "TransactionBatch",
        ],
        "crmcore.entities",
    ),
    **dict.fromkeys(
        [
            "AccessDenied",
            "ConfigError",
            "Conflict",
            "CRMError",
            "NotFound",
            "PluginError",
            "RetryableError",
            "TransitionError",
            "ValidationError",
        ],
        "crmcore.errors",
    ),
    "hookimpl": "crmcore.hooks.markers",
    **dict.fromkeys(
        ["Attribute", "Channel", "Job", "PluginInfo", "Template", "TimelineSource", "Workflow"],
        "crmcore.registry",
    ),
    "CRM": "crmcore.service",
    "SearchKey": "crmcore.search.keys",
    "SegmentCondition": "crmcore.segments.conditions",
}

__all__ = [
    "CRM",
    "AccessDenied",
    "Attribute",
    "CRMError",
    "Channel",
    "Clock",
    "Config",
    "ConfigError",
    "Conflict",
    "ContactPoint",
    "Customer",
    "CustomerBatch",
    "FixedClock",
    "InboundMessage",
    "Interaction",
    "Job",
    "Message",
    "NotFound",
    "PluginError",
    "PluginInfo",
    "Principal",
    "Relationship",
    "Reminder",
    "RetryableError",
    "SearchKey",
    "SegmentCondition",
    "Staff",
    "StageChange",
    "SystemClock",
    "Template",
    "Ticket",
    "TicketMove",
    "TimelineEntry",
    "TimelinePage",
    "TimelineSource",
    "Transaction",
    "TransactionBatch",
    "TransitionError",
    "ValidationError",
    "Workflow",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    """Import a public name, or a submodule (``crmcore.schema``), when first asked for."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
