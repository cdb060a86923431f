"""Orphan customers (孤儿客户): every policy they hold has an agent who
has departed (or no agent), and nobody has been assigned in their place.

The core, on ``crm staff leave``, revokes the leaver's access at once and hands
their customers (ownership) to the heir; policies keep the departed agent, so
the customer shows up here until :func:`reassign` gives them a new agent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select, update

from crm_insurance import NAME, settings
from crm_insurance.tables import policies
from crmcore import AccessDenied, Conflict, ValidationError
from crmcore.schema import live_customers, staff


def _orphan_ids_query() -> Any:
    p = policies
    return (
        select(
            p.c.customer_id,
            func.count().label("policies"),
            func.max(staff.c.departed_at).label("since"),
        )
        .select_from(p.outerjoin(staff, staff.c.id == p.c.agent_id))
        .group_by(p.c.customer_id)
        .having(func.sum(case((staff.c.active.is_(True), 1), else_=0)) == 0)
    )


def list_orphans(crm: Any) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        settings.require(crm, "read", "list orphan customers")
        return _orphans(crm)


def _orphans(crm: Any) -> list[dict[str, Any]]:
    o = _orphan_ids_query().subquery("insurance_orphans")
    rows = crm.db.execute(
        select(
            o.c.customer_id,
            o.c.policies,
            o.c.since,
            live_customers.c.name,
            live_customers.c.external_id,
            live_customers.c.owner_id,
        )
        .select_from(o.join(live_customers, live_customers.c.id == o.c.customer_id))
        .order_by(o.c.customer_id)
    ).all()
    if not rows:
        return []
    p = policies
    agents: dict[int, list[Any]] = {}
    for r in crm.db.execute(
        select(p.c.customer_id, staff.c.id, staff.c.key, staff.c.team, staff.c.departed_at)
        .select_from(p.join(staff, staff.c.id == p.c.agent_id))
        .where(p.c.customer_id.in_([r.customer_id for r in rows]))
        .distinct()
    ):
        agents.setdefault(r.customer_id, []).append(r)
    keys = {s.id: s.key for s in crm.staff.list()}
    out = []
    for r in rows:
        gone = sorted(agents.get(r.customer_id, []), key=lambda a: (a.departed_at, a.id))
        out.append(
            {
                "customer_id": r.customer_id,
                "external_id": r.external_id,
                "name": r.name,
                "policies": int(r.policies),
                "orphan_since": r.since,
                "departed_agents": [a.key for a in gone],
                "team": gone[-1].team if gone else None,
                "current_owner": keys.get(r.owner_id),
            }
        )
    return out


def on_staff_departed(crm: Any, leaver: Any, handover_to: Any) -> None:
    """Mark on the timeline each customer this departure made an orphan."""
    o = _orphan_ids_query().subquery("insurance_orphans")
    p = policies
    mine = select(p.c.customer_id).where(p.c.agent_id == leaver.id).distinct()
    ids = [
        r.customer_id
        for r in crm.db.execute(select(o.c.customer_id).where(o.c.customer_id.in_(mine)))
    ]
    for cid in ids:
        crm.records.add_timeline_entry(
            cid,
            "insurance.orphan",
            f"orphan customer: agent {leaver.key} left and no active agent serves any policy; "
            f"held by {handover_to.key} until reassigned",
            data={"departed_agent": leaver.key, "handover_to": handover_to.key},
            source=NAME,
        )


def reassign(
    crm: Any, refs: list[Any] | None = None, *, to: Any = None, all_: bool = False
) -> list[dict[str, Any]]:
    """Give orphan customers a new serving agent: ``to``, or by default the active
    agent with the fewest customers in the team of the customer's last departed
    agent. Sets the agent of all their policies and the customer's owner, and adds
    a first-visit reminder for the new agent. One transaction: all or nothing."""
    with crm.transaction(command="insurance orphans reassign"):
        settings.require(crm, "write", "reassign orphan customers")
        p = crm.db.principal
        if not (p.unrestricted or p.scope == "team"):
            raise AccessDenied(f"{p.key} may not reassign customers: needs team or company scope")
        if bool(refs) == all_:
            raise ValidationError("reassign: name orphan customers, or give --all (not both)")
        orphans = {o["customer_id"]: o for o in _orphans(crm)}
        if all_:
            chosen = list(orphans.values())
        else:
            chosen = []
            for ref in refs or ():
                c = crm.customers.get(ref)
                if c.id not in orphans:
                    raise Conflict(
                        f"customer {ref} ({c.name}) is not an orphan: "
                        "an active agent serves one of their policies, or they hold none"
                    )
                chosen.append(orphans[c.id])
        roles = set(settings.config(crm)["agent_roles"])
        staff_rows = crm.staff.list(active_only=True)
        target = None
        if to is not None:
            target = settings.staff_by_ref(crm, to, "new agent")
            if not roles & set(target.roles):
                raise ValidationError(
                    f"new agent {target.key!r} has none of the agent roles {sorted(roles)}"
                )
        load = {
            r.owner_id: int(r.n)
            for r in crm.db.execute(
                select(live_customers.c.owner_id, func.count().label("n")).group_by(
                    live_customers.c.owner_id
                )
            )
        }
        now = crm.now()
        due = now + dt.timedelta(days=settings.config(crm)["first_visit_due_days"])
        done = []
        for o in chosen:
            agent = target
            if agent is None:
                team = [s for s in staff_rows if s.team == o["team"] and roles & set(s.roles)]
                if o["team"] is None or not team:
                    raise ValidationError(
                        f"customer {o['external_id'] or o['customer_id']}: no active agent in team "
                        f"{o['team']!r}; give --to STAFF"
                    )
                agent = min(team, key=lambda s: (load.get(s.id, 0), s.id))
            load[agent.id] = load.get(agent.id, 0) + 1
            cid = o["customer_id"]
            moved = crm.db.execute(
                update(policies).where(policies.c.customer_id == cid).values(agent_id=agent.id)
            ).rowcount
            crm.customers.update(cid, owner=agent.id)
            reminder = crm.tickets.add_reminder(
                agent.id,
                f"First visit to orphan customer {o['name']}: you now serve "
                f"{moved} policies (previous agents {', '.join(o['departed_agents']) or 'none'} "
                "left). Visit and ask for the satisfaction SMS.",
                due,
                customer=cid,
                key=f"{NAME}.orphan-first-visit:{cid}:{agent.id}:{now:%Y%m%d}",
                source=NAME,
            )
            crm.records.add_timeline_entry(
                cid,
                "insurance.orphan_reassigned",
                f"orphan customer reassigned to agent {agent.key} ({moved} policies)",
                data={"agent": agent.key, "reminder_id": reminder.id},
                source=NAME,
            )
            done.append(
                {
                    "customer_id": cid,
                    "external_id": o["external_id"],
                    "name": o["name"],
                    "from": o["departed_agents"],
                    "to": agent.key,
                    "policies": moved,
                    "reminder_id": reminder.id,
                    "first_visit_due": due,
                }
            )
        return done
