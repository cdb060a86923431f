"""The plugin as a whole: discovery, schema, timeline, card, merge, forget, demo."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from crm_retail import dm, feedback, fuel, members, points, waitlist
from crm_retail.tables import TABLES, fuel_profiles
from crm_retail.tables import waitlist as waitlist_table
from sqlalchemy import inspect, select

from crmcore import FixedClock
from crmcore.testing import assert_plugin_contract

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


def test_entry_point_and_migration_layout():
    (ep,) = [e for e in entry_points(group="crmcore.plugins") if e.name == "retail"]
    assert ep.value == "crm_retail.plugin"
    plugin = ep.load()
    mig = Path(plugin.crm_migrations())
    assert [p.name for p in mig.glob("*.py")] == ["retail_0001_initial.py"]
    text = (mig / "retail_0001_initial.py").read_text()
    for line in (
        'revision = "retail_0001"',
        "down_revision = None",
        'branch_labels = ("retail",)',
        'depends_on = "crmcore_0001"',
    ):
        assert line in text
    assert all(t.name.startswith("retail_") for t in TABLES)
    names = [j.name for j in plugin.crm_jobs()]
    assert all(n.startswith("retail.") for n in names) and len(names) == 6


@RETAIL
def test_upgrade_creates_every_table(crm):
    with crm.engine.connect() as conn:
        have = set(inspect(conn).get_table_names())
    assert {t.name for t in TABLES} <= have


@RETAIL
def test_timeline_shows_membership_tier_changes_points_and_greetings(crm):
    c = crm.customers.add("Tl", phone="13800000001")
    members.join(crm, c, birthday="1990-01-05", at=T0 - dt.timedelta(days=10))
    crm.records.add_transaction(c, 350_000)
    points.redeem(crm, c, 100)
    crm.jobs.run(["retail.birthdays"], at=T0)
    kinds = [e.kind for e in crm.records.timeline(c)]
    for kind in ("retail.member", "retail.tier", "retail.points", "message.sms"):
        assert kind in kinds
    pts = [e.summary for e in crm.records.timeline(c) if e.kind == "retail.points"]
    assert pts == [
        "+4200 points (accrual: purchase 3,500.00 at silver x1.2)",
        "-100 points (redeem: redeemed)",
    ]


@RETAIL
def test_card_shows_member_number_points_and_tier(crm):
    c = crm.customers.add("Card", phone="13800000002")
    members.join(crm, c, member_no="VIP-1")
    crm.records.add_transaction(c, 10_000)
    labels = crm.records.card(c)["labels"]
    assert labels["retail.member_no"] == "VIP-1" and labels["retail.points"] == "100"
    assert labels["retail.tier"] == "standard"
    other = crm.customers.add("Nobody", phone="13800000003")
    assert "retail.member_no" not in crm.records.card(other)["labels"]


@RETAIL
def test_merging_two_members_keeps_one_membership_and_the_ledger_sum(crm):
    a = crm.customers.add("A", phone="13800000004")
    b = crm.customers.add("B", phone="13800000005")
    members.join(crm, a, at=T0 - dt.timedelta(days=5))
    members.join(crm, b, at=T0 - dt.timedelta(days=9), birthday="1980-02-02")
    crm.records.add_transaction(a, 10_000)
    crm.records.add_transaction(b, 1_100_000)
    fuel.visit1(crm, plate="豫A11111", car_model="x")
    crm.customers.merge(a, b)
    info = members.member_info(crm, a)
    assert info["points_balance"] == 100 + 16_500
    assert info["tier"] == "gold" and info["birthday"] == dt.date(1980, 2, 2)
    assert crm.customers.labels(a)["retail.tier"] == "gold"
    led = points.ledger(crm, a)
    assert led["ledger_sum"] == led["balance"]
    assert [m["customer_id"] for m in members.list_members(crm)] == [a.id]


@RETAIL
def test_merge_with_clashing_per_customer_rows(crm):
    a = fuel.visit1(crm, plate="豫A22222", car_model="x")["customer_id"]
    b = fuel.visit1(crm, plate="豫A33333", car_model="y")["customer_id"]
    crm.records.add_transaction(a, 100, occurred_at=T0 - dt.timedelta(days=1))
    crm.records.add_transaction(b, 100, occurred_at=T0 - dt.timedelta(days=1))
    feedback.sample(crm, name="s", size=5, seed=1)
    crm.customers.merge(a, b)
    with crm.transaction(write=False):
        assert crm.db.execute(select(fuel_profiles.c.plate)).scalars().all() == ["豫A22222"]


@RETAIL
def test_forget_blanks_personal_data_and_keeps_the_numbers(crm):
    c = crm.customers.add("Forget me", phone="13800000006")
    members.join(crm, c, birthday="1990-01-01")
    crm.records.add_transaction(c, 10_000)
    r = dm.report(
        crm,
        c,
        product="Tea",
        promotion="W1",
        poster_price="1.00",
        till_price="2.00",
        note="I saw it at the entrance",
    )
    waitlist.add(crm, c, item="Eggs", phone="13900000000")
    p = fuel.visit1(crm, plate="豫A44444", car_model="Golf")
    crm.customers.forget(c)
    crm.customers.forget(p["customer_id"])
    info = members.member_info(crm, c)
    assert info["birthday"] is None and info["points_balance"] == 100
    assert dm.list_reports(crm)[0]["note"] == "[erased]" and r["id"] == 1
    with crm.transaction(write=False):
        assert crm.db.execute(select(waitlist_table.c.contact_phone)).scalar() is None
        prof = crm.db.execute(select(fuel_profiles)).one()
    assert prof.plate is None and prof.car_model is None


def test_demo_loads_members_with_tier_changes_points_and_greetings(crm_factory):
    crm = crm_factory(plugins=["retail"])
    crm.clock = FixedClock(dt.datetime(2026, 6, 15, 9, 0))
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen Jie", roles=["rep"], team="north", supervisor="li")
    crm.customers.add("Wu Fang", phone="139 0000 1111", owner="zhang", external_id="C-1001")
    crm.customers.add("Wu Lei", phone="139 0000 2222", owner="zhang", external_id="C-1002")
    with crm.transaction(command="crm demo retail"):
        text = crm.hook.crm_demo(crm=crm, command_prefix="crm --config demo/crm.toml")
    assert any("Wu Fang M20250901 tier gold" in (t or "") for t in text)
    assert any("try:    crm --config demo/crm.toml retail member show C-1001" in t for t in text)
    kinds = {e.kind for e in crm.records.timeline("C-1001")}
    assert {"retail.tier", "retail.points", "message.sms", "retail.member"} <= kinds
    assert crm.now() == dt.datetime(2026, 6, 15, 9, 0)


def seed_retail(crm, customer):
    """A member with a birthday, a purchase, a poster-price report and a place
    on a waiting list: the retail rows forget and merge must handle."""
    members.join(crm, customer, birthday="1990-01-01")
    crm.records.add_transaction(customer, 10_000, occurred_at=T0 - dt.timedelta(days=1))
    dm.report(
        crm,
        customer,
        product="Tea",
        promotion="W1",
        poster_price="1.00",
        till_price="2.00",
        note="seen at the entrance",
    )
    waitlist.add(crm, customer, item="Eggs", phone="13900003333")


def test_the_plugin_contract(crm_factory):
    assert_plugin_contract(
        "retail",
        crm_factory,
        seed=seed_retail,
        json_commands=[["retail", "member", "show", "1", "--json"]],
    )
