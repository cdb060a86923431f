"""Who sees what: reps their own, supervisors their team's, admins all; departed nobody."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied, Conflict, CRMError, NotFound, hookimpl
from crmcore.schema import customers, transactions


@pytest.fixture
def shop(crm):
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    zc = crm.customers.add("Z's customer", phone="13800000001", owner="zhang")
    cc = crm.customers.add("C's customer", phone="13800000002", owner="chen")
    wc = crm.customers.add("W's customer", phone="13800000003", owner="wang")
    for c in (zc, cc, wc):
        crm.records.add_transaction(c, 1000)
    return crm, {"zhang": zc, "chen": cc, "wang": wc}


def visible(crm, who):
    return {c.name for c in crm.as_(who).customers.list()}


def test_rep_sees_only_own_supervisor_team_admin_all(shop):
    crm, _ = shop
    assert visible(crm, "zhang") == {"Z's customer"}
    assert visible(crm, "li") == {"Z's customer", "C's customer"}
    assert visible(crm, "audit") == {"Z's customer", "C's customer", "W's customer"}


def test_rep_cannot_read_or_write_another_reps_customer(shop):
    crm, cs = shop
    zhang = crm.as_("zhang")
    with pytest.raises(NotFound, match=rf"^customer {cs['chen'].id} not found$"):
        zhang.customers.get(cs["chen"].id)
    with pytest.raises(NotFound):
        zhang.records.add_interaction(cs["chen"].id, "note", "snooping")
    with pytest.raises(NotFound):
        zhang.records.timeline(cs["chen"].id)
    assert crm.records.interactions(cs["chen"]) == []


def _refusal(call, *args):
    """(error class, message) of a refused ``call(*args)``."""
    with pytest.raises(CRMError) as got:
        call(*args)
    return type(got.value), str(got.value)


def test_a_hidden_customer_answers_exactly_like_a_missing_one(shop):
    crm, cs = shop
    hidden = cs["chen"]
    crm.customers.update(hidden, external_id="B-1")
    zhang = crm.as_("zhang")
    # the same reference text, once for a customer that exists (hidden) and once for none
    for exists, missing in (("B-1", "B-404"), (str(hidden.id), "9999"), (hidden.id, 9999)):
        for call in (
            lambda r: zhang.customers.get(r),
            lambda r: zhang.records.add_interaction(r, "note", "x"),
            lambda r: zhang.records.timeline(r),
            lambda r: zhang.customers.update(r, name="x"),
            lambda r: zhang.records.add_transaction(r, 100),
            lambda r: zhang.records.add_timeline_entry(r, "note", "x"),
            lambda r: zhang.tickets.open(r, "x"),
            lambda r: zhang.records.card(r),
        ):
            seen_kind, seen_text = _refusal(call, exists)
            none_kind, none_text = _refusal(call, missing)
            assert seen_kind is none_kind is NotFound
            assert seen_text == none_text.replace(repr(missing), repr(exists))


def test_a_hidden_customers_phone_answers_like_an_unknown_number(shop):
    crm, _ = shop
    zhang = crm.as_("zhang")
    assert _refusal(lambda: zhang.records.card(phone="13800000002")) == (
        NotFound,
        "no customer with phone '13800000002'",
    )
    assert _refusal(lambda: zhang.records.card(phone="13800000099"))[0] is NotFound


def test_an_insert_for_a_hidden_customer_id_is_not_found_like_a_missing_id(shop):
    crm, cs = shop
    from crmcore.schema import interactions

    for cid in (cs["chen"].id, 9999):
        with crm.as_("zhang").transaction() as db:
            with pytest.raises(NotFound, match=rf"^customer {cid} not found$"):
                db.execute(
                    interactions.insert().values(
                        customer_id=cid, kind="note", text="x", at=crm.now()
                    )
                )


def test_duplicate_contact_of_a_hidden_customer_does_not_name_it(shop):
    crm, cs = shop
    zhang = crm.as_("zhang")
    with pytest.raises(Conflict) as got:
        zhang.customers.add("copy", phone="13800000002", owner="zhang")
    assert str(got.value) == "phone +8613800000002 is already registered"
    with pytest.raises(Conflict) as got:
        zhang.customers.add_contact_point(cs["zhang"], "phone", "13800000002")
    assert str(got.value) == "phone +8613800000002 is already registered"
    with pytest.raises(Conflict, match="already registered"):
        zhang.customers.update(cs["zhang"], phone="13800000002")
    # a customer the rep may see is still named, so they can act on it
    own = zhang.customers.add("again", phone="13800000001")
    assert own.id == cs["zhang"].id


def test_another_customers_transaction_id_is_refused_and_not_shown(shop):
    crm, cs = shop
    crm.records.add_transaction(cs["chen"], 777, external_id="T-1")
    zhang = crm.as_("zhang")
    with pytest.raises(Conflict) as got:
        zhang.records.add_transaction(cs["zhang"], 100, external_id="T-1")
    assert "777" not in str(got.value) and str(cs["chen"].id) not in str(got.value)
    again = crm.records.add_transaction(cs["chen"], 777, external_id="T-1")  # a true repeat
    assert again.amount_cents == 777
    assert len(crm.records.transactions(cs["zhang"])) == 1


def test_relationships_to_a_hidden_customer_are_not_listed_or_ended(shop):
    crm, cs = shop
    rel = crm.customers.add_relationship("referred", cs["chen"], to_customer=cs["zhang"])
    zhang = crm.as_("zhang")
    assert zhang.customers.relationships(cs["zhang"]) == []
    assert [r.id for r in crm.customers.relationships(cs["zhang"])] == [rel.id]
    assert _refusal(lambda: zhang.customers.end_relationship(rel.id)) == (
        NotFound,
        f"active relationship {rel.id} not found",
    )
    assert _refusal(lambda: zhang.customers.end_relationship(9999)) == (
        NotFound,
        "active relationship 9999 not found",
    )
    assert crm.customers.relationships(cs["zhang"])[0].active


def test_cli_hidden_and_missing_customer_same_line_and_exit(shop, crm_cli):
    crm, cs = shop
    crm.customers.update(cs["chen"], external_id="B-1")
    hidden = crm_cli("--as", "zhang", "customer", "show", "B-1")
    missing = crm_cli("--as", "zhang", "customer", "show", "B-2")
    assert hidden.exit_code == missing.exit_code == 1
    assert hidden.stderr.strip() == "error: customer 'B-1' not found"
    assert missing.stderr.strip() == "error: customer 'B-2' not found"
    assert str(cs["chen"].id) not in hidden.stdout + hidden.stderr


def test_relationship_to_staff_grants_access(shop):
    crm, cs = shop
    crm.customers.add_relationship("account_manager", cs["wang"], to_staff="zhang")
    assert "W's customer" in visible(crm, "zhang")


def test_filter_applies_to_any_statement_touching_customer_data(shop):
    crm, cs = shop
    zhang = crm.as_("zhang")
    with zhang.transaction(write=False):
        total = zhang.db.scalar(sa.select(sa.func.sum(transactions.c.amount_cents)))
        joined = zhang.db.all(
            sa.select(customers.c.name).join(
                transactions, transactions.c.customer_id == customers.c.id
            )
        )
        nested = zhang.db.scalar(
            sa.select(sa.func.count()).select_from(sa.select(transactions.c.customer_id).subquery())
        )
    assert total == 1000 and [r.name for r in joined] == ["Z's customer"] and nested == 1


def test_raw_sql_needs_an_unrestricted_principal(shop):
    crm, _ = shop
    with crm.as_("zhang").transaction(write=False) as db:
        with pytest.raises(AccessDenied, match="raw SQL"):
            db.execute("SELECT * FROM customers")
        with pytest.raises(AccessDenied, match="raw SQL"):  # the bulk paths' driver-level SQL
            db.driver_query("SELECT * FROM customers")


def test_update_through_the_query_layer_cannot_touch_invisible_rows(shop):
    crm, cs = shop
    zhang = crm.as_("zhang")
    with zhang.transaction() as db:
        n = db.execute(sa.update(customers).values(name="hijacked")).rowcount
    assert n == 1
    assert crm.customers.get(cs["chen"].id).name == "C's customer"


def test_plugin_listing_is_filtered_too(crm_factory):
    class Report:
        @hookimpl
        def crm_timeline_sources(self):
            return []

    crm = crm_factory(plugins=["report"], extra_plugins={"report": Report()})
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    crm.customers.add("mine", owner="zhang")
    crm.customers.add("theirs", owner="chen")
    with crm.as_("zhang").transaction(write=False) as db:  # what a plugin's report would run
        names = [r.name for r in db.execute(sa.select(customers.c.name))]
    assert names == ["mine"]


def test_auditor_cannot_write_and_sees_masked_phones(shop, crm_cli):
    crm, cs = shop
    with pytest.raises(AccessDenied, match="lacks the 'write' permission"):
        crm.as_("audit").records.add_interaction(cs["zhang"], "note", "x")
    result = crm_cli("--as", "audit", "customer", "show", str(cs["zhang"].id), "--json")
    assert result.json()["phone"] == "+86138****0001"
    result = crm_cli("--as", "zhang", "customer", "show", str(cs["zhang"].id), "--json")
    assert result.json()["phone"] == "+8613800000001"


def test_departed_staff_lose_access_at_once_and_customers_move(shop):
    crm, cs = shop
    zhang = crm.as_("zhang")
    crm.tickets.add_reminder("zhang", "call back", crm.now(), customer=cs["zhang"])
    crm.tickets.open(cs["zhang"], "complaint")
    result = crm.staff.leave("zhang", handover_to="chen")
    assert result["moved"] == {"customers": 1, "tickets": 1, "reminders": 1, "relationships": 0}
    assert zhang.customers.list() == []
    with pytest.raises(AccessDenied, match="zhang has departed"):
        zhang.customers.add("new one")
    assert visible(crm, "chen") == {"Z's customer", "C's customer"}
    assert crm.tickets.due_reminders(staff="chen")[0].text == "call back"


def test_leave_without_handover_goes_to_the_supervisor(shop):
    crm, _ = shop
    assert crm.staff.leave("zhang")["handover_to"] == "li"


def test_leave_with_nobody_to_take_over_is_refused(shop):
    crm, _ = shop
    from crmcore import ValidationError

    with pytest.raises(ValidationError, match="nobody to hand"):
        crm.staff.leave("audit")


def test_only_admins_add_staff(shop):
    crm, _ = shop
    with pytest.raises(AccessDenied, match="needs the 'admin' permission"):
        crm.as_("li").staff.add("x", "X")


def test_unknown_principal_is_refused(crm):
    with pytest.raises(AccessDenied, match="unknown staff member 'ghost'"):
        crm.as_("ghost").customers.list()


def test_departed_staff_see_nothing_even_rows_assigned_to_them(shop):
    crm, cs = shop
    crm.records.add_interaction(cs["zhang"], "call", "called", staff="zhang")
    crm.staff.leave("zhang", handover_to="chen")
    from crmcore.schema import interactions

    with crm.as_("zhang").transaction(write=False) as db:
        assert db.all(sa.select(interactions)) == []


def test_inbound_sms_is_routed_with_the_whole_base_in_view(crm_factory):
    seen = []

    class Router:
        @hookimpl
        def crm_route_inbound(self, crm, message):
            seen.append([c.name for c in crm.customers.list()])

    crm = crm_factory(plugins=["router"], extra_plugins={"router": Router()})
    crm.staff.add("desk", "Desk", roles=["admin"])
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.customers.add("someone else's", phone="13800000009", owner="zhang")
    crm.as_("desk").messages.receive_sms("13800000009", "5")
    assert seen == [["someone else's"]]


def test_staff_entity_names_the_supervisor(shop):
    crm, _ = shop
    assert crm.staff.get("zhang").supervisor_id == crm.staff.get("li").id
