"""Service points, key customers, and advice rules over daily curves."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_utility import accounts, advice, readings
from utility_testkit import DAY, csv_text, mill, staff, two_level

from crmcore import Conflict, NotFound, ValidationError

pytestmark = pytest.mark.crm(plugins=["utility"])


def _shop(crm, meter="S1", kva=None, ext="S-1", cls="commercial"):
    c = crm.customers.add("Corner Shop", external_id=ext)
    accounts.add_point(
        crm,
        c,
        meter_no=meter,
        address="2 High St",
        voltage_level="380V",
        customer_class=cls,
        area="urban",
        contracted_kva=kva,
    )
    return c


# -- service points and key customers ----------------------------------------------------
def test_service_point_fields_and_validation(crm):
    c = mill(crm)
    p = accounts.list_points(crm, c)[0]
    assert p | {"id": 0, "customer_id": 0} == {
        "id": 0,
        "customer_id": 0,
        "meter_no": "M1",
        "address": "1 Mill Road",
        "voltage_level": "10kV",
        "customer_class": "large_industrial",
        "area": "urban",
        "contracted_kva": 1000,
        "key_override": None,
        "key": True,
    }
    with pytest.raises(Conflict, match="meter 'M1' is already registered"):
        accounts.add_point(
            crm, c, meter_no="M1", address="x", voltage_level="10kV", customer_class="commercial"
        )
    for kwargs, msg in [
        ({"voltage_level": "9kV"}, "voltage level '9kV'"),
        ({"customer_class": "farm"}, "customer class 'farm'"),
        ({"area": "moon"}, "area 'moon'"),
        ({"meter_no": "bad meter!"}, "letters, digits"),
        ({"address": " "}, "address: required"),
        ({"contracted_kva": 0}, "contracted capacity"),
    ]:
        args = {
            "meter_no": "M2",
            "address": "x",
            "voltage_level": "380V",
            "customer_class": "commercial",
        }
        with pytest.raises(ValidationError, match=msg):
            accounts.add_point(crm, c, **(args | kwargs))
    assert len(accounts.list_points(crm)) == 1


def test_key_customers_by_class_by_capacity_and_by_hand(crm):
    mill(crm)
    _shop(crm, "S1", kva=None, ext="S-1")
    _shop(crm, "S2", kva=400, ext="S-2")  # >= 315 kVA: key by rule
    assert crm.customers.labels("U-1") == {"utility.key": "yes"}
    assert crm.customers.labels("S-1") == {}
    assert crm.customers.labels("S-2") == {"utility.key": "yes"}
    accounts.set_key(crm, "S1", True)
    assert crm.customers.labels("S-1") == {"utility.key": "yes"}
    accounts.set_key(crm, "M1", False)
    assert crm.customers.labels("U-1") == {}
    accounts.set_key(crm, "M1", None)
    assert crm.customers.labels("U-1") == {"utility.key": "yes"}
    keys = {p["meter_no"] for p in accounts.list_points(crm, key_only=True)}
    assert keys == {"M1", "S1", "S2"}
    card = crm.records.card("U-1")
    assert (
        card["labels"]["utility.class"] == "large_industrial"
        and card["labels"]["utility.key"] == "yes"
    )


def test_a_rep_sees_only_their_customers_points(crm):
    staff(crm)
    mill(crm, owner="chen")
    assert accounts.list_points(crm.as_("zhang")) == []
    assert len(accounts.list_points(crm.as_("chen"))) == 1
    with pytest.raises(NotFound):
        accounts.set_key(crm.as_("zhang"), "M1", True)


# -- advice ------------------------------------------------------------------------------------
def test_high_peak_valley_ratio_gives_shift_advice_with_saving_at_configured_tariffs(crm):
    mill(crm, kva=None)
    readings.import_readings(crm, csv_text("M1", DAY, two_level))
    r = advice.advise(crm, "M1", DAY)
    assert [a["rule"] for a in r["advice"]] == ["peak_shift"]
    a = r["advice"][0]
    # peak-hour energy 1700 kWh x 20 % = 340 kWh a day x (110 - 35) cents = 25,500 cents a day
    assert a["data"]["saving_cents_per_day"] == 25_500
    assert a["saving_cents"] == 25_500 * 30
    assert "¥255.00 a day" in a["summary"]
    # a flat curve (ratio 1) calls for no shift
    flat = crm.customers.add("Flat Works", external_id="U-2")
    accounts.add_point(
        crm,
        flat,
        meter_no="M2",
        address="x",
        voltage_level="10kV",
        customer_class="large_industrial",
    )
    readings.import_readings(crm, csv_text("M2", DAY, lambda t: 200.0))
    assert advice.advise(crm, "M2", DAY)["advice"] == []


def test_low_power_factor_and_overload_give_upgrade_proposals(crm):
    mill(crm, kva=300)
    # 400 kW peak at power factor 0.8 (kvar = 0.75 x kW): 500 kVA against 300 contracted
    readings.import_readings(
        crm, csv_text("M1", DAY, two_level, pf_kvar=lambda t: two_level(t) * 0.75)
    )
    got = {a["rule"]: a for a in advice.advise(crm, "M1", DAY)["advice"]}
    assert set(got) == {"peak_shift", "power_factor", "overload"}
    assert got["power_factor"]["data"]["power_factor"] == 0.8
    assert "upgrade proposal" in got["power_factor"]["summary"]
    assert got["overload"]["data"]["peak_kva"] == 500.0
    assert got["overload"]["data"]["proposed_kva"] == 630  # smallest standard size loaded <= 80 %


def test_advice_refusals_non_key_customer_and_incomplete_day(crm):
    _shop(crm, "S1")
    readings.import_readings(crm, csv_text("S1", DAY, two_level))
    with pytest.raises(ValidationError, match="value-added service for key customers"):
        advice.advise(crm, "S1", DAY)
    mill(crm)
    readings.import_readings(
        crm, "\n".join(csv_text("M1", DAY, two_level).splitlines()[:50]) + "\n"
    )
    with pytest.raises(ValidationError, match="has 49 of 96 readings on 2026-01-04"):
        advice.advise(crm, "M1", DAY)
    assert advice.list_advice(crm) == []


def test_advice_is_stored_once_shown_on_the_timeline_and_made_by_the_job(crm, crm_cli):
    mill(crm, kva=None)
    _shop(crm, "S1")  # not key
    readings.import_readings(crm, csv_text("M1", DAY, two_level))
    readings.import_readings(crm, csv_text("S1", DAY, two_level))
    r = crm.jobs.run(["utility.advise"], at=dt.datetime(2026, 1, 5, 6))[0]["summary"]
    assert r == {"day": "2026-01-04", "points": 1, "advice": 1, "incomplete": []}
    again = crm.jobs.run(["utility.advise"], at=dt.datetime(2026, 1, 5, 6))[0]["summary"]
    assert again["advice"] == 0
    assert advice.advise(crm, "M1", DAY)["new"] == 0
    assert [a["customer_id"] for a in advice.list_advice(crm)] == [crm.customers.get("U-1").id]
    entries = [e for e in crm.records.timeline("U-1") if e.kind == "utility.advice"]
    assert len(entries) == 1 and entries[0].source == "utility"
    assert "shifting 20% of peak-hour use" in entries[0].summary
    assert entries[0].data["saving_cents"] == 765_000
    # the CLI
    readings.import_readings(crm, csv_text("M1", DAY + dt.timedelta(days=1), two_level))
    r = crm_cli("utility", "advise", "M1", "2026-01-05", "--json")
    assert r.exit_code == 0 and r.json()["new"] == 1
    assert [a["day"] for a in crm_cli("utility", "advice", "U-1", "--json").json()] == [
        "2026-01-04",
        "2026-01-05",
    ]
    assert crm_cli("utility", "advise", "M1", "2026-01-04T10:00").exit_code == 1
