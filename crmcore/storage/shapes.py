"""The statement shapes the access filter can scope, and the refusal of every
other shape for a restricted principal.

A restricted principal's statement must be a SELECT, compound SELECT, INSERT,
UPDATE or DELETE built only of the CRM's tables and plain SQL expressions
(:data:`SAFE_FUNCTIONS` among the functions). Everything the filter cannot
reason about is refused with :class:`AccessDenied`: SQL text, lightweight
``table()`` clauses, textual selects, DDL, VALUES, LATERAL, custom operators,
prefixes and hints, DML inside a CTE, unknown functions. The tree is walked
with SQLAlchemy's public traversal; what it does not walk (prefixes, suffixes
and hints) is found by compiling the statement with a compiler whose public
hooks refuse it. No private attribute of a SQLAlchemy object is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import CompoundSelect, Delete, Insert, Select, Table, Update, column, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import elements, functions, selectable, visitors
from sqlalchemy.sql import operators as sql_operators
from sqlalchemy.sql.elements import ClauseElement

from crmcore.access import Principal
from crmcore.errors import AccessDenied

if TYPE_CHECKING:
    from crmcore.storage.scope import Catalog

# Functions a restricted principal's statement may call: side-effect free, no
# clock, no file or network access. Anything else is refused.
SAFE_FUNCTIONS = frozenset(
    {
        "abs",
        "avg",
        "ceil",
        "ceiling",
        "char_length",
        "coalesce",
        "concat",
        "count",
        "date",
        "date_trunc",
        "dense_rank",
        "distinct",
        "floor",
        "greatest",
        "group_concat",
        "ifnull",
        "least",
        "length",
        "lower",
        "ltrim",
        "max",
        "min",
        "nullif",
        "rank",
        "replace",
        "round",
        "row_number",
        "rtrim",
        "strftime",
        "string_agg",
        "substr",
        "substring",
        "sum",
        "total",
        "trim",
        "upper",
    }
)


def _label_reference_type() -> type:
    """The element SQLAlchemy wraps a label in when a statement is ordered by
    it (``order_by(label)``). Its class is private to SQLAlchemy, so it is taken
    from such a statement built with the public API."""
    label: Any = column("x").label("x")
    wrapped = [e for e in select(label).order_by(label).get_children() if e is not label]
    return type(wrapped[0])


_LABEL_REFERENCE = _label_reference_type()
# Expression elements that render only their children, bound values and
# quoted names: safe inside a restricted principal's statement.
_PLAIN = (
    elements.BindParameter,
    elements.BinaryExpression,
    elements.BooleanClauseList,
    elements.ClauseList,
    elements.ExpressionClauseList,
    elements.UnaryExpression,
    elements.Grouping,
    elements.Cast,
    elements.TypeCoerce,
    elements.Case,
    elements.Null,
    elements.True_,
    elements.False_,
    elements.Label,
    elements.Over,
    elements.WithinGroup,
    elements.FunctionFilter,
    elements.Tuple,
    elements.Extract,
    elements.Slice,
    elements.CollectionAggregate,
    _LABEL_REFERENCE,
    selectable.ScalarSelect,
    selectable.Exists,
    selectable.Join,
    selectable.FromGrouping,
    selectable.SelectStatementGrouping,
    selectable.Subquery,
    selectable.CTE,
    selectable.Alias,
    selectable.ForUpdateArg,
)
_NOT_PLAIN = (
    selectable.Lateral,
    selectable.TableSample,
    selectable.TableValuedAlias,
    selectable.Values,
    selectable.TextualSelect,
    elements.TextClause,
)
# The dialects a statement is compiled for when the caller names none.
_BUNDLED_DIALECTS: tuple[Dialect, ...] = (sqlite.dialect(), postgresql.dialect())


def check_statement(
    catalog: Catalog, stmt: Any, principal: Principal, dialect: Dialect | None = None
) -> None:
    """Refuse (AccessDenied) a statement the filter cannot scope for a
    restricted principal, or one that reads an internal table. ``dialect`` is
    the one the statement runs on (prefixes and hints may be given for one
    dialect only); without it the statement is checked for every bundled one."""
    who = principal.key
    if type(stmt) not in (Select, CompoundSelect, Insert, Update, Delete):
        raise AccessDenied(
            f"{who}: {type(stmt).__name__} statements are not scoped by the access filter; "
            "only SELECT, INSERT, UPDATE and DELETE built from the CRM's tables run "
            "for a restricted principal"
        )
    for el in visitors.iterate(stmt):
        _check_element(catalog, el, stmt, who)
    if isinstance(stmt, Update | Delete):
        foreign = {t.name for t in _direct_tables(stmt) if t is not stmt.table}
        if foreign:
            raise AccessDenied(
                f"{who}: a {type(stmt).__name__.upper()} of {stmt.table.description} that reads "
                f"{', '.join(sorted(foreign))} outside a subquery is not scoped; "
                "use a subquery (IN / EXISTS)"
            )
    for each in (dialect,) if dialect is not None else _BUNDLED_DIALECTS:
        try:
            _refusing_compiler(each)(each, stmt)
        except _RawText:
            raise AccessDenied(
                f"{who}: a statement with prefixes, suffixes or hints cannot be scoped by the "
                "access filter; build the statement from the CRM's tables with SQLAlchemy Core"
            ) from None
        except sa_exc.CompileError as e:  # e.g. a hint the dialect does not know
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise AccessDenied(
                f"{who}: the statement cannot be compiled for {each.name} ({first}), so the "
                "access filter cannot scope it"
            ) from None


def _check_element(catalog: Catalog, el: Any, top: Any, who: str) -> None:
    def refuse(what: str) -> AccessDenied:
        return AccessDenied(
            f"{who}: {what} cannot be scoped by the access filter; "
            "build the statement from the CRM's tables with SQLAlchemy Core"
        )

    if isinstance(el, _NOT_PLAIN):
        raise refuse(f"SQL text or a {type(el).__name__} construct")
    if isinstance(el, Table):
        if not catalog.known(el):
            raise refuse(f"table {el.name!r}, which is not one of the CRM's tables,")
        if catalog.kind(el) == "internal":
            raise AccessDenied(f"{who} may not read or write {el.name}")
        return
    if isinstance(el, selectable.TableClause):
        raise refuse(f"the lightweight table {el.name!r}")
    if isinstance(el, Insert | Update | Delete):
        if el is not top:
            raise refuse("an INSERT, UPDATE or DELETE inside another statement")
        if type(el) not in (Insert, Update, Delete):
            raise refuse(f"the dialect-specific {type(el).__name__}")
        return
    if isinstance(el, Select | CompoundSelect):
        if type(el) not in (Select, CompoundSelect):
            raise refuse(f"the {type(el).__name__} construct")
        return
    if isinstance(el, elements.ColumnClause):
        if el.is_literal and el.name != "*":  # count(*) renders a literal "*"
            raise refuse(f"the literal column {el.name!r}")
        return
    if isinstance(el, functions.FunctionElement):
        name = getattr(el, "name", None)
        if not isinstance(el, functions.Function | functions.GenericFunction) or (
            str(name).lower() not in SAFE_FUNCTIONS
        ):
            raise refuse(f"the SQL function {name or type(el).__name__!r}")
        return
    if isinstance(el, elements.BinaryExpression | elements.UnaryExpression):
        for op in (getattr(el, "operator", None), getattr(el, "modifier", None)):
            if isinstance(op, sql_operators.custom_op):
                raise refuse(f"the custom operator {op.opstring!r}")
        return
    if isinstance(el, _PLAIN):
        return
    raise refuse(f"a {type(el).__name__} element")


def _direct_tables(stmt: Any) -> Iterator[Table]:
    """Tables whose columns an UPDATE/DELETE uses outside its subqueries (they
    would become extra FROM tables of the statement, unscoped)."""
    stack: list[Any] = [c for c in stmt.get_children() if c is not stmt.table]
    while stack:
        el = stack.pop()
        if isinstance(el, Select | CompoundSelect | selectable.ScalarSelect | selectable.Exists):
            continue
        if isinstance(el, elements.ColumnClause) and isinstance(el.table, Table):
            yield el.table
        if isinstance(el, ClauseElement):
            stack.extend(el.get_children())


_CORE_CATALOG: Catalog | None = None


class _RawText(Exception):
    """Raised by the refusing compiler where raw SQL text would be rendered."""


_REFUSING: dict[type, type] = {}


def _refusing_compiler(dialect: Dialect) -> Any:
    """The dialect's statement compiler, refusing whatever renders raw SQL text
    outside the statement's tree: prefixes and suffixes (rendered as text
    clauses; a text clause inside the tree was refused before) and table,
    statement and DML hints. Built on the compiler's public hooks."""
    base = dialect.statement_compiler
    got = _REFUSING.get(base)
    if got is not None:
        return got

    class Refusing(base):  # type: ignore[valid-type,misc]
        def visit_textclause(self, textclause: Any, **kw: Any) -> str:
            raise _RawText()

        def get_select_hint_text(self, byfroms: Any) -> Any:
            if byfroms:
                raise _RawText()
            return super().get_select_hint_text(byfroms)

        def get_from_hint_text(self, table: Any, text: Any) -> Any:
            if text:
                raise _RawText()
            return super().get_from_hint_text(table, text)

        def get_crud_hint_text(self, table: Any, text: Any) -> Any:
            if text:
                raise _RawText()
            return super().get_crud_hint_text(table, text)

        def get_statement_hint_text(self, hint_texts: Any) -> str:
            if hint_texts:
                raise _RawText()
            return str(super().get_statement_hint_text(hint_texts))

    _REFUSING[base] = Refusing
    return Refusing
