"""crmcore: a small, fast, pluggable CRM core.

A plugin needs only this namespace::

    from crmcore import hookimpl, PluginInfo, Attribute, Job, Template, Channel, Workflow
"""

from __future__ import annotations

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
from crmcore.registry import Attribute, Channel, Job, PluginInfo, Template, Workflow
from crmcore.service import CRM

__version__ = "0.1.0"

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
    "Staff",
    "StageChange",
    "SystemClock",
    "Template",
    "Ticket",
    "TicketMove",
    "TimelineEntry",
    "Transaction",
    "TransactionBatch",
    "TransitionError",
    "ValidationError",
    "Workflow",
    "hookimpl",
]
