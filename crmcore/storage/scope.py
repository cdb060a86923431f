"""The access filter: which statements a restricted principal may run, and how
they are rewritten so they read and change only the customers it may see.

Every table the CRM knows (the core's and the enabled plugins') has a *kind*:

``customer``
    Customer data: the table reaches ``customers`` through a chain of foreign
    keys (``tickets.customer_id``, ``ticket_events -> tickets -> customers``,
    ``relationships.from_customer_id`` *and* ``to_customer_id``) or has a
    ``customer_id`` column. Derived from the metadata; never declared. A row is
    visible when every customer it references is visible.
``record``
    Shared working data that belongs to no customer (a building's incident):
    anyone with ``write`` may add and change it.
``configuration``
    How the business is set up (teams, coverage, projects, buildings, units):
    written only by principals with the ``configure`` permission.
``access``
    Defines who may see what (``staff``): written through the query layer only
    by unrestricted principals; the services write it after their own checks.
``internal``
    Bookkeeping and raw input (the audit trail, inbound messages, job runs):
    a restricted principal can neither read nor write it.

A table declares its kind with ``Table(..., info={"crm_kind": "configuration"})``;
a table that neither reaches customers nor declares a kind is treated as
``configuration`` (fail closed). ``info={"crm_guarded": ("owner_id", ...)}``
names columns a restricted principal may not set or change (a ticket's customer
and owner), ``info={"crm_locking": ("to_staff_id",)}`` columns whose non-NULL
value makes the whole row off limits to it (a customer->staff relationship).

A restricted principal's statement must be a shape the filter can scope
(:mod:`crmcore.storage.shapes`); anything else is refused with
:class:`AccessDenied`. The rewriting uses SQLAlchemy's public API only: the
statements' own ``where()``, ``replacement_traverse`` and the public
attributes of the FROM objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    Table,
    Update,
    and_,
    false,
    or_,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import selectable, visitors

from crmcore.access import Principal, customer_condition
from crmcore.errors import AccessDenied, PluginError
from crmcore.schema import customers
from crmcore.schema import metadata as core_metadata
from crmcore.storage.shapes import SAFE_FUNCTIONS, check_statement

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

KINDS = ("customer", "record", "configuration", "access", "internal")
KIND_KEY = "crm_kind"
GUARDED_KEY = "crm_guarded"
LOCKING_KEY = "crm_locking"


class Catalog:
    """The tables the CRM knows, each with its kind and its paths to customers.

    Built once per set of enabled plugins from their declared tables; the query
    layer looks tables up by identity, so a look-alike ``Table`` built on
    another ``MetaData`` is unknown and refused.
    """

    def __init__(self, tables: Iterable[Table]) -> None:
        self.tables: dict[str, Table] = {}
        for t in tables:
            self.tables.setdefault(t.name, t)
        self._refs: dict[str, list[tuple[str, Table, str, bool]]] = {}
        self._kinds: dict[str, str] = {}
        reaches = self._reaching_tables()
        for name, table in self.tables.items():
            refs = []
            for fk in table.foreign_keys:
                target = self._target(fk)
                if target is None or target is table:
                    continue
                if target.name in reaches:
                    refs.append((fk.parent.key, target, fk.column.key, bool(fk.parent.nullable)))
            if table is not customers and not refs and "customer_id" in table.c:
                refs.append(("customer_id", customers, "id", bool(table.c.customer_id.nullable)))
            declared = table.info.get(KIND_KEY)
            if declared is not None and declared not in KINDS:
                raise PluginError(
                    f"table {name}: info[{KIND_KEY!r}] = {declared!r}; expected one of {list(KINDS)}"
                )
            if table is customers or (refs and declared in (None, "customer")):
                kind = "customer"
            else:
                kind = declared or "configuration"
                refs = [] if kind != "customer" else refs
            self._refs[name] = refs
            self._kinds[name] = kind

    def _target(self, fk: Any) -> Table | None:
        try:
            col = fk.column
        except Exception:  # an unresolvable foreign key cannot reach anything
            return None
        target = col.table
        return target if isinstance(target, Table) else None

    def _reaching_tables(self) -> set[str]:
        """Names of the tables that reach ``customers`` through foreign keys."""
        reach = {customers.name}
        reach |= {n for n, t in self.tables.items() if "customer_id" in t.c}
        changed = True
        while changed:
            changed = False
            for name, table in self.tables.items():
                if name in reach:
                    continue
                for fk in table.foreign_keys:
                    target = self._target(fk)
                    if target is not None and target.name in reach and target is not table:
                        reach.add(name)
                        changed = True
                        break
        return reach

    # -- looking up ------------------------------------------------------------
    def known(self, table: Any) -> bool:
        return isinstance(table, Table) and self.tables.get(table.name) is table

    def kind(self, table: Table) -> str:
        """The table's kind (see the module docstring); unknown tables raise."""
        if not self.known(table):
            raise AccessDenied(f"table {table.name!r} is not a table of this CRM")
        return self._kinds[table.name]

    def customer_columns(self, table: Table) -> tuple[str, ...]:
        """The columns through which ``table``'s rows reference customers."""
        return tuple(r[0] for r in self._refs.get(table.name, ()))

    def guarded(self, table: Table) -> tuple[str, ...]:
        return tuple(table.info.get(GUARDED_KEY, ()))

    def locking(self, table: Table) -> tuple[str, ...]:
        return tuple(table.info.get(LOCKING_KEY, ()))

    # -- the visibility condition ------------------------------------------------
    def condition(
        self,
        principal: Principal,
        f: Any,
        *,
        named: bool = True,
        assigned: bool = True,
        _depth: int = 0,
    ) -> ColumnElement | None:
        """SQL condition on ``f`` (a table or an alias of one) that keeps the rows
        the principal may see; None when the table holds no customer data.

        A row is visible when every customer it references is; with ``named``
        (reads) a row that references no customer at all is nobody's and hidden,
        without it (checking a write) such a row passes. With ``assigned`` a row
        whose ``staff_id`` is the principal's stays visible whatever its customer
        (what is assigned to me); a new or moved row is checked without it."""
        table: Table = cast(Table, f.element) if isinstance(f, selectable.Alias) else f
        if table is customers:
            return customer_condition(principal, f.c.id, f.c.owner_id)
        refs = self._refs.get(table.name, ())
        if not refs:
            return None
        if _depth > 8:
            return false()
        parts: list[ColumnElement] = []
        present: list[ColumnElement] = []
        for col_key, target, target_key, nullable in refs:
            col = f.c[col_key]
            if target is customers and target_key == "id":
                seen = customer_condition(principal, col)
            else:
                inner = self.condition(principal, target, _depth=_depth + 1)
                ids = select(target.c[target_key]).correlate(None)
                if inner is not None:
                    ids = ids.where(inner)
                seen = col.in_(ids)
            parts.append(or_(col.is_(None), seen) if nullable else seen)
            present.append(col.is_not(None))
        cond = and_(*parts)
        if named and all(n for *_, n in refs):
            cond = and_(or_(*present), cond)  # a row that names no customer is nobody's
        if (
            assigned
            and "staff_id" in f.c
            and "customer_id" in f.c
            and principal.staff_id is not None
            and principal.active
        ):
            cond = or_(cond, f.c.staff_id == principal.staff_id)  # what is assigned to me
        return cond

    # -- refusing what cannot be scoped ------------------------------------------
    def check(self, stmt: Any, principal: Principal, dialect: Dialect | None = None) -> None:
        """Refuse (AccessDenied) a statement the filter cannot scope for a
        restricted principal, or one that reads an internal table, when run on
        ``dialect`` (None: on any bundled one); see
        :func:`crmcore.storage.shapes.check_statement`."""
        check_statement(self, stmt, principal, dialect)

    # -- rewriting -------------------------------------------------------------
    def scope(self, stmt: Any, principal: Principal) -> Any:
        """``stmt`` with the principal's visibility condition added to every
        SELECT (compound members, CTEs, subqueries, correlated subqueries
        included) and to the target of an UPDATE or DELETE. Call :meth:`check`
        first: this assumes a statement of known shape."""
        done: dict[int, Any] = {}

        def scoped_select(sel: Select) -> Select:
            # the optional side of an outer join is filtered inside a subquery:
            # a WHERE condition would drop the outer rows it does not match
            optional: dict[int, Any] = {id(f): None for f in _optional_sides(sel.get_final_froms())}
            # a copy of the same kind (SQLAlchemy types the copy as any traversible)
            inner = cast(
                Select,
                visitors.replacement_traverse(
                    sel, {}, lambda element, **_: replace(element, sel, optional)
                ),
            )
            conds = [
                c
                for f in _table_froms(inner.get_final_froms())
                if (c := self.condition(principal, f)) is not None
            ]
            return inner.where(*conds) if conds else inner

        def replace(e: Any, current: Any, optional: dict[int, Any]) -> Any:
            if e is current:
                return None
            if id(e) in optional:
                if optional[id(e)] is None:
                    cond = self.condition(principal, e)
                    optional[id(e)] = (
                        False if cond is None else select(e).where(cond).subquery(e.name)
                    )
                got = optional[id(e)]
                return None if got is False else got
            if not isinstance(e, Select):
                return None
            got = done.get(id(e))
            if got is None:
                got = done[id(e)] = scoped_select(e)
            return got

        if isinstance(stmt, Select):
            return scoped_select(stmt)
        out = visitors.replacement_traverse(
            stmt, {}, lambda element, **_: replace(element, stmt, {})
        )
        if isinstance(out, Update | Delete):
            cond = self.condition(principal, out.table)
            if cond is not None:
                out = out.where(cond)
        return out


