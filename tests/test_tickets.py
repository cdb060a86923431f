"""Tickets through the default workflow; reminders."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import NotFound, TransitionError, ValidationError


def test_default_workflow_verify_to_archive_with_owners_and_due_times(crm, crm_clock):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("li", "Li", roles=["supervisor"])
    c = crm.customers.add("Ann", owner="zhang")
    t = crm.tickets.open(c, "rude cashier")
    assert (t.state, t.owner_id) == ("verify", crm.staff.get("zhang").id)
    assert t.due_at == crm_clock.now() + dt.timedelta(hours=24)
    for state, owner in [
        ("review", "li"),
        ("rectify", "zhang"),
        ("revisit", "zhang"),
        ("archive", None),
    ]:
        t = crm.tickets.move(t, state, owner=owner)
    assert t.state == "archive" and t.closed_at is not None
    history = crm.tickets.history(t)
    assert [(m.from_state, m.to_state) for m in history] == [
        (None, "verify"),
        ("verify", "review"),
        ("review", "rectify"),
        ("rectify", "revisit"),
        ("revisit", "archive"),
    ]
    assert history[1].owner_id == crm.staff.get("li").id


def test_skipping_a_step_is_refused(crm):
    c = crm.customers.add("Ann")
    t = crm.tickets.open(c, "x")
    with pytest.raises(
        TransitionError, match=r"cannot move from 'verify' to 'rectify'; allowed: \['review'\]"
    ):
        crm.tickets.move(t, "rectify")
    assert crm.tickets.get(t.id).state == "verify"


def test_closed_ticket_cannot_move(crm):
    c = crm.customers.add("Ann")
    t = crm.tickets.open(c, "x")
    for s in ("review", "rectify", "revisit", "archive"):
        crm.tickets.move(t, s)
    with pytest.raises(TransitionError, match="closed"):
        crm.tickets.move(t, "verify")


def test_configured_workflow(crm_factory):
    crm = crm_factory(
        config={
            "crm": {"workflows": {"quick": {"states": ["open", "done"], "due_hours": {"open": 2}}}}
        }
    )
    c = crm.customers.add("Ann")
    t = crm.tickets.open(c, "question", workflow="quick", kind="enquiry")
    assert crm.tickets.move(t, "done").closed_at is not None
    with pytest.raises(ValidationError, match="workflow 'nope' is not defined"):
        crm.tickets.open(c, "x", workflow="nope")


def test_unknown_ticket(crm):
    with pytest.raises(NotFound, match="ticket 99 not found"):
        crm.tickets.get(99)


def test_reminders_due_and_done(crm, crm_clock):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    c = crm.customers.add("Ann")
    now = crm_clock.now()
    r1 = crm.tickets.add_reminder("zhang", "call Ann", now + dt.timedelta(hours=1), customer=c)
    crm.tickets.add_reminder("zhang", "later", now + dt.timedelta(days=3))
    assert crm.tickets.due_reminders(at=now) == []
    assert [r.id for r in crm.tickets.due_reminders(at=now + dt.timedelta(hours=2))] == [r1.id]
    crm.tickets.complete_reminder(r1.id, outcome="will come on Friday")
    assert crm.tickets.due_reminders(at=now + dt.timedelta(hours=2)) == []
    assert any("will come on Friday" in e.summary for e in crm.records.timeline(c))
    with pytest.raises(TransitionError, match="already done"):
        crm.tickets.complete_reminder(r1.id)


def test_reminder_key_makes_it_idempotent(crm, crm_clock):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    a = crm.tickets.add_reminder("zhang", "x", crm_clock.now(), key="job:1")
    b = crm.tickets.add_reminder("zhang", "x", crm_clock.now(), key="job:1")
    assert a.id == b.id and len(crm.tickets.due_reminders()) == 1


def test_a_step_may_be_back_dated_but_not_before_the_last(crm, crm_clock):
    c = crm.customers.add("Ann")
    t = crm.tickets.open(c, "x", at=crm_clock.now() - dt.timedelta(hours=5))
    moved = crm.tickets.move(t, "review", at=crm_clock.now() - dt.timedelta(hours=2))
    assert crm.tickets.history(moved)[-1].at == crm_clock.now() - dt.timedelta(hours=2)
    with pytest.raises(ValidationError, match="cannot precede the last one"):
        crm.tickets.move(t, "rectify", at=crm_clock.now() - dt.timedelta(hours=3))


def test_the_owner_of_an_open_ticket_may_work_on_its_customer(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("fixer", "Fixer", roles=["rep"])
    c = crm.customers.add("Ann", owner="zhang")
    t = crm.tickets.open(c, "leak", owner="fixer")
    fixer = crm.as_("fixer")
    assert fixer.tickets.move(t, "review").state == "review"
    for state in ("rectify", "revisit", "archive"):
        crm.tickets.move(t, state)
    from crmcore import NotFound

    with pytest.raises(NotFound):
        fixer.customers.get(c.id)  # closed: access ends with the work
