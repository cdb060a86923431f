"""Retention: customers inactive for N years are forgotten.

A rule ``{name, inactive_years, stages?}`` selects, set-based, the live
customers (not merged, not forgotten) created before the cut-off (``--at``
minus ``inactive_years`` calendar years) with no purchase and no interaction
since the cut-off and no open ticket, in one of ``stages`` when given. Each
one found is then erased through :meth:`~crmcore.service.CRM.customers.forget`,
the same path ``crm customer forget`` takes: personal data replaced everywhere,
transactions kept anonymous for the statistics, one audit row per customer.
Each customer is forgotten in a transaction of its own, so an interrupted run
keeps the erasures made and the next run carries on with the rest. Only a
principal who sees every customer and may erase personal data ('pii',
'write') may preview or apply the rules.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import exists, func, select

from crmcore.errors import AccessDenied
from crmcore.schema import customer_stats, customers, interactions, tickets
from crmcore.storage._driver import connection


def cutoff_of(at: dt.datetime, years: int) -> dt.datetime:
    """``at`` moved back ``years`` calendar years (29 February becomes the 28th).

    >>> cutoff_of(dt.datetime(2028, 2, 29, 12), 3)
    datetime.datetime(2025, 2, 28, 12, 0)
    """
    try:
        return at.replace(year=at.year - years)
    except ValueError:
        return at.replace(year=at.year - years, day=28)


def due(rule: dict[str, Any], at: dt.datetime) -> Any:
    """SELECT the ids of the customers ``rule`` erases as of ``at`` (one statement)."""
    cut = cutoff_of(at, rule["inactive_years"])
    c, s, i, t = customers, customer_stats, interactions, tickets
    last_bought = select(s.c.last_at).where(s.c.customer_id == c.c.id).scalar_subquery()
    stmt = select(c.c.id).where(
        c.c.merged_into_id.is_(None),
        c.c.forgotten_at.is_(None),
        c.c.created_at < cut,
        func.coalesce(last_bought, c.c.created_at) < cut,
        ~exists(select(i.c.id).where(i.c.customer_id == c.c.id, i.c.at >= cut)),
        ~exists(select(t.c.id).where(t.c.customer_id == c.c.id, t.c.closed_at.is_(None))),
    )
    if rule.get("stages"):
        stmt = stmt.where(c.c.stage.in_(rule["stages"]))
    return stmt.order_by(c.c.id)


def _require(crm: Any) -> None:
    principal = crm.db.principal
    if not principal.active or not principal.unrestricted:
        raise AccessDenied(
            f"{principal.key} may not run retention: the rules cover every customer; "
            "ask someone who sees all customers"
        )
    if not principal.can("pii") or not principal.can("write"):
        raise AccessDenied(f"{principal.key} may not erase personal data: needs 'pii' and 'write'")


def preview(crm: Any, at: dt.datetime, *, sample: int = 20) -> dict[str, Any]:
    """Per rule, how many customers would be forgotten as of ``at`` and the first ids."""
    rules = crm.config.core["protect"]["retention"]
    out = []
    with crm.transaction(write=False, command="protect retention --preview"):
        _require(crm)
        taken: set[int] = set()
        for rule in rules:
            ids = [cid for cid in connection(crm.db).execute(due(rule, at)).scalars() if cid not in taken]
            taken.update(ids)
            out.append(
                {
                    "rule": rule["name"],
                    "inactive_years": rule["inactive_years"],
                    "cutoff": cutoff_of(at, rule["inactive_years"]).isoformat(),
                    "count": len(ids),
                    "customers": ids[:sample],
                }
            )
    return {"at": at.isoformat(), "rules": out, "total": sum(r["count"] for r in out)}


def apply(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """Forget every customer the rules select as of ``at``, each through the forget path."""
    rules = crm.config.core["protect"]["retention"]
    done: list[dict[str, Any]] = []
    for rule in rules:
        with crm.transaction(write=False, command="protect retention --apply"):
            _require(crm)
            ids = list(connection(crm.db).execute(due(rule, at)).scalars())
        for cid in ids:
            crm.customers.forget(cid)
        with crm.transaction(command="protect retention --apply"):
            crm.db.audit(
                "retention",
                rule["name"],
                "retention_apply",
                None,
                {"at": at.isoformat(), "forgotten": len(ids)},
                customer_id=None,
            )
        done.append({"rule": rule["name"], "forgotten": len(ids), "customers": ids})
    return {"at": at.isoformat(), "rules": done, "total": sum(r["forgotten"] for r in done)}
