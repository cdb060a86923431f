"""Property-based: statements of many SQLAlchemy shapes, run as a rep, never
return or change a row of a customer the rep may not see; shapes the filter
cannot scope are refused.

The expected visibility is computed here, in Python, from what an admin sees:
a customer is the rep's when the rep owns it, is linked to it by an active
customer->staff relationship or owns one of its open tickets; a row is visible
when every customer it references (through any chain of foreign keys) is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import AccessDenied
from crmcore.schema import (
    customers,
    interactions,
    relationships,
    ticket_events,
    tickets,
    transactions,
)
from crmcore.storage._driver import connection

pytestmark = pytest.mark.crm(
    plugins=["real_estate"],
    config={"plugins": {"real_estate": {"incident": {"threshold": 100}}}},  # links made here
)

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Rollback(Exception):
    """Raised to undo a generated write after its effect was measured."""


def _plugin_tables() -> dict[str, sa.Table]:
    from crm_real_estate.tables import requests, unit_owners

    return {"real_estate_requests": requests, "real_estate_unit_owners": unit_owners}


@pytest.fixture
def world(crm):
    """Three reps; zhang owns two customers, is account manager of one of chen's
    and owns an open ticket of one of wang's; everything else is others'."""
    from crm_real_estate import places
    from crm_real_estate import requests as req

    for key in ("zhang", "chen", "wang"):
        crm.staff.add(key, key.title(), roles=["rep"])
    cs = {}
    for i, owner in enumerate(["zhang", "zhang", "chen", "chen", "wang", "wang"]):
        cs[i] = crm.customers.add(f"{owner}-{i}", phone=f"1380000{i:04d}", owner=owner)
    places.add_project(crm, "JD", "Jade Garden")
    places.add_building(crm, "JD", "A1")
    places.add_team(crm, "PLB", "plumbing", leader="wang")
    places.cover(crm, "PLB", "plumbing")
    for i, c in cs.items():
        crm.records.add_transaction(c, 100 * (i + 1))
        crm.records.add_interaction(c, "note", f"note {i}")
        places.add_unit(crm, "JD/A1", f"{i:04d}")
        places.add_owner(crm, f"JD/A1/{i:04d}", c, role="owner")
        req.open_request(
            crm, c, unit=f"JD/A1/{i:04d}", category="plumbing", channel="phone", text="leak"
        )
        t = crm.tickets.open(c, f"ticket {i}")
        crm.tickets.move(t.id, "review")
    crm.customers.add_relationship("account_manager", cs[2], to_staff="zhang")
    crm.tickets.open(cs[4], "zhang's work", owner="zhang")
    crm.customers.add_relationship("household", cs[0], to_customer=cs[1])  # both zhang's
    crm.customers.add_relationship("household", cs[0], to_customer=cs[3])  # to someone else's
    crm.customers.add_relationship("referral", cs[5], to_customer=cs[2])
    from crm_real_estate.tables import buildings, incidents

    with crm.transaction() as db:  # an open incident that generated writes link requests to
        db.execute(
            incidents.insert().values(
                building_id=db.scalar(sa.select(buildings.c.id)),
                category="plumbing",
                status="open",
                open_key="test",
                opened_at=crm.now(),
            )
        )
    seen = visible_ids(crm)  # every generated write is rolled back: computed once
    assert seen["customers"] == {cs[i].id for i in (0, 1, 2, 4)}
    return crm, seen


def _all_rows(conn: Any, table: sa.Table) -> dict[int, dict[str, Any]]:
    return {r.id: dict(r._mapping) for r in conn.execute(sa.select(table))}


def visible_ids(crm: Any, rep: str = "zhang") -> dict[str, set[int]]:
    """Per table: the ids of the rows ``rep`` may see, derived from an admin's view."""
    tables = {
        t.name: t
        for t in (customers, transactions, tickets, ticket_events, interactions, relationships)
    } | _plugin_tables()
    with crm.transaction(write=False) as db:
        rows = {name: _all_rows(connection(db), t) for name, t in tables.items()}
        me = crm.staff.get(rep).id
    rels = rows["relationships"].values()
    mine = {c["id"] for c in rows["customers"].values() if c["owner_id"] == me}
    mine |= {r["from_customer_id"] for r in rels if r["to_staff_id"] == me and r["active"]}
    mine |= {
        t["customer_id"]
        for t in rows["tickets"].values()
        if t["owner_id"] == me and t["closed_at"] is None
    }
    seen_tickets = {i for i, t in rows["tickets"].items() if t["customer_id"] in mine}
    out = {
        "customers": mine,
        "tickets": seen_tickets,
        "ticket_events": {
            i for i, e in rows["ticket_events"].items() if e["ticket_id"] in seen_tickets
        },
        "relationships": {
            i
            for i, r in rows["relationships"].items()
            if r["from_customer_id"] in mine
            and (r["to_customer_id"] is None or r["to_customer_id"] in mine)
        },
        "real_estate_requests": {
            i
            for i, r in rows["real_estate_requests"].items()
            if r["customer_id"] in mine and r["ticket_id"] in seen_tickets
        },
    }
    for name in ("transactions", "interactions", "real_estate_unit_owners"):
        out[name] = {i for i, r in rows[name].items() if r["customer_id"] in mine}
    return out


