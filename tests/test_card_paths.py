"""The customer card and the till's lookup: one result and one refusal, whatever the
path (by reference or by phone, outside or inside an open operation) and however the
principal is given (a staff key or a resolved Principal)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import AccessDenied, CRMError, NotFound, hookimpl
from crmcore.access import visible_customer_check
from crmcore.schema import tickets
from crmcore.storage._driver import connection

STAFF = {  # key: (role, team)
    "zhang": ("rep", "north"),
    "wang": ("rep", "north"),
    "chen": ("rep", "south"),
    "li": ("supervisor", "north"),
    "solo": ("supervisor", None),  # a team scope without a team: their own book only
}
KEYS = sorted(STAFF)

# one customer: an owner (or none), links to staff (active or ended), tickets (open or
# closed, owned by someone), purchases and stored labels
customer_shapes = st.fixed_dictionaries(
    {
        "owner": st.sampled_from([None, *KEYS]),
        "links": st.lists(
            st.tuples(st.sampled_from(KEYS), st.booleans()), max_size=2, unique_by=lambda t: t[0]
        ),
        "tickets": st.lists(st.tuples(st.sampled_from([None, *KEYS]), st.booleans()), max_size=2),
        "purchases": st.lists(st.integers(0, 10_000), max_size=3),
        "labels": st.dictionaries(st.sampled_from(["abc", "tier"]), st.sampled_from("ABC")),
    }
)


@pytest.fixture
def shop(crm):
    for key, (role, team) in STAFF.items():
        crm.staff.add(key, key.title(), roles=[role], team=team)
    return crm


_phones = itertools.count(13_700_000_000)


def _add(crm, shape):
    """A customer of ``shape`` with a new phone number; returns (customer, phone)."""
    phone = str(next(_phones))
    c = crm.customers.add("Kim", phone=phone, owner=shape["owner"])
    for staff_key, active in shape["links"]:
        rel = crm.customers.add_relationship("account_manager", c, to_staff=staff_key)
        if not active:
            crm.customers.end_relationship(rel.id)
    for owner, open_ in shape["tickets"]:
        t = crm.tickets.open(c, "a question", owner=owner)
        if not open_:
            with crm.transaction():
                crm.db.execute(
                    sa.update(tickets).where(tickets.c.id == t.id).values(closed_at=crm.now())
                )
    for day, cents in enumerate(shape["purchases"], start=1):
        crm.records.add_transaction(c, cents, occurred_at=dt.datetime(2025, 6, day, 10))
    for name, value in shape["labels"].items():
        crm.customers.set_label(c, name, value)
    return c, phone


def _answer(call):
    """What a call gave: ("card", the card) or ("refused", error class, message)."""
    try:
        return ("card", call())
    except CRMError as e:
        return ("refused", type(e), str(e))


def _paths(crm, as_key, as_principal, c, phone):
    """Every way to read the card of ``c``: key -> answer."""

    def inside(who):
        with who.transaction(write=False):
            return who.records.till_lookup(phone)

    out = {}
    for how, who in (("key", as_key), ("principal", as_principal)):
        out[f"till/{how}"] = _answer(lambda who=who: who.records.till_lookup(phone))
        out[f"till-in-operation/{how}"] = _answer(lambda who=who: inside(who))
        out[f"card-by-phone/{how}"] = _answer(lambda who=who: who.records.card(phone=phone))
    out["card-by-ref"] = _answer(lambda: as_key.records.card(c.id))
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=customer_shapes, who=st.sampled_from(KEYS))
def test_every_path_gives_the_same_card_or_the_same_refusal(shop, shape, who):
    crm = shop
    c, phone = _add(crm, shape)
    as_key = crm.as_(who)
    as_principal = crm.as_(as_key.staff.acting_principal())
    visible = c.id in {x.id for x in as_key.customers.list(limit=10_000)}  # the access filter
    got = _paths(crm, as_key, as_principal, c, phone)
    ref = got.pop("card-by-ref")
    if visible:
        full = crm.records.card(c)  # the system's card: nothing hidden, nothing different
        assert ref == ("card", full)
        assert all(answer == ("card", full) for answer in got.values()), got
        assert full["customer"].id == c.id and full["labels"] == shape["labels"]
        assert [t["amount_cents"] for t in full["transactions"]] == shape["purchases"][::-1]
    else:
        assert ref == ("refused", NotFound, f"customer {c.id!r} not found")
        refusal = ("refused", NotFound, f"no customer with phone {phone!r}")
        assert all(answer == refusal for answer in got.values()), got
        # exactly as a number nobody has
        unknown = "13999999999"
        assert _answer(lambda: as_key.records.till_lookup(unknown)) == (
            "refused",
            NotFound,
            f"no customer with phone {unknown!r}",
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=customer_shapes, who=st.sampled_from(KEYS))
def test_the_point_check_agrees_with_the_access_filter(shop, shape, who):
    crm = shop
    c, _ = _add(crm, shape)
    principal = crm.as_(who).staff.acting_principal()
    stmt, params = visible_customer_check(principal)
    with crm.transaction(write=False):
        seen = connection(crm.db).execute(stmt, {**params, "cid": c.id}).first() is not None
    assert seen == (c.id in {x.id for x in crm.as_(who).customers.list(limit=10_000)})


def test_a_reps_card_of_a_hidden_customer_is_refused_the_same_way_on_every_path(shop):
    crm = shop
    theirs, phone = _add(
        crm, {"owner": "chen", "links": [], "tickets": [], "purchases": [100], "labels": {}}
    )
    zhang = crm.as_("zhang")
    got = _paths(crm, zhang, crm.as_(zhang.staff.acting_principal()), theirs, phone)
    assert got.pop("card-by-ref") == ("refused", NotFound, f"customer {theirs.id!r} not found")
    assert set(got.values()) == {("refused", NotFound, f"no customer with phone {phone!r}")}


def test_a_departed_member_is_refused_on_every_path(shop):
    crm = shop
    c, phone = _add(
        crm, {"owner": "zhang", "links": [], "tickets": [], "purchases": [], "labels": {}}
    )
    crm.staff.leave("zhang", handover_to="wang")
    zhang = crm.as_("zhang")
    got = _paths(crm, zhang, crm.as_(zhang.staff.acting_principal()), c, phone)
    line = "zhang has departed and may not see or change customers"
    assert set(got.values()) == {("refused", AccessDenied, line)}


def test_the_principal_is_resolved_once_per_crm(shop, monkeypatch):
    """A staff key's row is read at the CRM's first operation, not at every card."""
    crm = shop
    c, phone = _add(
        crm, {"owner": "zhang", "links": [], "tickets": [], "purchases": [5], "labels": {}}
    )
    zhang = crm.as_("zhang")
    reads: list[str] = []

    @sa.event.listens_for(crm.engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *args):
        if "FROM staff" in statement and "WHERE staff." in statement and "key" in statement:
            reads.append(statement)

    try:
        for _ in range(3):
            zhang.records.till_lookup(phone)
            zhang.records.card(c)
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", spy)
    assert len(reads) == 1


def test_the_point_check_follows_indexes(shop):
    """On SQLite: the visibility check of one customer searches indexes, never scans."""
    crm = shop
    if crm.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    for who in ("zhang", "li"):  # own and team scope
        stmt, params = visible_customer_check(crm.as_(who).staff.acting_principal())
        with crm.transaction(write=False):
            compiled = stmt.compile(connection(crm.db))
            args = {**params, "cid": 1}
            plan = connection(crm.db).connection.driver_connection.execute(
                "EXPLAIN QUERY PLAN " + compiled.string, [args[k] for k in compiled.positiontup]
            ).fetchall()
        steps = [row[-1] for row in plan]
        assert not [s for s in steps if s.startswith("SCAN")], steps
        assert any("relationships USING INDEX" in s for s in steps), steps


class Live:
    @hookimpl
    def crm_classify_customer(self, crm, customer):
        return {"live.grade": "gold"}


def test_the_till_has_the_stored_labels_and_the_card_the_live_ones_too(crm_factory):
    crm = crm_factory(plugins=["live"], extra_plugins={"live": Live()})
    c = crm.customers.add("Ann", phone="13800000001")
    crm.customers.set_label(c, "tier", "silver")
    till = crm.records.till_lookup("13800000001")
    card = crm.records.card(phone="13800000001")
    assert till["labels"] == {"tier": "silver"}
    assert card["labels"] == {"tier": "silver", "live.grade": "gold"}
    assert {k: v for k, v in card.items() if k != "labels"} == {
        k: v for k, v in till.items() if k != "labels"
    }


def test_crm_customer_till_prints_the_tills_card(crm_cli, crm):
    c = crm.customers.add("Ann", phone="13800000001", external_id="A1")
    crm.records.add_transaction(c, 1999, occurred_at=dt.datetime(2025, 6, 1, 10), channel="store")
    crm.customers.set_label(c, "tier", "gold")
    shown = crm_cli("customer", "till", "138 0000 0001", "--json")
    assert shown.exit_code == 0, shown
    data = shown.json()
    assert (data["id"], data["labels"], data["stats"]["tx_count"]) == (c.id, {"tier": "gold"}, 1)
    assert data["recent_transactions"][0]["amount_cents"] == 1999
    text = crm_cli("customer", "till", "13800000001")
    assert "labels: tier=gold" in text.stdout and "19.99  store" in text.stdout
    missing = crm_cli("customer", "till", "13900000000")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: no customer with phone '13900000000'"
