"""Equipment register of key customers: devices, inspections, due dates, reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_utility import accounts, equipment
from utility_testkit import mill, staff

from crmcore import NotFound, ValidationError

pytestmark = pytest.mark.crm(plugins=["utility"])
TODAY = dt.date(2026, 1, 5)


def test_device_due_dates_default_by_kind(crm):
    mill(crm)
    t = equipment.add_device(
        crm,
        "U-1",
        name="T1",
        kind="transformer",
        rating="1000 kVA",
        installed_on=dt.date(2025, 10, 1),
        meter_no="M1",
    )
    assert t["interval_days"] == 180 and t["next_due"] == dt.date(2025, 10, 1) + dt.timedelta(
        days=180
    )
    s = equipment.add_device(crm, "U-1", name="switchgear", kind="switchgear", rating="630 A")
    assert s["next_due"] == TODAY + dt.timedelta(days=365)
    c = equipment.add_device(
        crm,
        "U-1",
        name="cap bank",
        kind="capacitor",
        rating="200 kvar",
        interval_days=30,
        next_due=dt.date(2026, 1, 10),
    )
    assert c["next_due"] == dt.date(2026, 1, 10) and c["interval_days"] == 30


def test_register_is_for_key_customers_and_checks_its_input(crm):
    c = crm.customers.add("Home", external_id="H-1")
    accounts.add_point(
        crm, c, meter_no="H1", address="x", voltage_level="220V", customer_class="residential"
    )
    with pytest.raises(ValidationError, match="not a key customer"):
        equipment.add_device(crm, "H-1", name="meter", kind="meter", rating="10(60) A")
    mill(crm)
    with pytest.raises(ValidationError, match="device kind 'boiler'"):
        equipment.add_device(crm, "U-1", name="b", kind="boiler", rating="x")
    with pytest.raises(ValidationError, match="not a service point of customer"):
        equipment.add_device(crm, "U-1", name="T", kind="transformer", rating="x", meter_no="H1")
    assert equipment.list_devices(crm) == []


def test_inspection_sets_the_next_due_date(crm, crm_cli):
    mill(crm)
    d = equipment.add_device(
        crm, "U-1", name="T1", kind="transformer", rating="1000 kVA", next_due=dt.date(2026, 1, 3)
    )
    crm.clock.advance(hours=2)
    after = equipment.record_inspection(crm, d["id"], result="defect", notes="oil leak at valve")
    assert after["next_due"] == TODAY + dt.timedelta(days=180)
    hist = equipment.inspections_of(crm, d["id"])
    assert [(h["result"], h["notes"]) for h in hist] == [("defect", "oil leak at valve")]
    assert any(
        e.kind == "utility.inspection" and "oil leak" in e.summary for e in crm.records.timeline("U-1")
    )
    with pytest.raises(ValidationError, match="inspection result 'fine'"):
        equipment.record_inspection(crm, d["id"], result="fine")
    with pytest.raises(NotFound, match="device 999 not found"):
        equipment.record_inspection(crm, 999, result="ok")
    with pytest.raises(ValidationError, match="in the future"):
        equipment.record_inspection(crm, d["id"], result="ok", at=dt.datetime(2026, 2, 1))
    r = crm_cli(
        "utility",
        "device",
        "add",
        "U-1",
        "--name",
        "T1",
        "--kind",
        "transformer",
        "--rating",
        "1000 kVA",
        "--installed",
        "2025-10-01",
        "--json",
    )
    assert r.exit_code == 0, r
    did = r.json()["id"]
    assert (
        crm_cli("utility", "device", "list", "--due-by", "2026-12-31", "--json").json()[0]["id"]
        == did
    )
    r = crm_cli("utility", "device", "inspect", str(did), "--result", "ok", "--json")
    assert r.exit_code == 0 and r.json()["next_due"] == "2026-07-04"
    assert crm_cli("utility", "device", "history", str(did), "--json").json()[0]["result"] == "ok"


def test_reminder_job_reminds_the_owner_once_per_due_date(crm):
    staff(crm)
    mill(crm, owner="zhang")
    soon = equipment.add_device(
        crm,
        "U-1",
        name="T1",
        kind="transformer",
        rating="1000 kVA",
        next_due=TODAY + dt.timedelta(days=10),
    )
    equipment.add_device(
        crm,
        "U-1",
        name="S1",
        kind="switchgear",
        rating="630 A",
        next_due=TODAY + dt.timedelta(days=60),
    )
    at = dt.datetime(2026, 1, 5, 6)
    r = crm.jobs.run(["utility.inspections"], at=at)[0]["summary"]
    assert r["reminders"] == 1
    assert crm.jobs.run(["utility.inspections"], at=at)[0]["summary"]["reminders"] == 0
    assert crm.jobs.run(["utility.inspections"], at=at + dt.timedelta(days=1))[0]["summary"] == {
        "horizon": "2026-01-20",
        "reminders": 0,
        "already_reminded": 1,
        "devices_without_owner": [],
    }
    due = crm.tickets.due_reminders(at=at + dt.timedelta(days=1), staff="zhang")
    assert len(due) == 1 and "inspection of transformer 'T1'" in due[0].text
    # after the inspection the next due date is new: a new reminder when that comes near
    crm.clock.set(dt.datetime(2026, 1, 14, 10))
    equipment.record_inspection(crm, soon["id"], result="ok")
    far = dt.datetime(2026, 7, 5, 6)
    assert crm.jobs.run(["utility.inspections"], at=far)[0]["summary"]["reminders"] == 2
