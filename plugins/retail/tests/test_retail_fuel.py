"""Fuel stations: three-visit profiling, the 1:15 rule, overdue call-backs."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail import callbacks, fuel
from crm_retail.tables import callbacks as callbacks_table
from crm_retail.tables import fuel_profiles
from sqlalchemy import func, select

from crmcore import Conflict, NotFound, TransitionError, ValidationError

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


def staff(crm):
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")


@RETAIL
def test_three_visits_in_order(crm):
    staff(crm)
    p1 = fuel.visit1(
        crm, plate="豫A·12345", car_model="VW Passat", station="No. 3", staff_ref="zhang"
    )
    assert p1["plate"] == "豫A12345" and p1["step"] == 1 and p1["phone"] is None
    assert p1["name"] == "driver of 豫A12345"
    p2 = fuel.visit2(
        crm,
        "豫a 12345",
        name="Zhao Gang",
        employer="Puyang Logistics",
        consent=True,
        staff_ref="zhang",
    )
    assert p2["step"] == 2 and p2["name"] == "Zhao Gang" and p2["consent_at"] == T0
    rels = [r for r in crm.customers.relationships(p2["customer_id"]) if r.kind == "account_manager"]
    assert [r.to_staff_id for r in rels] == [crm.staff.get("zhang").id]
    p3 = fuel.visit3(crm, "豫A12345", phone="137 0000 1234", details={"fuel": "95"})
    assert p3["step"] == 3 and p3["phone"] == "+8613700001234" and p3["details"] == {"fuel": "95"}
    visits = crm.records.interactions(p3["customer_id"], kind="visit")
    assert [v.data["step"] for v in visits] == [1, 2, 3]


@RETAIL
def test_each_step_is_refused_until_the_earlier_one_exists(crm):
    with pytest.raises(NotFound, match="no first-visit record for plate 豫B99999"):
        fuel.visit2(crm, "豫B99999", name="X", employer="Y", consent=True)
    with pytest.raises(NotFound, match="record plate and car model first"):
        fuel.visit3(crm, "豫B99999", phone="13700000000")
    fuel.visit1(crm, plate="豫B99999", car_model="BYD Han")
    with pytest.raises(ValidationError, match="visit 3 needs visit 2 first"):
        fuel.visit3(crm, "豫B99999", phone="13700000000")
    with pytest.raises(ValidationError, match="not consented"):
        fuel.visit2(crm, "豫B99999", name="X", employer="Y", consent=False)
    p = fuel.show(crm, "豫B99999")
    assert p["step"] == 1 and p["name"] == "driver of 豫B99999" and p["employer"] is None
    assert crm.customers.get(p["customer_id"]).phone is None
    with pytest.raises(Conflict, match="already has a profile"):
        fuel.visit1(crm, plate="豫B-99999", car_model="BYD Han")
    with pytest.raises(ValidationError, match="plate"):
        fuel.visit1(crm, plate="X1", car_model="?")
    with crm.transaction(write=False):
        assert crm.db.execute(select(func.count()).select_from(fuel_profiles)).scalar() == 1


@RETAIL
def test_visit3_phone_clash_is_refused_and_nothing_changes(crm):
    crm.customers.add("Has the phone", phone="13700000001")
    fuel.visit1(crm, plate="豫C11111", car_model="Audi A6")
    fuel.visit2(crm, "豫C11111", name="Guo", employer="Bank", consent=True)
    with pytest.raises(Conflict):
        fuel.visit3(crm, "豫C11111", phone="13700000001")
    assert fuel.show(crm, "豫C11111")["step"] == 2


def manage(crm, key, n, start=0):
    for i in range(n):
        c = crm.customers.add(f"{key}-{i}", phone=f"136{start + i:08d}")
        crm.customers.add_relationship("account_manager", c, to_staff=key)


@RETAIL
def test_one_to_fifteen_report(crm):
    staff(crm)
    manage(crm, "zhang", 15)
    manage(crm, "chen", 4, start=100)
    rep = fuel.ratio_report(crm)
    assert rep["required"] == 15
    assert {x["staff"]: x["customers"] for x in rep["all"]} == {"zhang": 15, "chen": 4, "wang": 0}
    assert [(x["staff"], x["short_by"]) for x in rep["under"]] == [("chen", 11), ("wang", 15)]
    # scope: a rep sees their own line, a supervisor their team
    assert [x["staff"] for x in fuel.ratio_report(crm.as_("chen"))["all"]] == ["chen"]
    assert [x["staff"] for x in fuel.ratio_report(crm.as_("li"))["all"]] == ["chen", "zhang"]


@pytest.mark.crm(
    plugins=["retail"],
    config={
        "plugins": {
            "retail": {
                "fuel": {"customers_per_employee": 3, "employee_roles": ["rep", "supervisor"]}
            }
        }
    },
)
def test_one_to_n_is_configurable(crm):
    staff(crm)
    manage(crm, "zhang", 3)
    rep = fuel.ratio_report(crm)
    assert [x["staff"] for x in rep["under"]] == ["chen", "li", "wang"]


def regular(crm, name, phone, *, gaps, last_days_ago, owner=None):
    c = crm.customers.add(name, phone=phone, owner=owner)
    at = T0 - dt.timedelta(days=last_days_ago + sum(gaps))
    crm.records.add_transaction(c, 30_000, occurred_at=at)
    for g in gaps:
        at += dt.timedelta(days=g)
        crm.records.add_transaction(c, 30_000, occurred_at=at)
    return c


@RETAIL
def test_overdue_regulars_get_one_call_back_reminder_for_their_manager(crm):
    staff(crm)
    late = regular(crm, "Late", "13500000001", gaps=[7, 7, 7], last_days_ago=11)  # 7 + 3 < 11
    ok = regular(crm, "Within grace", "13500000002", gaps=[7, 7, 7], last_days_ago=10)
    rare = regular(crm, "Two visits", "13500000003", gaps=[7], last_days_ago=40)
    crm.customers.add_relationship("account_manager", late, to_staff="chen")
    res = crm.jobs.run(["retail.overdue"], at=T0)[0]["summary"]
    assert res["overdue"] == 1 and res["new_callbacks"] == 1
    (rem,) = crm.tickets.due_reminders(staff="chen", at=T0 + dt.timedelta(days=2))
    assert rem.customer_id == late.id and "not back for 11 days" in rem.text
    assert crm.customers.labels(late)["overdue"] == "1"
    assert "overdue" not in crm.customers.labels(ok) and "overdue" not in crm.customers.labels(rare)
    # re-running, or the customer staying away, adds nothing
    crm.jobs.run(["retail.overdue"], at=T0)
    out = crm.jobs.run(["retail.overdue"], at=T0 + dt.timedelta(days=3))[0]["summary"]
    assert out["without_manager"] == [ok.id]  # now overdue too, nobody to call
    assert [x["customer_id"] for x in callbacks.list_callbacks(crm)] == [late.id, ok.id]
    assert len(crm.tickets.due_reminders(staff="chen", at=T0 + dt.timedelta(days=9))) == 1
    # they come back and lapse again: a new call-back
    crm.records.add_transaction(late, 30_000, occurred_at=T0 + dt.timedelta(days=4))
    crm.jobs.run(["retail.overdue"], at=T0 + dt.timedelta(days=30))
    assert [x["customer_id"] for x in callbacks.list_callbacks(crm)] == [late.id, ok.id, late.id]


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"fuel": {"grace_days": 5}}}})
def test_grace_days_are_configurable_and_owner_is_the_fallback(crm):
    staff(crm)
    c = regular(crm, "Late", "13500000004", gaps=[7, 7, 7], last_days_ago=11, owner="wang")
    assert crm.jobs.run(["retail.overdue"], at=T0)[0]["summary"]["overdue"] == 0
    crm.jobs.run(["retail.overdue"], at=T0 + dt.timedelta(days=2))
    (rem,) = crm.tickets.due_reminders(staff="wang", at=T0 + dt.timedelta(days=5))
    assert rem.customer_id == c.id


@RETAIL
def test_call_back_outcome_is_recorded_once(crm):
    staff(crm)
    c = regular(crm, "Late", "13500000005", gaps=[5, 5, 5], last_days_ago=20, owner="zhang")
    crm.jobs.run(["retail.overdue"], at=T0)
    (cb,) = callbacks.list_callbacks(crm.as_("zhang"))
    assert callbacks.list_callbacks(crm.as_("chen")) == []
    with pytest.raises(NotFound):
        callbacks.record_outcome(crm.as_("chen"), cb["id"], "x")
    with pytest.raises(ValidationError, match="outcome: required"):
        callbacks.record_outcome(crm.as_("zhang"), cb["id"], " ")
    done = callbacks.record_outcome(crm.as_("zhang"), cb["id"], "moved to the other station")
    assert done["outcome"] == "moved to the other station"
    assert crm.tickets.due_reminders(staff="zhang", at=T0 + dt.timedelta(days=5)) == []
    notes = crm.records.interactions(c, kind="note")
    assert notes and "moved to the other station" in notes[-1].text
    with pytest.raises(TransitionError, match="already has an outcome"):
        callbacks.record_outcome(crm, cb["id"], "again")
    assert (
        callbacks.list_callbacks(crm) == []
        and len(callbacks.list_callbacks(crm, open_only=False)) == 1
    )
    with crm.transaction(write=False):
        row = crm.db.execute(select(callbacks_table)).one()
    assert row.outcome_at == T0