def table_names() -> list[str]:
    return [
        "customers",
        "transactions",
        "tickets",
        "ticket_events",
        "interactions",
        "relationships",
        *_plugin_tables(),
    ]


def table_of(name: str) -> sa.Table:
    core = {
        t.name: t
        for t in (customers, transactions, tickets, ticket_events, interactions, relationships)
    }
    return core[name] if name in core else _plugin_tables()[name]


# -- the shapes ------------------------------------------------------------------------------
def _customer_col(t: Any) -> Any:
    if "customer_id" in t.c:
        return t.c.customer_id
    if "from_customer_id" in t.c:
        return t.c.from_customer_id
    if "ticket_id" in t.c:
        return None
    return t.c.id  # customers


@st.composite
def row_shapes(draw: Any, name: str, depth: int = 0) -> tuple[Any, bool]:
    """(a SELECT of one column ``rid`` = ids of ``name``'s rows, exact) where
    exact means the rep must get exactly the admin's rows it may see."""
    base = table_of(name)
    t = base.alias() if draw(st.booleans()) else base
    stmt = sa.select(t.c.id.label("rid"))
    exact = True
    cust = _customer_col(t)
    people = customers.alias() if base is customers else customers  # no bare self-join
    kind = draw(
        st.sampled_from(
            [
                "plain",
                "where",
                "join",
                "outerjoin",
                "join_tickets",
                "exists",
                "scalar",
                "in_self",
                "group",
                "limit",
            ]
        )
    )
    if kind == "where":
        stmt = stmt.where(t.c.id >= draw(st.integers(0, 8)))
    elif kind == "join" and cust is not None:
        stmt = stmt.join(people, people.c.id == cust)
    elif kind == "outerjoin" and cust is not None:
        stmt = sa.select(t.c.id.label("rid"), people.c.name).outerjoin(people, people.c.id == cust)
        stmt = sa.select(stmt.subquery().c.rid)
    elif kind == "join_tickets" and cust is not None:
        other = tickets.alias()
        stmt = stmt.join(other, other.c.customer_id == cust).distinct()
        exact = False  # rows without a ticket drop out for admin and rep alike
    elif kind == "exists" and cust is not None:
        stmt = stmt.where(sa.exists(sa.select(people.c.id).where(people.c.id == cust)))
    elif kind == "scalar":
        inner = base.alias()
        stmt = stmt.where(
            t.c.id
            == sa.select(sa.func.max(inner.c.id)).where(inner.c.id == t.c.id).scalar_subquery()
        )
    elif kind == "in_self":
        inner = base.alias()
        stmt = stmt.where(t.c.id.in_(sa.select(inner.c.id)))
    elif kind == "group":
        stmt = stmt.group_by(t.c.id).having(sa.func.count() > 0)
    elif kind == "limit":
        stmt = stmt.order_by(t.c.id.desc()).limit(draw(st.integers(1, 5)))
        exact = False
    wrap = draw(st.sampled_from(["none", "subquery", "cte", "compound"] if depth < 2 else ["none"]))
    if wrap == "subquery":
        stmt = sa.select(stmt.subquery().c.rid)
    elif wrap == "cte":
        stmt = sa.select(stmt.cte().c.rid)
    elif wrap == "compound":
        other, other_exact = draw(row_shapes(name, depth + 1))
        op = draw(st.sampled_from(["union", "union_all", "intersect", "except_"]))
        # members as plain SELECTs: SQLite refuses a parenthesised member (LIMIT)
        members = [sa.select(m.subquery().c.rid) for m in (stmt, other)]
        compound = getattr(sa, op)(*members)
        stmt = sa.select(compound.subquery().c.rid)
        exact = exact and other_exact and op in ("union", "union_all")
    return stmt, exact


