"""Fast-response service tickets: deadlines by type and area, escalation, compliance."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_utility import accounts, tickets
from crm_utility.tables import escalations, service_tickets
from sqlalchemy import func, select
from utility_testkit import mill, staff

from crmcore import TransitionError, ValidationError

pytestmark = pytest.mark.crm(plugins=["utility"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


def _household(crm, meter: str, area: str, ext: str):
    c = crm.customers.add(f"Household {meter}", phone=None, external_id=ext, owner="zhang")
    accounts.add_point(
        crm,
        c,
        meter_no=meter,
        address="Village 1",
        voltage_level="220V",
        customer_class="residential",
        area=area,
    )
    return c


def test_deadlines_by_type_and_area(crm):
    staff(crm)
    for i, (area, minutes) in enumerate([("urban", 45), ("rural", 90), ("remote", 120)]):
        _household(crm, f"H{i}", area, f"H-{i}")
        t = tickets.open_service_ticket(
            crm, f"H-{i}", "no power", type="fault_repair", meter_no=f"H{i}"
        )
        assert t["area"] == area
        assert t["response_due"] == T0 + dt.timedelta(minutes=15)
        assert t["on_site_due"] == T0 + dt.timedelta(minutes=minutes)
        core = crm.tickets.get(t["ticket_id"])
        assert core.workflow == "utility.service" and core.state == "received"
        assert core.due_at == t["response_due"]  # the core ticket shows the current deadline
    got = {
        k: tickets.open_service_ticket(crm, "H-0", k, type=k)
        for k in ("complaint", "enquiry", "new_connection")
    }
    assert got["complaint"]["response_due"] == T0 + dt.timedelta(hours=24)
    assert got["complaint"]["on_site_due"] == T0 + dt.timedelta(days=3)
    assert got["enquiry"]["on_site_due"] is None
    assert got["new_connection"]["on_site_due"] == T0 + dt.timedelta(days=3)
    # the area is given explicitly, else the meter's, else the customer's only area
    t = tickets.open_service_ticket(crm, "H-1", "no power", type="fault_repair", area="remote")
    assert t["on_site_due"] == T0 + dt.timedelta(minutes=120)
    assert tickets.open_service_ticket(crm, "H-1", "x", type="fault_repair")["area"] == "rural"


def test_unknown_kind_and_foreign_meter_are_refused_and_nothing_written(crm):
    staff(crm)
    _household(crm, "H1", "urban", "H-1")
    _household(crm, "H2", "urban", "H-2")
    with pytest.raises(ValidationError, match="utility service ticket kind 'billing'"):
        crm.tickets.open("H-1", "x", kind="billing", workflow="utility.service")
    with pytest.raises(ValidationError, match="meter 'H2' belongs to customer"):
        tickets.open_service_ticket(crm, "H-1", "x", type="fault_repair", meter_no="H2")
    assert crm.tickets.list() == [] and tickets.list_service_tickets(crm) == []


def test_moves_record_response_and_arrival_and_resolving_needs_a_visit(crm):
    staff(crm)
    _household(crm, "H1", "rural", "H-1")
    t = tickets.open_service_ticket(crm, "H-1", "no power", type="fault_repair")
    tid = t["ticket_id"]
    crm.clock.advance(minutes=10)
    moved = crm.tickets.move(tid, "dispatched")
    assert moved.due_at == t["on_site_due"]  # now the on-site deadline runs
    with pytest.raises(TransitionError, match="move it to on_site"):
        crm.tickets.move(tid, "resolved")
    crm.clock.advance(minutes=70)
    crm.tickets.move(tid, "on_site")
    crm.clock.advance(minutes=30)
    crm.tickets.move(tid, "resolved")
    s = tickets.service_ticket(crm, tid)
    assert s["responded_at"] == T0 + dt.timedelta(minutes=10)
    assert s["on_site_at"] == T0 + dt.timedelta(minutes=80)
    assert s["resolved_at"] == T0 + dt.timedelta(minutes=110)
    crm.tickets.move(tid, "revisit")
    crm.tickets.move(tid, "closed")
    assert tickets.service_ticket(crm, tid)["closed_at"] is not None
    # an enquiry can be answered at once: that is its response
    e = tickets.open_service_ticket(crm, "H-1", "when is my bill due?", type="enquiry")
    crm.tickets.move(e["ticket_id"], "resolved")
    assert tickets.service_ticket(crm, e["ticket_id"])["responded_at"] == crm.now()


def _escalations(crm, tid):
    with crm.transaction(write=False):
        return [
            (e.deadline, e.level, e.to_staff_id)
            for e in crm.db.execute(
                select(escalations).where(escalations.c.ticket_id == tid).order_by(escalations.c.id)
            )
        ]


def test_escalation_goes_to_the_supervisor_then_the_next_level_once_each(crm):
    staff(crm)
    _household(crm, "H1", "urban", "H-1")
    t = tickets.open_service_ticket(crm, "H-1", "no power", type="fault_repair", owner="zhang")
    tid = t["ticket_id"]
    li, boss = crm.staff.get("li").id, crm.staff.get("boss").id
    assert (
        crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(minutes=15))[0]["summary"][
            "escalated"
        ]
        == 0
    )
    # 20 min: response deadline (09:15) missed -> level 1, the owner's supervisor
    r = crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(minutes=20))[0]["summary"]
    assert r["escalations"] == [{"ticket_id": tid, "deadline": "response", "level": 1, "to": "li"}]
    # the same time again: nothing new (idempotent)
    again = crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(minutes=20))[0]["summary"]
    assert again["escalated"] == 0
    # 50 min: on-site deadline (09:45) missed too -> level 1 for it
    crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(minutes=50))
    # 80 min: response is 65 min late -> level 2, the supervisor's supervisor
    crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(minutes=80))
    assert _escalations(crm, tid) == [
        ("response", 1, li),
        ("on_site", 1, li),
        ("response", 2, boss),
    ]
    # far later: level 3 does not exist above boss -> reported, not recorded
    r = crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(hours=5))[0]["summary"]
    assert {"ticket_id": tid, "deadline": "response", "level": 3} in r["no_higher_level"]
    assert len(_escalations(crm, tid)) == 4  # on_site level 2
    # reminders for the supervisors, one per escalation
    texts = [rm.text for rm in crm.tickets.due_reminders(at=T0 + dt.timedelta(days=1), staff="li")]
    assert (
        len(texts) == 2
        and "escalation level 1" in texts[0]
        and "missed its response deadline" in texts[0]
    )


def test_escalation_skips_levels_never_even_when_late(crm):
    staff(crm)
    _household(crm, "H1", "urban", "H-1")
    t = tickets.open_service_ticket(crm, "H-1", "no power", type="fault_repair", owner="zhang")
    crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(hours=3))
    levels = [(d, lv) for d, lv, _ in _escalations(crm, t["ticket_id"])]
    assert levels == [("response", 1), ("response", 2), ("on_site", 1), ("on_site", 2)]
    # a ticket answered and reached in time is never escalated
    ok = tickets.open_service_ticket(crm, "H-1", "flicker", type="fault_repair", owner="zhang")
    crm.clock.advance(minutes=5)
    crm.tickets.move(ok["ticket_id"], "dispatched")
    crm.clock.advance(minutes=30)
    crm.tickets.move(ok["ticket_id"], "on_site")
    crm.jobs.run(["utility.escalate"], at=T0 + dt.timedelta(hours=6))
    assert _escalations(crm, ok["ticket_id"]) == []


def test_compliance_report_per_type_and_period(crm, crm_cli):
    staff(crm)
    _household(crm, "H1", "urban", "H-1")
    fast = tickets.open_service_ticket(crm, "H-1", "fast", type="fault_repair", owner="zhang")
    slow = tickets.open_service_ticket(crm, "H-1", "slow", type="fault_repair", owner="zhang")
    tickets.open_service_ticket(crm, "H-1", "question", type="enquiry", owner="zhang")
    crm.clock.advance(minutes=10)
    crm.tickets.move(fast["ticket_id"], "dispatched")
    crm.clock.advance(minutes=20)
    crm.tickets.move(fast["ticket_id"], "on_site")  # 30 min: within 45
    crm.tickets.move(slow["ticket_id"], "dispatched")  # 30 min: response late (15)
    crm.clock.set(T0 + dt.timedelta(days=40))
    tickets.open_service_ticket(crm, "H-1", "next month", type="fault_repair", owner="zhang")
    crm.clock.set(T0 + dt.timedelta(hours=2))
    report = tickets.compliance(crm, dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    fr = report["types"]["fault_repair"]
    assert fr["tickets"] == 2
    assert fr["response"] == {"met": 1, "missed": 1, "pending": 0, "rate": 0.5}
    assert fr["on_site"] == {"met": 1, "missed": 1, "pending": 0, "rate": 0.5}
    assert report["types"]["enquiry"]["response"] == {
        "met": 0,
        "missed": 0,
        "pending": 1,
        "rate": None,
    }
    assert report["types"]["enquiry"]["on_site"]["rate"] is None
    r = crm_cli("utility", "compliance", "--from", "2026-01-01", "--to", "2026-01-31", "--json")
    assert r.exit_code == 0 and r.json()["types"]["fault_repair"]["tickets"] == 2
    assert (
        crm_cli("utility", "compliance", "--from", "2026-02-01", "--to", "2026-01-01").exit_code
        == 1
    )


def test_reps_see_only_their_customers_tickets_in_reports(crm):
    staff(crm)
    _household(crm, "H1", "urban", "H-1")  # owned by zhang
    c = crm.customers.add("Other", external_id="H-2", owner="chen")
    accounts.add_point(
        crm,
        c,
        meter_no="H2",
        address="x",
        voltage_level="220V",
        customer_class="residential",
        area="urban",
    )
    tickets.open_service_ticket(crm, "H-1", "a", type="fault_repair")
    tickets.open_service_ticket(crm, "H-2", "b", type="complaint")
    zhang = crm.as_("zhang")
    assert [t["type"] for t in tickets.list_service_tickets(zhang)] == ["fault_repair"]
    assert set(tickets.compliance(zhang, dt.date(2026, 1, 1), dt.date(2026, 1, 31))["types"]) == {
        "fault_repair"
    }
    with crm.transaction(write=False):
        assert crm.db.execute(select(func.count()).select_from(service_tickets)).scalar() == 2


def test_cli_ticket_open_list_show_and_escalate(crm, crm_cli):
    staff(crm)
    mill(crm, owner="zhang")
    r = crm_cli(
        "utility",
        "ticket",
        "open",
        "U-1",
        "--type",
        "fault_repair",
        "--subject",
        "transformer trip",
        "--meter",
        "M1",
        "--channel",
        "hotline",
        "--json",
    )
    assert r.exit_code == 0, r
    tid = r.json()["ticket_id"]
    assert r.json()["on_site_due"] == "2026-01-05T09:45:00"
    assert crm_cli("utility", "ticket", "list", "--open", "--json").json()[0]["ticket_id"] == tid
    e = crm_cli("jobs", "run", "utility.escalate", "--at", "2026-01-05T09:20", "--json")
    assert e.exit_code == 0 and e.json()[0]["summary"]["escalated"] == 1
    shown = crm_cli("utility", "ticket", "show", str(tid), "--json").json()
    assert shown["escalations"][0]["level"] == 1
    bad = crm_cli(
        "utility",
        "ticket",
        "open",
        "U-1",
        "--type",
        "fault_repair",
        "--subject",
        "x",
        "--meter",
        "NOPE",
    )
    assert bad.exit_code == 1 and "meter 'NOPE' not found" in bad.stderr
