"""Attacks on the access filter by a rep, from Python and from the CLI: each is
refused or sees only the rep's own customers, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.schema import DropTable

from crmcore import AccessDenied, NotFound
from crmcore.schema import (
    audit_log,
    customers,
    inbound_messages,
    interactions,
    relationships,
    staff,
    ticket_events,
    tickets,
    transactions,
)


@pytest.fixture
def two_reps(crm):
    """zhang and chen are reps; each owns one customer with a ticket and a sale."""
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    mine = crm.customers.add("Mine Zhang", phone="13800000001", owner="zhang")
    theirs = crm.customers.add("Theirs Chen", phone="13800000002", owner="chen")
    for c in (mine, theirs):
        crm.records.add_transaction(c, 1000)
        crm.tickets.open(c, f"ticket of {c.name}")
    crm.messages.receive_sms("13800000002", "call me back")
    crm.customers.add_relationship("account_manager", theirs, to_staff="chen")
    return crm, mine, theirs


def names(rows):
    return sorted(r[0] for r in rows)


def ticket_of(crm, customer):
    with crm.transaction(write=False) as db:
        return db.scalar(sa.select(tickets.c.id).where(tickets.c.customer_id == customer.id))


# -- statement shapes that used to run unscoped ---------------------------------------
def test_union_and_union_all_are_scoped_member_by_member(two_reps):
    crm, _, _ = two_reps
    a = sa.select(customers.c.name).where(customers.c.id > 0)
    b = sa.select(customers.c.name).where(customers.c.name.like("%"))
    with crm.as_("zhang").transaction(write=False) as db:
        assert names(db.all(sa.union(a, b))) == ["Mine Zhang"]
        assert names(db.all(sa.union_all(a, b))) == ["Mine Zhang", "Mine Zhang"]
        assert names(db.all(sa.select(sa.union(a, b).subquery()))) == ["Mine Zhang"]


@pytest.mark.parametrize(
    "shape",
    [
        "lightweight table",
        "textual select",
        "literal column over text",
        "literal column subquery",
        "look-alike table",
        "custom operator",
        "prefix",
        "unknown function",
        "values",
        "lateral",
    ],
)
def test_shapes_the_filter_cannot_scope_are_refused(two_reps, shape):
    crm, _, _ = two_reps
    light = sa.table("customers", sa.column("id"), sa.column("name"))
    twin = sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("name"))
    stmt = {
        "lightweight table": lambda: sa.select(light.c.name),
        "textual select": lambda: sa.text("SELECT name FROM customers").columns(sa.column("name")),
        "literal column over text": lambda: sa.select(sa.literal_column("name")).select_from(
            sa.text("customers")
        ),
        "literal column subquery": lambda: sa.select(
            sa.literal_column("(SELECT group_concat(name) FROM customers)")
        ),
        "look-alike table": lambda: sa.select(twin.c.name),
        "custom operator": lambda: sa.select(customers.c.name).where(
            customers.c.id.op("OR 1=1 OR")(1)
        ),
        "prefix": lambda: sa.select(customers.c.name).prefix_with("/* hint */"),
        "unknown function": lambda: sa.select(sa.func.load_extension("x")),
        "values": lambda: sa.select(sa.values(sa.column("n", sa.Integer), name="v").data([(1,)])),
        "lateral": lambda: sa.select(customers.c.name).join(
            sa.select(tickets.c.id).where(tickets.c.customer_id == customers.c.id).lateral(),
            sa.true(),
        ),
    }[shape]()
    with crm.as_("zhang").transaction(write=False) as db:
        with pytest.raises(AccessDenied, match="zhang"):
            db.all(stmt)


@pytest.mark.parametrize("what", ["ddl text", "drop table", "function call"])
def test_executables_other_than_select_and_dml_are_refused(two_reps, what):
    crm, _, _ = two_reps
    stmt = {
        "ddl text": sa.DDL("DELETE FROM audit_log"),
        "drop table": DropTable(customers),
        "function call": sa.func.count(customers.c.id),
    }[what]
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied, match="not scoped by the access filter"):
            db.execute(stmt)
    with crm.transaction(write=False) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(audit_log)) > 0
        assert db.scalar(sa.select(sa.func.count()).select_from(customers)) == 2


def test_tables_reaching_customers_through_foreign_keys_are_filtered(two_reps):
    crm, mine, _ = two_reps
    with crm.as_("zhang").transaction(write=False) as db:
        events = db.all(sa.select(ticket_events.c.ticket_id))
        rels = db.all(sa.select(relationships.c.from_customer_id))
        with pytest.raises(AccessDenied, match="may not read or write inbound_messages"):
            db.all(sa.select(inbound_messages.c.text))
        with pytest.raises(AccessDenied, match="audit_log"):
            db.all(sa.select(audit_log.c.after))
    assert [e.ticket_id for e in events] == [ticket_of(crm, mine)]
    assert rels == []  # the only relationship links chen to chen's customer


def test_cte_subquery_correlated_and_outer_join_see_only_visible_rows(two_reps):
    crm, _, _ = two_reps
    cte = sa.select(transactions.c.customer_id, transactions.c.amount_cents).cte("spend")
    correlated = (
        sa.select(sa.func.count(tickets.c.id))
        .where(tickets.c.customer_id == customers.c.id)
        .scalar_subquery()
    )
    with crm.as_("zhang").transaction(write=False) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(cte)) == 1
        assert db.all(sa.select(customers.c.name, correlated)) == [("Mine Zhang", 1)]
        outer = db.all(
            sa.select(staff.c.key, customers.c.name)
            .outerjoin(customers, customers.c.owner_id == staff.c.id)
            .order_by(staff.c.key)
        )
        # chen's row stays (staff is not customer data) but without chen's customer
        assert outer == [("chen", None), ("zhang", "Mine Zhang")]
        everyone = db.scalar(
            sa.select(sa.func.count()).select_from(
                sa.select(customers.c.id).union_all(sa.select(tickets.c.customer_id)).subquery()
            )
        )
        assert everyone == 2


# -- writes that used to grant access ------------------------------------------------------
def test_a_rep_cannot_make_themselves_admin(two_reps):
    crm, _, _ = two_reps
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied, match="may not change staff directly"):
            db.execute(sa.update(staff).where(staff.c.key == "zhang").values(roles=["admin"]))
    assert crm.staff.get("zhang").roles == ("rep",)


def test_a_rep_cannot_link_themselves_to_another_reps_customer(two_reps):
    crm, mine, theirs = two_reps
    zhang_id = crm.staff.get("zhang").id
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied):
            db.execute(
                relationships.insert().values(
                    kind="account_manager",
                    from_customer_id=theirs.id,
                    to_staff_id=zhang_id,
                    active=True,
                )
            )
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied, match="to_staff_id"):  # even to a customer of their own
            db.execute(
                relationships.insert().values(
                    kind="agent", from_customer_id=mine.id, to_staff_id=zhang_id, active=True
                )
            )
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied, match="customer they may not see"):
            db.execute(
                relationships.insert().values(
                    kind="household", from_customer_id=mine.id, to_customer_id=theirs.id
                )
            )
    with crm.as_("zhang").transaction() as db:  # taking over chen's link: not in view
        assert db.execute(sa.update(relationships).values(to_staff_id=zhang_id)).rowcount == 0
    with crm.transaction(write=False) as db:
        assert db.all(sa.select(relationships.c.to_staff_id)) == [(crm.staff.get("chen").id,)]
    assert {c.name for c in crm.as_("zhang").customers.list()} == {"Mine Zhang"}


def test_a_rep_cannot_move_a_ticket_to_another_customer_or_take_it_over(two_reps):
    crm, mine, theirs = two_reps
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied, match="tickets.customer_id"):
            db.execute(sa.update(tickets).values(customer_id=theirs.id))
    with crm.as_("zhang").transaction() as db:
        with pytest.raises(AccessDenied, match="tickets.customer_id"):
            db.execute(
                tickets.insert().values(
                    customer_id=mine.id,
                    kind="complaint",
                    workflow="default",
                    state="verify",
                    subject="x",
                    opened_at=crm.now(),
                )
            )
    chen_ticket = ticket_of(crm, theirs)
    with crm.as_("zhang").transaction() as db:  # a ticket event onto chen's ticket
        with pytest.raises(AccessDenied, match="customer they may not see"):
            db.execute(
                ticket_events.insert().values(ticket_id=chen_ticket, to_state="x", at=crm.now())
            )
    with crm.transaction(write=False) as db:
        owners = db.all(sa.select(tickets.c.customer_id).order_by(tickets.c.id))
    assert owners == [(mine.id,), (theirs.id,)]


def test_subqueries_in_written_values_read_only_visible_rows(two_reps):
    crm, mine, _ = two_reps
    names_of_all = sa.select(sa.func.max(customers.c.name)).scalar_subquery()
    with crm.as_("zhang").transaction() as db:
        db.execute(
            interactions.insert().values(
                customer_id=mine.id,
                kind="note",
                text=names_of_all,
                at=crm.now(),
                data={},
                source="core",
            )
        )
        db.execute(sa.update(customers).where(customers.c.id == mine.id).values(name=names_of_all))
    texts = [i.text for i in crm.records.interactions(mine)]
    assert texts == ["Mine Zhang"] and crm.customers.get(mine.id).name == "Mine Zhang"


def test_a_rep_cannot_move_their_own_record_onto_another_reps_customer(two_reps):
    crm, mine, theirs = two_reps
    crm.as_("zhang").records.add_interaction(mine, "note", "my call")
    with crm.as_("zhang").transaction() as db:  # zhang's own interaction (staff_id = zhang)
        with pytest.raises(AccessDenied, match="may not move interactions rows"):
            db.execute(
                sa.update(interactions)
                .where(interactions.c.text == "my call")
                .values(customer_id=theirs.id)
            )
    assert [i.text for i in crm.records.interactions(theirs)] == []


def test_dml_the_filter_cannot_scope_is_refused(two_reps):
    crm, mine, _ = two_reps
    refused = [
        # a multi-table UPDATE: interactions would be an extra, unscoped FROM
        sa.update(customers).where(customers.c.id == interactions.c.customer_id).values(name="x"),
        # DML inside a CTE runs unaudited and unscoped
        sa.select(customers.c.id).add_cte(sa.delete(transactions).cte("gone")),
        # INSERT ... SELECT into customer data
        interactions.insert().from_select(
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
    for stmt in refused:
        with crm.as_("zhang").transaction() as db:
            with pytest.raises(AccessDenied):
                db.execute(stmt)
    with crm.transaction(write=False) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(transactions)) == 2


def test_a_rep_still_does_their_own_work_through_the_services(two_reps):
    crm, mine, theirs = two_reps
    zhang = crm.as_("zhang")
    t = zhang.tickets.open(mine, "call back")
    zhang.tickets.move(t.id, "review", owner="zhang")
    other = zhang.customers.add("Also Zhang's", owner="zhang")
    rel = zhang.customers.add_relationship("household", mine, to_customer=other)
    zhang.customers.end_relationship(rel.id)
    with pytest.raises(NotFound):  # a customer out of view answers like a missing one
        zhang.customers.add_relationship("household", mine, to_customer=theirs)
    with pytest.raises(NotFound):
        zhang.tickets.open(theirs, "snooping")
    assert {c.name for c in zhang.customers.list()} == {"Mine Zhang", "Also Zhang's"}


def test_raw_connection_reads_are_only_yes_or_no(two_reps):
    crm, _, theirs = two_reps
    with crm.as_("zhang").transaction(write=False) as db:
        assert db.exists_globally(customers, phone="+8613800000002") is True
        assert db.count_globally(tickets, customer_id=theirs.id) == 1
        with pytest.raises(AccessDenied, match="inbound_messages"):
            db.count_globally(inbound_messages, channel="sms")
        twin = sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer))
        with pytest.raises(AccessDenied, match="not a table of this CRM"):
            db.exists_globally(twin, id=theirs.id)


# -- configuration is admin-only -------------------------------------------------------------
ESTATE = pytest.mark.crm(plugins=["real_estate"])


def _estate(crm):
    from crm_real_estate import places

    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    crm.staff.add("wang", "Wang", roles=["rep"])
    crm.customers.add("Wu Lei", phone="13900002222", owner="chen", external_id="B-1")
    places.add_project(crm, "JD", "Jade Garden")
    places.add_building(crm, "JD", "A1")
    places.add_unit(crm, "JD/A1", "1202")
    places.add_owner(crm, "JD/A1/1202", "B-1", role="owner")
    places.add_team(crm, "PLB", "plumbing", leader="wang")
    places.cover(crm, "PLB", "plumbing")
    places.cover(crm, "PLB", "waterproofing")


@ESTATE
def test_a_rep_cannot_arrange_a_ticket_of_another_reps_customer_cli(crm, crm_cli):
    """The team attack, end to end: a rep founds a team they lead, makes it cover
    the other rep's building, and waits for a repair request to be dispatched to it."""
    _estate(crm)
    add = crm_cli(
        "--as", "zhang", "real-estate", "team", "add", "EVIL", "--name", "x", "--leader", "zhang"
    )
    assert add.exit_code == 1
    assert "may not change real_estate_teams" in add.stderr and "'configure'" in add.stderr
    assert "Traceback" not in add.stderr and len(add.stderr.strip().splitlines()) == 1
    cover = crm_cli(
        "--as",
        "zhang",
        "real-estate",
        "team",
        "cover",
        "PLB",
        "--category",
        "plumbing",
        "--building",
        "JD/A1",
    )
    assert cover.exit_code == 1 and "real_estate_team_coverage" in cover.stderr
    filed = crm_cli(
        "--as",
        "chen",
        "real-estate",
        "request",
        "open",
        "B-1",
        "--category",
        "plumbing",
        "--channel",
        "phone",
        "--text",
        "pipe leaking",
        "--unit",
        "JD/A1/1202",
        "--json",
    )
    assert filed.exit_code == 0, filed.stderr
    assert filed.json()["team"] == "PLB"
    shown = crm_cli("--as", "zhang", "customer", "show", "B-1", "--json")
    assert shown.exit_code == 1 and "Wu Lei" not in shown.stdout + shown.stderr
    with crm.transaction(write=False) as db:
        assert db.all(sa.select(tickets.c.owner_id)) == [(crm.staff.get("wang").id,)]


