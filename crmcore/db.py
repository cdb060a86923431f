"""The query layer and the engine under their earlier module name: the public
names of :mod:`crmcore.storage.query` and :mod:`crmcore.storage.engine`."""

from __future__ import annotations

from crmcore.storage._driver import Prepared
from crmcore.storage._writes import AUDIT_ROW_LIMIT, UNAUDITED
from crmcore.storage.audit import dumps
from crmcore.storage.engine import (
    BUSY_MESSAGE,
    SQLITE_BUSY_MS,
    SQLITE_SYNCHRONOUS,
    database_error,
    make_engine,
)
from crmcore.storage.query import DB, scope_statement

__all__ = [
    "AUDIT_ROW_LIMIT",
    "BUSY_MESSAGE",
    "DB",
    "SQLITE_BUSY_MS",
    "SQLITE_SYNCHRONOUS",
    "UNAUDITED",
    "Prepared",
    "database_error",
    "dumps",
    "make_engine",
    "scope_statement",
]