def _table_froms(froms: Iterable[Any]) -> Iterator[Any]:
    """Tables (or aliases of tables) among a SELECT's own FROM objects; joins
    are opened, subqueries are scoped on their own."""
    for f in froms:
        if isinstance(f, selectable.Join):
            yield from _table_froms((f.left, f.right))
        elif isinstance(f, selectable.FromGrouping):
            yield from _table_froms((f.element,))
        elif isinstance(f, Table):
            yield f
        elif isinstance(f, selectable.Alias) and isinstance(f.element, Table):
            yield f


def _optional_sides(froms: Iterable[Any], optional: bool = False) -> Iterator[Any]:
    """Tables (or aliases of tables) on the optional side of an outer join."""
    for f in froms:
        if isinstance(f, selectable.Join):
            yield from _optional_sides((f.left,), optional or f.full)
            yield from _optional_sides((f.right,), optional or f.isouter or f.full)
        elif isinstance(f, selectable.FromGrouping):
            yield from _optional_sides((f.element,), optional)
        elif optional and (
            isinstance(f, Table)
            or (isinstance(f, selectable.Alias) and isinstance(f.element, Table))
        ):
            yield f


_CORE_CATALOG: Catalog | None = None
_CATALOGS: dict[int, tuple[Any, Catalog]] = {}


def catalog_of(plugins: Any) -> Catalog:
    """The catalog of the core's tables and those the enabled plugins declared
    (``plugins.declared["table"]``), built once per set of plugins."""
    got = _CATALOGS.get(id(plugins))
    if got is not None and got[0] is plugins:
        return got[1]
    declared = plugins.declared.get("table", {})
    tables = [t for t in declared.values() if isinstance(t, Table)]
    catalog = Catalog([*core_metadata.tables.values(), *tables])
    if len(_CATALOGS) > 64:
        _CATALOGS.clear()
    _CATALOGS[id(plugins)] = (plugins, catalog)
    return catalog


def core_catalog() -> Catalog:
    """The catalog of the core's tables alone (no plugin enabled)."""
    global _CORE_CATALOG
    if _CORE_CATALOG is None:
        _CORE_CATALOG = Catalog(core_metadata.tables.values())
    return _CORE_CATALOG
