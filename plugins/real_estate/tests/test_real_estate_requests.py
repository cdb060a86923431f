"""The after-sales centre: requests as tickets, dispatch, deadlines, escalation,
revisit, reopen."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_real_estate import places
from crm_real_estate import requests as req
from crm_real_estate.tables import requests as requests_table
from crm_real_estate.tables import revisits as revisits_table
from real_estate_helpers import count, estate, leak

from crmcore import Conflict, NotFound, TransitionError, ValidationError
from crmcore.schema import reminders, tickets

pytestmark = pytest.mark.crm(plugins=["real_estate"])
MGMT = {"plugins": {"real_estate": {"management_staff": ["boss"]}}}


# -- intake ------------------------------------------------------------------------------------
def test_every_channel_lands_as_a_ticket_on_the_owners_timeline(crm):
    estate(crm)
    for channel in ("phone", "visit", "fax", "online"):
        r = leak(crm, channel=channel, text="kitchen pipe leaking")
        t = crm.tickets.get(r["ticket_id"])
        assert (t.workflow, t.kind, t.customer_id) == (
            "real_estate.repair",
            "repair",
            r["customer_id"],
        )
        assert t.data["real_estate_request"] and t.source == "real_estate"
        assert f"({channel})" in t.subject and "JD/A1/1201" in t.subject
        tl = crm.records.timeline("C-1")
        assert any(e.kind == "ticket" and f"ticket {t.id} opened" in e.summary for e in tl)
        assert r["channel"] == channel


def test_complaints_and_common_parts_requests(crm):
    estate(crm)
    c = req.open_request(
        crm,
        "C-3",
        building="JD/A2",
        category="service",
        channel="visit",
        text="guards let strangers in",
        kind="complaint",
    )
    assert c["kind"] == "complaint" and c["place"] == "JD/A2 (common parts)"
    assert c["warranty"] == "n/a" and c["team"] is None and c["state"] == "received"
    assert crm.tickets.get(c["ticket_id"]).kind == "complaint"


def test_bad_requests_are_refused_and_nothing_is_written(crm):
    estate(crm)
    for kwargs, message in [
        ({"channel": "pigeon"}, "channel 'pigeon': expected one of phone, visit, fax, online"),
        ({"category": "roof"}, "category 'roof': expected one of structure"),
        ({"urgency": "asap"}, "urgency 'asap': expected one of emergency, urgent, normal"),
        ({"text": "  "}, "request text: required"),
        ({"kind": "praise"}, "kind 'praise'"),
        ({"unit": "JD/A1/9999"}, "unit 'JD/A1/9999' not found"),
        ({"unit": "JD/A1/1202"}, "is not an owner, co-owner or tenant of JD/A1/1202"),
    ]:
        with pytest.raises((ValidationError, NotFound), match=message):
            leak(crm, **kwargs)
    assert count(crm, requests_table) == 0 and count(crm, tickets) == 0


def test_unit_and_building_are_exclusive(crm):
    estate(crm)
    with pytest.raises(ValidationError, match="exactly one of"):
        req.open_request(
            crm,
            "C-1",
            unit="JD/A1/1201",
            building="JD/A1",
            category="plumbing",
            channel="phone",
            text="x",
        )


def test_a_former_owner_can_no_longer_file_but_a_tenant_can(crm):
    estate(crm)
    link = places.list_owners(crm, unit="JD/A1/1201")[0]
    places.end_owner(crm, link["id"])
    with pytest.raises(ValidationError, match="not an owner"):
        leak(crm)
    assert leak(crm, customer="C-3", unit="JD/A2/0101")["customer_id"] == crm.customers.get("C-3").id


def test_tickets_of_the_workflow_cannot_bypass_the_centre(crm):
    estate(crm)
    with pytest.raises(ValidationError, match="opened with 'crm real-estate request open'"):
        crm.tickets.open("C-1", "leak", workflow="real_estate.repair")
    assert count(crm, tickets) == 0


# -- dispatch and deadlines ----------------------------------------------------------------------
def test_dispatch_by_category_and_building_specific_cover_wins(crm):
    estate(crm)
    a1 = leak(crm)
    a2 = leak(crm, customer="C-3", unit="JD/A2/0101")
    water = leak(crm, customer="C-3", unit="JD/A2/0101", category="waterproofing")
    assert (a1["team"], a2["team"], water["team"]) == ("PLB", "A2P", "PLB")
    assert a1["state"] == "dispatched"
    t = crm.tickets.get(a2["ticket_id"])
    assert t.owner_id == crm.staff.get("sun").id and t.state == "dispatched"


def test_uncovered_request_waits_then_is_dispatched_by_hand(crm):
    estate(crm)
    r = leak(crm, category="electrical")
    assert (r["state"], r["team"]) == ("received", None)
    with pytest.raises(ValidationError, match="no maintenance team covers electrical in JD/A1"):
        req.dispatch(crm, r["id"])
    with pytest.raises(TransitionError, match="has no maintenance team"):
        crm.tickets.move(r["ticket_id"], "dispatched")
    assert req.get_request(crm, r["id"])["state"] == "received"
    r = req.dispatch(crm, r["id"], "PLB")
    assert (r["state"], r["team"]) == ("dispatched", "PLB")
    with pytest.raises(TransitionError, match="only new requests are dispatched"):
        req.dispatch(crm, r["id"], "A2P")


def test_a_second_team_cannot_take_the_same_cover(crm):
    estate(crm)
    with pytest.raises(
        Conflict, match="plumbing in every building is already covered by team 'PLB'"
    ):
        places.cover(crm, "A2P", "plumbing")
    with pytest.raises(ValidationError, match="category 'roof'"):
        places.cover(crm, "A2P", "roof")


@pytest.mark.crm(
    plugins=["real_estate"],
    config={
        "plugins": {
            "real_estate": {
                "deadline_hours": {"emergency": 2, "low": 240},
                "default_urgency": "low",
            }
        }
    },
)
def test_deadline_by_urgency_from_config(crm, crm_clock):
    estate(crm)
    now = crm_clock.now()
    assert leak(crm, urgency="emergency")["deadline_at"] == now + dt.timedelta(hours=2)
    assert leak(crm, urgency="urgent")["deadline_at"] == now + dt.timedelta(hours=24)
    r = leak(crm)
    assert r["urgency"] == "low" and r["deadline_at"] == now + dt.timedelta(hours=240)
    assert crm.tickets.get(r["ticket_id"]).due_at == r["deadline_at"]


def test_backdated_report_counts_the_deadline_from_the_report(crm, crm_clock):
    estate(crm)
    r = leak(crm, at=crm_clock.now() - dt.timedelta(hours=80))
    assert r["deadline_at"] == crm_clock.now() - dt.timedelta(hours=8)
    assert [x["id"] for x in req.list_requests(crm, overdue=True)] == [r["id"]]


# -- escalation ------------------------------------------------------------------------------
@pytest.mark.crm(plugins=["real_estate"], config=MGMT)
def test_escalation_job_levels_and_idempotence(crm, crm_clock):
    estate(crm)
    r = leak(crm, urgency="urgent")  # due in 24 h; PLB leader wang, supervisor li
    early = crm.jobs.run(["real_estate.escalate"], at=crm_clock.now() + dt.timedelta(hours=23))
    assert early[0]["summary"]["escalated"] == 0
    at1 = crm_clock.now() + dt.timedelta(hours=25)
    for _ in range(2):  # the same at twice: one reminder
        crm.jobs.run(["real_estate.escalate"], at=at1)
    rems = crm.tickets.due_reminders(at=at1 + dt.timedelta(days=9))
    assert [(x.staff_id, "level 1" in x.text) for x in rems] == [(crm.staff.get("li").id, True)]
    assert req.get_request(crm, r["id"])["escalation_level"] == 1
    at2 = crm_clock.now() + dt.timedelta(hours=24 + 24)
    crm.jobs.run(["real_estate.escalate"], at=at2)
    crm.jobs.run(["real_estate.escalate"], at=at2 + dt.timedelta(hours=5))
    rems = crm.tickets.due_reminders(at=at2 + dt.timedelta(days=9))
    assert [x.staff_id for x in rems] == [crm.staff.get("li").id, crm.staff.get("boss").id]
    assert "level 2" in rems[1].text and "24 h past its deadline" in rems[1].text
    assert crm.tickets.get(r["ticket_id"]).data["escalation_level"] == 2


@pytest.mark.crm(plugins=["real_estate"], config=MGMT)
def test_completed_or_undispatched_requests_escalate_correctly(crm, crm_clock):
    estate(crm)
    done = leak(crm, urgency="emergency")
    req.complete(crm, done["id"])
    waiting = leak(crm, category="electrical", urgency="emergency")  # no team: management
    out = crm.jobs.run(["real_estate.escalate"], at=crm_clock.now() + dt.timedelta(hours=5))
    assert [x["request"] for x in out[0]["summary"]["requests"]] == [waiting["id"]]
    rems = crm.tickets.due_reminders(at=crm_clock.now() + dt.timedelta(days=1))
    assert [x.staff_id for x in rems if "escalation" in x.text] == [crm.staff.get("boss").id]


# -- work, revisit, reopen ------------------------------------------------------------------------
def test_completion_schedules_the_revisit_and_the_revisit_closes(crm, crm_clock, crm_outbox):
    estate(crm)
    r = leak(crm)
    assert req.start(crm, r["id"])["state"] == "in_progress"
    crm_clock.advance(hours=5)
    r = req.complete(crm, r["id"], note="joint replaced")
    assert (r["state"], r["on_time"]) == ("completed", True)
    assert crm.tickets.get(r["ticket_id"]).due_at == crm_clock.now() + dt.timedelta(hours=24)
    rem = crm.tickets.due_reminders(at=crm_clock.now() + dt.timedelta(hours=24), staff="zhang")
    assert len(rem) == 1 and f"revisit Wu Fang about request {r['id']}" in rem[0].text
    bodies = [m.body for m in crm_outbox.queued("sms")]
    assert any("已受理" in b for b in bodies) and any("已处理完毕" in b for b in bodies)
    crm_clock.advance(hours=20)
    r = req.revisit(crm, r["id"], satisfaction=4, note="dry now")
    assert (r["state"], r["satisfaction"], r["reopen_count"]) == ("closed", 4, 0)
    assert crm.tickets.get(r["ticket_id"]).closed_at == crm_clock.now()
    survey = [e for e in crm.records.timeline("C-1") if e.kind == "survey"]
    assert "satisfaction 4/5, fixed - dry now" in survey[0].summary
    history = [(m["from"], m["to"]) for m in req.get_request(crm, r["id"])["history"]]
    assert history[-3:] == [
        ("in_progress", "completed"),
        ("completed", "revisit"),
        ("revisit", "closed"),
    ]


@pytest.mark.crm(
    plugins=["real_estate"],
    config={"plugins": {"real_estate": {"revisit_staff": "li", "revisit_after_hours": 48}}},
)
def test_revisit_staff_and_delay_from_config(crm, crm_clock):
    estate(crm)
    r = leak(crm)
    req.complete(crm, r["id"])
    rem = crm.tickets.due_reminders(at=crm_clock.now() + dt.timedelta(hours=48), staff="li")
    assert len(rem) == 1 and rem[0].due_at == crm_clock.now() + dt.timedelta(hours=48)


def test_closing_without_a_revisit_is_refused(crm):
    estate(crm)
    r = leak(crm)
    req.complete(crm, r["id"])
    crm.tickets.move(r["ticket_id"], "revisit")
    with pytest.raises(TransitionError, match="record the owner revisit first"):
        crm.tickets.move(r["ticket_id"], "closed")
    assert req.get_request(crm, r["id"])["state"] == "revisit"
    assert req.revisit(crm, r["id"], satisfaction=5)["state"] == "closed"


def test_revisit_refusals_write_nothing(crm):
    estate(crm)
    r = leak(crm)
    with pytest.raises(TransitionError, match="the owner revisit follows completion"):
        req.revisit(crm, r["id"], satisfaction=3)
    req.complete(crm, r["id"])
    for bad in (0, 6, True):
        with pytest.raises(ValidationError, match="expected 1 to 5"):
            req.revisit(crm, r["id"], satisfaction=bad)
    assert count(crm, revisits_table) == 0
    assert req.get_request(crm, r["id"])["state"] == "completed"


def test_reopen_goes_back_to_the_same_team_and_counts_against_it(crm, crm_clock):
    estate(crm)
    r = leak(crm, customer="C-3", unit="JD/A2/0101", urgency="urgent")
    req.complete(crm, r["id"])
    crm_clock.advance(hours=30)
    r = req.revisit(crm, r["id"], satisfaction=2, fixed=False, note="still dripping")
    assert (r["state"], r["team"], r["reopen_count"]) == ("dispatched", "A2P", 1)
    assert r["deadline_at"] == crm_clock.now() + dt.timedelta(hours=24)
    assert r["on_time"] is None and r["completed_at"] is None
    t = crm.tickets.get(r["ticket_id"])
    assert t.owner_id == crm.staff.get("sun").id and t.due_at == r["deadline_at"]
    crm_clock.advance(hours=2)
    r = req.complete(crm, r["id"])
    assert r["on_time"] is False  # in time, but a reopened request never counts as on time
    r = req.revisit(crm, r["id"], satisfaction=5)
    assert (r["state"], r["reopen_count"], r["satisfaction"]) == ("closed", 1, 5)
    rounds = [
        (v["round"], v["satisfaction"], v["fixed"])
        for v in req.get_request(crm, r["id"])["revisits"]
    ]
    assert rounds == [(0, 2, False), (1, 5, True)]


def test_escalation_restarts_after_reopen(crm, crm_clock):
    estate(crm)
    r = leak(crm, urgency="emergency")
    crm.jobs.run(["real_estate.escalate"], at=crm_clock.now() + dt.timedelta(hours=5))
    req.complete(crm, r["id"])
    req.revisit(crm, r["id"], satisfaction=1, fixed=False)
    assert req.get_request(crm, r["id"])["escalation_level"] == 0
    crm.jobs.run(["real_estate.escalate"], at=crm_clock.now() + dt.timedelta(hours=5))
    li = [x for x in crm.tickets.due_reminders(at=crm_clock.now() + dt.timedelta(days=1), staff="li")]
    assert len(li) == 2


def test_escalation_reminders_are_keyed(crm, crm_clock):
    estate(crm)
    leak(crm, urgency="emergency")
    at = crm_clock.now() + dt.timedelta(hours=5)
    crm.jobs.run(["real_estate.escalate"], at=at)
    assert count(crm, reminders) == 1
    crm.jobs.run(["real_estate.escalate"], at=at)
    assert count(crm, reminders) == 1


def test_departing_team_leader_hands_the_team_over(crm):
    estate(crm)
    crm.staff.leave("wang", handover_to="li")
    assert [t["leader"] for t in places.list_teams(crm) if t["code"] == "PLB"] == ["li"]
    assert leak(crm)["team"] == "PLB"
    assert crm.tickets.get(leak(crm)["ticket_id"]).owner_id == crm.staff.get("li").id


def test_forget_blanks_request_text_keeps_statistics(crm):
    estate(crm)
    r = leak(crm, text="leak at Wu Fang's, call 139...")
    req.complete(crm, r["id"])
    req.revisit(crm, r["id"], satisfaction=4, note="call her husband")
    crm.customers.forget("C-1")
    got = req.get_request(crm, r["id"])
    assert got["description"] == "[erased]" and got["revisits"][0]["note"] is None
    assert got["satisfaction"] == 4 and got["category"] == "plumbing"
