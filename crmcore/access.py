"""Who is acting, and which customers they may see and change.

A :class:`Principal` is attached to every CRM call. Its *scope* decides which
customers are visible: ``own`` (owned, or linked by an active customer->staff
relationship), ``team`` (owned or linked by anyone in the same team), ``all``.
The filter is applied by the query layer (:mod:`crmcore.db`, :mod:`crmcore.scope`)
to every statement that touches customer data, so a plugin's listing, report or
export is filtered the same way as the core's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import attrs
from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, false, or_, select, true

from crmcore.schema import customers, relationships, staff, tickets

# The core's permissions. A plugin may declare more (``PluginInfo.permissions``);
# :func:`known_permissions` is the one list a configured role is checked against.
PERMISSIONS = ("read", "write", "pii", "export", "admin", "audit", "configure")


def known_permissions(declared: Iterable[str] = ()) -> tuple[str, ...]:
    """The core's permissions followed by those the enabled plugins ``declared``."""
    return tuple(dict.fromkeys((*PERMISSIONS, *declared)))


@attrs.frozen(kw_only=True)
class Principal:
    """The acting staff member (or the system), with resolved scope and permissions."""

    staff_id: int | None
    key: str
    roles: tuple[str, ...] = ()
    team: str | None = None
    scope: str = "own"
    permissions: frozenset[str] = frozenset()
    active: bool = True

    def can(self, permission: str) -> bool:
        return self.active and permission in self.permissions

    @property
    def unrestricted(self) -> bool:
        return self.scope == "all"


SYSTEM = Principal(
    staff_id=None, key="system", roles=("admin",), scope="all", permissions=frozenset(PERMISSIONS)
)


def resolve(row: Any, roles_config: dict[str, dict[str, Any]]) -> Principal:
    """Build a Principal from a staff row and the configured roles.

    The widest scope among the staff member's roles wins; permissions are the
    union. A departed member gets no scope and no permission at all.
    """
    order = {"own": 0, "team": 1, "all": 2}
    scope, perms = "own", set()
    for role in row.roles or ():
        spec = roles_config.get(role)
        if spec is None:
            continue
        perms.update(spec.get("permissions", ()))
        if order[spec["scope"]] > order[scope]:
            scope = spec["scope"]
    active = bool(row.active)
    return Principal(
        staff_id=row.id,
        key=row.key,
        roles=tuple(row.roles or ()),
        team=row.team,
        scope=scope if active else "own",
        permissions=frozenset(perms) if active else frozenset(),
        active=active,
    )


def customer_condition(principal: Principal, id_col: Any, owner_col: Any = None) -> ColumnElement:
    """SQL condition: the customer whose id is ``id_col`` is visible to ``principal``.

    ``owner_col`` (customers.owner_id) is given when the statement reads
    ``customers`` itself, to avoid one subquery.
    """
    if principal.unrestricted:
        return true()
    if not principal.active or principal.staff_id is None:
        return false()
    team = principal.team if principal.scope == "team" else None
    lists = _visibility_lists(principal.staff_id, team)
    if owner_col is not None:
        return or_(lists.is_mine(owner_col), id_col.in_(lists.linked), id_col.in_(lists.working))
    return or_(id_col.in_(lists.owned), id_col.in_(lists.linked), id_col.in_(lists.working))


@attrs.frozen
class _Lists:
    """The statements that list whom a member of staff (or their team) sees."""

    mine: Any  # the staff id, or the team's staff ids (a scalar subquery)
    by_team: bool
    linked: Any
    working: Any
    owned: Any

    def is_mine(self, col: Any) -> ColumnElement:
        return col.in_(self.mine) if self.by_team else col == self.mine


@functools.lru_cache(maxsize=4096)
def _visibility_lists(staff_id: int, team: str | None) -> _Lists:
    """Built once per member of staff (or team) and process: building them is
    most of what scoping a statement costs, and they depend on nothing else."""
    if team is not None:
        mine: Any = select(staff.c.id).where(staff.c.team == team).correlate(None).scalar_subquery()
    else:
        mine = staff_id
    probe = _Lists(mine, team is not None, None, None, None)
    # correlate(None): each list stands alone, also inside a statement over the same table
    linked = (
        select(relationships.c.from_customer_id)
        .where(and_(probe.is_mine(relationships.c.to_staff_id), relationships.c.active == true()))
        .correlate(None)
    )
    # whoever owns an open ticket must see its customer to work on it
    working = (
        select(tickets.c.customer_id)
        .where(and_(probe.is_mine(tickets.c.owner_id), tickets.c.closed_at.is_(None)))
        .correlate(None)
    )
    owned = select(customers.c.id).where(probe.is_mine(customers.c.owner_id)).correlate(None)
    return _Lists(mine, team is not None, linked, working, owned)


def _point_condition(principal: Principal, cust: Any) -> ColumnElement:
    """:func:`customer_condition` for rows of ``cust`` (customers) read one at a
    time: each way of seeing a customer is an EXISTS that follows that
    customer's own index entries (its owner's staff row, its relationships, its
    tickets), so checking one customer reads a handful of rows whatever the
    size of the base or of the principal's book. Parameters ``me`` and ``team``."""
    if principal.scope == "team" and principal.team is not None:
        team: BindParameter[Any] = bindparam("team")

        def is_mine(col: Any) -> ColumnElement:
            return (
                select(staff.c.id)
                .where(staff.c.id == col, staff.c.team == team)
                .correlate_except(staff)
                .exists()
            )
    else:
        me: BindParameter[Any] = bindparam("me")

        def is_mine(col: Any) -> ColumnElement:
            return col == me

    linked = (
        select(relationships.c.id)
        .where(
            relationships.c.from_customer_id == cust.c.id,
            relationships.c.active == true(),
            is_mine(relationships.c.to_staff_id),
        )
        .correlate(cust)
        .exists()
    )
    working = (
        select(tickets.c.id)
        .where(
            tickets.c.customer_id == cust.c.id,
            tickets.c.closed_at.is_(None),
            is_mine(tickets.c.owner_id),
        )
        .correlate(cust)
        .exists()
    )
    return or_(is_mine(cust.c.owner_id), linked, working)


_POINT_CHECKS: dict[bool, Any] = {}
_NOBODY = select(customers.c.id).where(customers.c.id == bindparam("cid"), false())


def visible_customer_check(principal: Principal) -> tuple[Any, dict[str, Any]] | None:
    """The query that answers whether ``principal`` may see the customer with
    id ``cid`` (a row: yes; none: no) and its parameters besides ``cid``;
    None for an unrestricted principal (every customer). The same rule as
    :func:`customer_condition`, as index-driven point lookups for one customer.
    A departed principal, or one that is not a member of staff, sees no one."""
    if principal.unrestricted:
        return None
    if not principal.active or principal.staff_id is None:
        return _NOBODY, {}
    by_team = principal.scope == "team" and principal.team is not None
    stmt = _POINT_CHECKS.get(by_team)
    if stmt is None:
        cust = customers
        stmt = _POINT_CHECKS[by_team] = select(cust.c.id).where(
            cust.c.id == bindparam("cid"), _point_condition(principal, cust)
        )
    return stmt, ({"team": principal.team} if by_team else {"me": principal.staff_id})
