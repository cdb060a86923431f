"""The tables an operation over a whole customer sweeps: every core and plugin
table, those keyed by customer, and the derived ones.

A *derived* table holds only what can be recomputed from other tables (the
kept aggregates ``customer_stats``, the analytics' labels and windows): its
``Table.info`` says so with ``crm_derived = True``, in the core's schema or a
plugin's ``crm_tables``. Merge and forget ask this registry instead of naming
tables: a merge deletes the merged record's derived rows and recomputes the
kept aggregates; forget deletes the customer's derived rows, recomputes their
aggregates from the transactions that stay, and its redaction sweep leaves
derived tables alone (the rows left are other customers' figures and labels).
"""

from __future__ import annotations

from sqlalchemy import Table

from crmcore.plugins import Plugins
from crmcore.schema import metadata

#: the ``Table.info`` key that declares a table derived
DERIVED = "crm_derived"


def is_derived(table: Table) -> bool:
    """Whether ``table`` holds only recomputable data (``info["crm_derived"]``)."""
    return bool(table.info.get(DERIVED))


def all_tables(plugins: Plugins) -> list[Table]:
    """Every core table and every table an enabled plugin declares."""
    tables = dict(metadata.tables)
    for name, table in plugins.declared.get("table", {}).items():
        if table is not None:
            tables[name] = table
    return list(tables.values())


def customer_tables(plugins: Plugins) -> dict[str, Table]:
    """Every core and plugin table with a ``customer_id`` column, by name."""
    return {t.name: t for t in all_tables(plugins) if "customer_id" in t.c}


def derived_customer_tables(plugins: Plugins) -> list[Table]:
    """The derived tables with a ``customer_id`` column (core and plugins)."""
    return [t for t in customer_tables(plugins).values() if is_derived(t)]