@ESTATE
def test_configuration_needs_the_configure_permission(crm_factory):
    from crm_real_estate import places
    from crm_real_estate.tables import projects, teams

    roles = {
        "planner": {"scope": "own", "permissions": ["read", "write", "configure"]},
        "analyst": {"scope": "all", "permissions": ["read", "write"]},
        "rep": {"scope": "own", "permissions": ["read", "write", "pii"]},
        "admin": {
            "scope": "all",
            "permissions": ["read", "write", "pii", "export", "admin", "audit", "configure"],
        },
    }
    crm = crm_factory(plugins=["real_estate"], config={"crm": {"roles": roles}})
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("pat", "Pat", roles=["planner"])
    crm.staff.add("ana", "Ana", roles=["analyst"])
    crm.staff.add("boss", "Boss", roles=["admin"])
    for who in ("zhang", "ana"):
        with pytest.raises(AccessDenied, match="needs the 'configure' permission"):
            places.add_project(crm.as_(who), f"P-{who}", "refused")
        with crm.as_(who).transaction() as db:
            with pytest.raises(AccessDenied, match="configure"):
                db.execute(sa.update(teams).values(leader_id=crm.staff.get(who).id))
    places.add_project(crm.as_("pat"), "PAT", "a planner's project")
    places.add_project(crm.as_("boss"), "BOSS", "an admin's project")
    with crm.transaction(write=False) as db:
        assert sorted(r.code for r in db.all(sa.select(projects.c.code))) == ["BOSS", "PAT"]