def _run_ids(db: Any, stmt: Any) -> list[int]:
    return [r[0] for r in db.execute(stmt)]


@given(data=st.data())
@SETTINGS
def test_generated_reads_return_only_visible_rows(world, data):
    crm, seen = world
    name = data.draw(st.sampled_from(table_names()))
    stmt, exact = data.draw(row_shapes(name))
    with crm.as_("zhang").transaction(write=False) as db:
        got = _run_ids(db, stmt)
    assert set(got) <= seen[name], f"{name}: {set(got) - seen[name]} leaked"
    if exact:
        with crm.transaction(write=False) as db:
            admin = _run_ids(db, stmt)
        assert sorted(got) == sorted(i for i in admin if i in seen[name])


@given(data=st.data())
@SETTINGS
def test_generated_aggregates_count_only_visible_rows(world, data):
    crm, seen = world
    name = data.draw(st.sampled_from(table_names()))
    inner, exact = data.draw(row_shapes(name))
    sub = inner.subquery()
    with crm.as_("zhang").transaction(write=False) as db:
        rows = _run_ids(db, inner)
        distinct = db.scalar(sa.select(sa.func.count(sa.distinct(sub.c.rid))))
        top = db.scalar(sa.select(sa.func.max(sub.c.rid)))
        nested = db.scalar(sa.select(sa.select(sa.func.count()).select_from(sub).scalar_subquery()))
    assert distinct == len(set(rows)) and set(rows) <= seen[name]
    assert top is None or top in seen[name]
    assert nested == len(rows)
    if exact:
        with crm.transaction(write=False) as db:
            admin = set(_run_ids(db, inner))
        assert distinct == len(admin & seen[name])


HARMLESS = {
    "customers": ("name", "renamed"),
    "transactions": ("channel", "till-9"),
    "tickets": ("subject", "changed"),
    "ticket_events": ("note", "changed"),
    "interactions": ("text", "changed"),
    "relationships": ("note", "changed"),
    "real_estate_requests": ("description", "changed"),
    "real_estate_unit_owners": ("role", "tenant"),
}
DELETABLE = ["ticket_events", "interactions", "transactions"]


