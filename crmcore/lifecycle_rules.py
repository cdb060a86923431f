"""Lifecycle monitoring: the ``[[crm.lifecycle.rules]]`` of crm.toml moved set-based.

A rule names the stages it moves customers ``from``, the stage ``to`` and what
it looks at, ``when``:

- ``no_purchase``: the customer's last purchase (``customer_stats.last_at``) is
  more than ``days`` days before the run's time;
- ``purchase_since_stage``: the customer bought after entering the stage they
  are in (the time of their last move into it), e.g. a purchase after ``lost``
  moves them back to ``developing`` (a win-back).

Only customers with a purchase are looked at (a customer who never bought has
no last purchase to age); merged and forgotten customers never move. The job
``core.lifecycle`` applies the rules in their order, each as one INSERT ...
SELECT into ``stage_changes`` (the rule named in the reason) and one UPDATE of
``customers``: a customer moved by one rule may be moved on by a later rule of
the same run. Each move is audited and on the customer's timeline (as every
stage change is); hooks see each rule's moves as one
:class:`StageChangeBatch` (``crm_stage_changed_batch``), and plugins that
only implement ``crm_stage_changed`` are called once per moved customer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from sqlalchemy import DateTime, String, func, literal, select, update

from crmcore.entities import StageChange
from crmcore.errors import AccessDenied
from crmcore.schema import Id, customer_stats, customers, stage_changes
from crmcore.storage._driver import connection

JOB_NAME = "core.lifecycle"


@attrs.frozen(slots=True, kw_only=True)
class StageChangeBatch:
    """The moves one lifecycle rule made in one run.

    ``first_id``..``last_id`` bound the ``stage_changes`` rows written (select
    them by ``id`` in the range and ``reason``); ``customer_ids`` are the
    customers moved, each from one of ``from_stages`` to ``to_stage``.
    """

    rule: str
    reason: str
    from_stages: tuple[str, ...]
    to_stage: str
    at: dt.datetime
    first_id: int
    last_id: int
    count: int
    customer_ids: tuple[int, ...]


def rules_of(crm: Any) -> list[dict[str, Any]]:
    """The configured rules, in their order."""
    return list(crm.config.core["lifecycle"]["rules"])


def reason_of(rule: dict[str, Any]) -> str:
    """The reason recorded with each move of ``rule``: names the rule and its condition."""
    if rule["when"] == "no_purchase":
        return f"lifecycle rule {rule['name']}: no purchase in {rule['days']} days"
    return f"lifecycle rule {rule['name']}: a purchase after entering the stage"


def candidates(rule: dict[str, Any], at: dt.datetime) -> Any:
    """SELECT (id, stage) of the customers ``rule`` moves as of ``at``: one
    statement over the whole base, driven by ``customer_stats``."""
    c, s = customers, customer_stats
    stmt = (
        select(c.c.id, c.c.stage)
        .select_from(c.join(s, s.c.customer_id == c.c.id))
        .where(
            c.c.merged_into_id.is_(None),
            c.c.forgotten_at.is_(None),
            c.c.stage.in_(rule["from"]),
        )
    )
    if rule["when"] == "no_purchase":
        return stmt.where(s.c.last_at < at - dt.timedelta(days=rule["days"]))
    entered = (
        select(func.max(stage_changes.c.at))
        .where(stage_changes.c.customer_id == c.c.id, stage_changes.c.to_stage == c.c.stage)
        .scalar_subquery()
    )
    return stmt.where(s.c.last_at > entered, s.c.last_at <= at)


def require_whole_base(crm: Any, what: str) -> None:
    """Lifecycle rules look at every customer: only a principal who sees them all
    (an admin, an auditor, the system) may run or preview them."""
    principal = crm.db.principal
    if not principal.active:
        raise AccessDenied(f"{principal.key} has departed and may not {what}")
    if not principal.unrestricted:
        raise AccessDenied(
            f"{principal.key} may not {what}: the rules cover every customer; "
            "ask someone who sees all customers"
        )


def _apply_rule(
    crm: Any, rule: dict[str, Any], at: dt.datetime, *, checked: bool
) -> StageChangeBatch | None:
    """Write one rule's moves: the stage changes, then the customers' stage.
    ``checked`` writes through the query layer (audited); otherwise the raw
    connection (a preview inside a savepoint that is rolled back)."""
    db = crm.db
    run = db.execute if checked else connection(db).execute
    reason = reason_of(rule)
    sc = stage_changes
    before = connection(db).execute(select(func.coalesce(func.max(sc.c.id), 0))).scalar_one()
    moving = candidates(rule, at).subquery("moving")
    run(
        sc.insert().from_select(
            ["customer_id", "from_stage", "to_stage", "reason", "at", "by_staff_id"],
            select(
                moving.c.id,
                moving.c.stage,
                literal(rule["to"], String(32)),
                literal(reason, String()),
                literal(at, DateTime()),
                literal(db.principal.staff_id, Id),
            ),
        )
    )
    mine = select(sc.c.id, sc.c.customer_id).where(
        sc.c.id > before, sc.c.reason == reason, sc.c.at == at, sc.c.to_stage == rule["to"]
    )
    written = mine.subquery()
    span = connection(db).execute(
        select(func.min(written.c.id), func.max(written.c.id), func.count()).select_from(written)
    ).one()
    if not span[2]:
        return None
    moved_ids = select(sc.c.customer_id).where(
        sc.c.id.between(span[0], span[1]), sc.c.reason == reason
    )
    run(
        update(customers)
        .where(customers.c.id.in_(moved_ids))
        .values(stage=rule["to"], updated_at=at)
    )
    ids = tuple(connection(db).execute(moved_ids.order_by(sc.c.customer_id)).scalars())
    return StageChangeBatch(
        rule=rule["name"],
        reason=reason,
        from_stages=tuple(rule["from"]),
        to_stage=rule["to"],
        at=at,
        first_id=span[0],
        last_id=span[1],
        count=span[2],
        customer_ids=ids,
    )


def _announce(crm: Any, batch: StageChangeBatch) -> None:
    """The hooks of one rule's moves: the batch hook, and ``crm_stage_changed``
    per moved customer for the plugins without the batch hook."""
    crm.hook.crm_stage_changed_batch(crm=crm, batch=batch)
    plugins = crm.plugins
    batch_impls = set(plugins.implementers("crm_stage_changed_batch"))
    single = plugins.implementers("crm_stage_changed")
    only = [n for n in single if n not in batch_impls]
    if not only:
        return
    pm = plugins.pm
    others = [pm.get_plugin(n) for n in single if n not in only]
    caller = pm.subset_hook_caller("crm_stage_changed", remove_plugins=[p for p in others if p])
    sc = stage_changes
    rows = connection(crm.db).execute(
        select(sc).where(
            sc.c.id.between(batch.first_id, batch.last_id), sc.c.reason == batch.reason
        )
    )
    for r in rows.all():
        change = StageChange(
            customer_id=r.customer_id,
            from_stage=r.from_stage,
            to_stage=r.to_stage,
            reason=r.reason,
            at=r.at,
            by_staff_id=r.by_staff_id,
        )
        caller(crm=crm, customer=crm.customers.get(r.customer_id), change=change)


def run(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The job ``core.lifecycle``: apply every rule as of ``at`` in the open
    transaction; the number moved per rule. Running it again for the same
    ``at`` moves no one twice (a moved customer is no longer in a ``from`` stage
    of the rule that moved them)."""
    require_whole_base(crm, "run the lifecycle rules")
    moved: dict[str, int] = {}
    for rule in rules_of(crm):
        batch = _apply_rule(crm, rule, at, checked=True)
        moved[rule["name"]] = 0 if batch is None else batch.count
        if batch is not None:
            _announce(crm, batch)
    return {"moved": moved, "total": sum(moved.values())}


def preview(crm: Any, at: dt.datetime, *, sample: int = 20) -> dict[str, Any]:
    """What ``core.lifecycle`` would move as of ``at``, per rule (the count and
    the first ``sample`` customer ids), without changing anything: the rules
    run in a savepoint that is rolled back, so a later rule sees the moves of
    the earlier ones exactly as the job would. No hook is called."""
    require_whole_base(crm, "preview the lifecycle rules")
    out: list[dict[str, Any]] = []
    savepoint = connection(crm.db).begin_nested()
    try:
        for rule in rules_of(crm):
            batch = _apply_rule(crm, rule, at, checked=False)
            ids = () if batch is None else batch.customer_ids
            out.append(
                {
                    "rule": rule["name"],
                    "from": list(rule["from"]),
                    "to": rule["to"],
                    "reason": reason_of(rule),
                    "count": len(ids),
                    "customers": list(ids[:sample]),
                }
            )
    finally:
        savepoint.rollback()
    return {"at": at.isoformat(), "rules": out, "total": sum(r["count"] for r in out)}
