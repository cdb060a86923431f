"""The demo, the customer's timeline, merge and forget."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_utility import accounts, advice, arrears, readings
from crm_utility.plugin import crm_demo
from crm_utility.tables import service_points
from sqlalchemy import select
from utility_testkit import DAY, csv_text, mill, two_level

from crmcore.schema import customers
from crmcore.testing import assert_plugin_contract

pytestmark = pytest.mark.crm(plugins=["utility"])


def test_demo_loads_a_large_industrial_customer_with_a_week_of_readings_and_advice(crm):
    crm.clock.set(dt.datetime(2026, 6, 15, 9, 0))
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.customers.add("Wu Fang", phone="139 0000 1111", owner="zhang", external_id="C-1001")
    with crm.transaction(command="crm demo utility"):
        text = crm_demo(crm=crm, command_prefix="crm --config demo/crm.toml")
    assert "672 readings imported" in text
    assert "crm --config demo/crm.toml timeline U-9001" in text and "advice for 2026-06-14" in text
    days = readings.days_stats(crm, "HRB-10K-0001", dt.date(2026, 6, 8), dt.date(2026, 6, 14))
    assert len(days) == 7 and all(d["complete"] for d in days)
    rules = {a["rule"] for a in advice.list_advice(crm, "U-9001")}
    assert rules == {"peak_shift", "power_factor", "overload"}
    assert crm.customers.labels("U-9001")["utility.key"] == "yes"
    kinds = {e.kind for e in crm.records.timeline("U-9001")}
    assert {"utility.advice", "utility.dunning", "utility.point"} <= kinds
    assert arrears.show_bill(crm, "HRB-2026-04-9001")["steps"][0]["name"] == "reminder_message"
    assert any(e.kind == "utility.escalation" for e in crm.records.timeline("C-1001"))


def test_merge_moves_service_points_readings_and_advice(crm):
    keep = mill(crm, kva=None)
    other = crm.customers.add("Northern Steel (dup)", external_id="U-2")
    accounts.add_point(
        crm,
        other,
        meter_no="M2",
        address="x",
        voltage_level="10kV",
        customer_class="large_industrial",
    )
    readings.import_readings(crm, csv_text("M2", DAY, two_level))
    advice.advise(crm, "M2", DAY)
    crm.customers.merge(keep, other)
    assert {p["meter_no"] for p in accounts.list_points(crm, keep)} == {"M1", "M2"}
    assert readings.day_stats(crm, "M2", DAY)["customer_id"] == keep.id
    assert [a["customer_id"] for a in advice.list_advice(crm)] == [keep.id]


def test_forget_erases_addresses_but_keeps_energy(crm):
    c = mill(crm)
    readings.import_readings(crm, csv_text("M1", DAY, two_level))
    crm.customers.forget(c)
    with crm.transaction(write=False):
        assert crm.db.execute(select(service_points.c.address)).scalar() == "[erased]"
        assert (
            crm.db.execute(select(customers.c.name).where(customers.c.id == c.id))
            .scalar()
            .startswith("forgotten")
        )
    assert readings.day_stats(crm, "M1", DAY)["total_kwh"] == 3300.0


def test_every_command_has_json(crm, crm_cli):
    from crm_utility.cli import utility

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    missing = [
        " ".join(p)
        for p, c in walk(utility, ["utility"])
        if "as_json" not in {o.name for o in c.params}
    ]
    assert missing == []


def seed_utility(crm, customer):
    """A service point with an address and a day of readings with advice."""
    meter = f"CT-{customer.id}"
    accounts.add_point(
        crm,
        customer,
        meter_no=meter,
        address=f"{customer.id} Contract Road",
        voltage_level="10kV",
        customer_class="large_industrial",
    )
    readings.import_readings(crm, csv_text(meter, DAY, two_level))
    advice.advise(crm, meter, DAY)


def test_the_plugin_contract(crm_factory):
    assert_plugin_contract("utility", crm_factory, seed=seed_utility)
