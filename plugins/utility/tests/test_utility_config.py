"""Every config key is honoured; defaults are filled in; a bad ladder is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_utility import accounts, advice, arrears, equipment, readings, tickets
from crm_utility.config import SCHEMA, check, ladder
from utility_testkit import DAY, csv_text, staff, two_level

from crmcore import ConfigError

T0 = dt.datetime(2026, 1, 5, 9, 0)
CONFIG = {
    "plugins": {
        "utility": {
            "default_area": "rural",
            "key_customer": {"classes": ["commercial"], "min_contracted_kva": None},
            "deadlines": {
                "fault_repair": {"on_site_minutes": {"urban": 30, "rural": 60, "remote": 100}},
                "enquiry": {"response_minutes": {"urban": 60, "rural": 60, "remote": 60}},
            },
            "escalation": {"interval_minutes": 30, "max_levels": 1},
            "tariffs": {
                "peak_cents_per_kwh": 100,
                "valley_cents_per_kwh": 40,
                "peak_periods": ["08:00-11:00"],
            },
            "advice": {"shiftable_share": 0.5, "days_per_month": 31},
            "equipment": {"interval_days": {"transformer": 90}, "reminder_lead_days": 3},
            "dunning": {
                "legal_notice_days": 10,
                "min_days_between_steps": 0,
                "steps": [
                    {"name": "formal_notice", "days_overdue": 1},
                    {"name": "disconnection_proposal", "days_overdue": 2},
                ],
            },
        }
    }
}


def test_config_keys_are_honoured(crm_factory):
    crm = crm_factory(plugins=["utility"], config=CONFIG)
    staff(crm)
    shop = crm.customers.add("Shop", external_id="S-1", owner="zhang")
    p = accounts.add_point(
        crm, shop, meter_no="S1", address="x", voltage_level="380V", customer_class="commercial"
    )
    assert p["area"] == "rural"  # default_area
    assert p["key"] is True  # key_customer.classes
    big = crm.customers.add("Plant", external_id="P-1")
    accounts.add_point(
        crm,
        big,
        meter_no="P1",
        address="y",
        voltage_level="10kV",
        customer_class="large_industrial",
        contracted_kva=5000,
    )
    assert crm.customers.labels("P-1") == {}  # neither its class nor (rule off) its capacity makes it key
    # deadlines: configured on-site minutes; response keeps its default; enquiry response
    t = tickets.open_service_ticket(crm, "S-1", "no power", type="fault_repair", owner="zhang")
    assert t["on_site_due"] == T0 + dt.timedelta(minutes=60)
    assert t["response_due"] == T0 + dt.timedelta(minutes=15)
    e = tickets.open_service_ticket(crm, "S-1", "question", type="enquiry")
    assert e["response_due"] == T0 + dt.timedelta(minutes=60)
    # escalation: one level only
    r = crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(hours=3))[0]["summary"]
    assert {(x["deadline"], x["level"]) for x in r["escalations"]} == {
        ("response", 1),
        ("on_site", 1),
    }
    assert r["no_higher_level"] == []
    # tariffs and advice: 1200 peak kWh (08-11 only) x 0.5 x (100 - 40) = 36,000 cents a day
    readings.import_readings(crm, csv_text("S1", DAY, two_level))
    a = advice.advise(crm, "S1", DAY)["advice"][0]
    assert a["data"]["saving_cents_per_day"] == 36_000 and a["saving_cents"] == 36_000 * 31
    # equipment intervals and reminder lead time
    d = equipment.add_device(crm, "S-1", name="T", kind="transformer", rating="400 kVA")
    assert d["next_due"] == T0.date() + dt.timedelta(days=90)
    s = equipment.add_device(
        crm,
        "S-1",
        name="S",
        kind="switchgear",
        rating="630 A",
        next_due=T0.date() + dt.timedelta(days=5),
    )
    assert s["interval_days"] == 365
    assert crm.jobs.run(["utility.inspections"], at=T0)[0]["summary"]["reminders"] == 0
    assert (
        crm.jobs.run(["utility.inspections"], at=T0 + dt.timedelta(days=2))[0]["summary"][
            "reminders"
        ]
        == 1
    )
    # dunning: a two-step ladder, no gap, 10 days' legal notice
    arrears.add_bill(
        crm,
        "S-1",
        bill_no="B-1",
        period="2025-12",
        amount_cents=500,
        due_on=dt.date(2026, 1, 1),
        issued_on=dt.date(2025, 12, 20),
    )
    assert (
        crm.jobs.run(["utility.dunning"], at=T0)[0]["summary"]["taken"][0]["step"]
        == "formal_notice"
    )
    b = arrears.take_step(crm, "B-1", "disconnection_proposal", at=T0 + dt.timedelta(hours=1))
    assert b["steps"][-1]["disconnect_on"] == T0.date() + dt.timedelta(days=10)


class _Stub:
    def __init__(self, section):
        from crmcore import jsonschemas

        self.section = jsonschemas.validate(section, SCHEMA, where="test")

    def plugin_config(self, name):
        return self.section


def test_defaults_and_ladder_checks():
    defaults = _Stub({}).section
    assert defaults["deadlines"]["fault_repair"]["on_site_minutes"] == {
        "urban": 45,
        "rural": 90,
        "remote": 120,
    }
    assert defaults["dunning"]["legal_notice_days"] == 7
    assert [s["name"] for s in ladder(_Stub({}))] == [
        "reminder_message",
        "formal_notice",
        "restricted_supply_proposal",
        "disconnection_proposal",
    ]
    bad = [
        (
            [
                {"name": "reminder_message", "days_overdue": 1},
                {"name": "disconnection_proposal", "days_overdue": 9},
            ],
            "needs a formal_notice step before it",
        ),
        (
            [
                {"name": "formal_notice", "days_overdue": 1},
                {"name": "disconnection_proposal", "days_overdue": 9},
                {"name": "reminder_message", "days_overdue": 20},
            ],
            "must be the last step",
        ),
        (
            [
                {"name": "formal_notice", "days_overdue": 5},
                {"name": "reminder_message", "days_overdue": 5},
            ],
            "must increase",
        ),
        (
            [
                {"name": "formal_notice", "days_overdue": 1},
                {"name": "formal_notice", "days_overdue": 5},
            ],
            "each step may appear once",
        ),
    ]
    for steps, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            check(_Stub({"dunning": {"steps": steps}}).section)
    with pytest.raises(ValueError, match="deadlines.fault_repair.on_site_minutes"):
        _Stub({"deadlines": {"fault_repair": {"on_site_minutes": {"urban": 30}}}})
