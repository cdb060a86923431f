"""The access filter under its earlier module name: the public names of
:mod:`crmcore.storage.scope`."""

from __future__ import annotations

from crmcore.storage.scope import (
    GUARDED_KEY,
    KIND_KEY,
    KINDS,
    LOCKING_KEY,
    SAFE_FUNCTIONS,
    Catalog,
    catalog_of,
    core_catalog,
)

__all__ = [
    "GUARDED_KEY",
    "KINDS",
    "KIND_KEY",
    "LOCKING_KEY",
    "SAFE_FUNCTIONS",
    "Catalog",
    "catalog_of",
    "core_catalog",
]