@given(data=st.data())
@SETTINGS
def test_generated_writes_change_only_visible_rows(world, data):
    crm, seen = world
    op = data.draw(st.sampled_from(["update", "update_in", "delete", "delete_in"]))
    name = data.draw(st.sampled_from(DELETABLE if op.startswith("delete") else table_names()))
    t = table_of(name)
    if op.endswith("_in"):
        inner, _ = data.draw(row_shapes(name))
        where: Any = t.c.id.in_(sa.select(inner.subquery().c.rid))
    else:
        where = t.c.id >= data.draw(st.integers(0, 8))
    if op.startswith("update"):
        col, value = HARMLESS[name]
        stmt: Any = sa.update(t).where(where).values({col: value})
    else:
        stmt = sa.delete(t).where(where)
    with pytest.raises(Rollback):
        with crm.as_("zhang").transaction() as db:
            before = _all_rows(connection(db), t)
            try:
                db.execute(stmt)
                refused = False
            except AccessDenied:  # e.g. it would touch a customer->staff link
                refused = True
            after = _all_rows(connection(db), t)
            raise Rollback
    changed = {i for i, row in before.items() if after.get(i) != row}
    assert changed <= seen[name], f"{name}: changed rows {changed - seen[name]} not in view"
    assert not (refused and changed), "a refused write left changes behind"


@given(data=st.data())
@SETTINGS
def test_generated_insert_from_select_copies_only_visible_rows(world, data):
    from crm_real_estate.tables import incident_requests, incidents

    crm, seen = world
    inner, _ = data.draw(row_shapes("real_estate_requests"))
    sub = inner.subquery()
    with pytest.raises(Rollback):
        with crm.as_("zhang").transaction() as db:
            incident = db.scalar(sa.select(incidents.c.id).where(incidents.c.open_key == "test"))
            db.execute(
                incident_requests.insert().from_select(
                    ["incident_id", "request_id", "linked_at"],
                    sa.select(sa.literal(incident), sub.c.rid, sa.literal(crm.now()))
                    .distinct()
                    .where(sub.c.rid.is_not(None)),
                )
            )
            linked = {
                r[0]
                for r in connection(db).execute(
                    sa.select(incident_requests.c.request_id).where(
                        incident_requests.c.incident_id == incident
                    )
                )
            }
            raise Rollback
    assert linked <= seen["real_estate_requests"]


REFUSED: list[Callable[[], Any]] = [
    lambda: sa.text("SELECT id FROM customers"),
    lambda: sa.text("SELECT id FROM customers").columns(sa.column("id")),
    lambda: sa.select(sa.table("customers", sa.column("id")).c.id),
    lambda: sa.select(sa.literal_column("id")).select_from(sa.text("customers")),
    lambda: sa.select(customers.c.id).where(sa.text("1=1")),
    lambda: sa.select(customers.c.id).where(sa.literal_column("1=1 OR 1")),
    lambda: sa.select(customers.c.id).join(
        sa.select(tickets.c.id).where(tickets.c.customer_id == customers.c.id).lateral(),
        sa.true(),
    ),
    lambda: sa.select(sa.values(sa.column("id", sa.Integer), name="v").data([(1,)])),
    lambda: sa.select(customers.c.id).suffix_with("-- x"),
    lambda: sa.select(sa.func.pg_read_file("/etc/passwd")),
    lambda: sa.DDL("DROP TABLE customers"),
    lambda: sa.select(customers.c.id).add_cte(sa.update(customers).values(name="x").cte()),
    lambda: sa.update(customers).where(customers.c.id == tickets.c.customer_id).values(name="x"),
    lambda: interactions.insert().from_select(
        ["customer_id", "kind", "text", "at", "data", "source"],
        sa.select(
            customers.c.id,
            sa.literal("note"),
            sa.literal(""),
            customers.c.created_at,
            sa.literal("{}"),
            sa.literal("x"),
        ),
    ),
]


@given(data=st.data())
@SETTINGS
def test_shapes_that_cannot_be_scoped_are_refused(world, data):
    crm, _ = world
    make = data.draw(st.sampled_from(REFUSED))
    wrap = data.draw(st.booleans())
    stmt = make()
    if wrap and isinstance(stmt, sa.Select):
        stmt = sa.union_all(sa.select(customers.c.id), stmt)
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied):
            db.execute(stmt)