# -- whole-base uniqueness checks answer yes or no --------------------------------------------
@pytest.mark.crm(plugins=["utility"])
def test_a_taken_meter_is_found_across_the_whole_base_without_naming_the_holder(crm):
    from crm_utility import accounts

    from crmcore import Conflict

    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    mine = crm.customers.add("Mine Zhang", owner="zhang")
    theirs = crm.customers.add("Theirs Chen", owner="chen")
    point = {"address": "x", "voltage_level": "10kV", "customer_class": "commercial"}
    accounts.add_point(crm, theirs, meter_no="M-CHEN", **point)
    with pytest.raises(Conflict) as taken:  # chen's meter, out of zhang's view
        accounts.add_point(crm.as_("zhang"), mine, meter_no="M-CHEN", **point)
    assert str(taken.value) == "meter 'M-CHEN' is already registered"
    with crm.transaction(write=False) as db:
        assert db.count_globally(_service_points(), meter_no="M-CHEN") == 1


def _service_points():
    from crm_utility.tables import service_points

    return service_points


# -- a stranger's tables -------------------------------------------------------------------
def _stranger(kind=None):
    from crmcore import hookimpl
    from crmcore.schema import NAMING, Id

    meta = sa.MetaData(naming_convention=NAMING)
    info = {} if kind is None else {"crm_kind": kind}
    settings = sa.Table(
        "stranger_settings",
        meta,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("value", sa.String(20)),
        info=info,
    )

    class Stranger:
        @hookimpl
        def crm_tables(self):
            return [settings]

    return Stranger(), settings


def test_a_plugin_table_of_no_declared_kind_is_configuration(crm_factory):
    plugin, settings = _stranger()
    crm = crm_factory(plugins=["stranger"], extra_plugins={"stranger": plugin})
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    with crm.transaction() as db:
        db.execute(settings.insert().values(value="set by the system"))
    with crm.as_("zhang").transaction() as db:
        assert [r.value for r in db.all(sa.select(settings))] == ["set by the system"]
        with pytest.raises(AccessDenied, match="stranger_settings: it is configuration"):
            db.execute(settings.insert().values(value="set by a rep"))


def test_a_plugin_table_of_an_unknown_kind_fails_at_start_up(crm_factory):
    from crmcore import PluginError

    plugin, _ = _stranger(kind="public")
    with pytest.raises(PluginError, match="stranger_settings.*'public'"):
        crm_factory(plugins=["stranger"], extra_plugins={"stranger": plugin})
