"""Tickets through the default workflow; reminders."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import NotFound, TransitionError, ValidationError


def test_default_workflow_verify_to_archive_with_owners_and_due_times(crm, crm_clock):
    crm.add_staff("zhang", "Zhang", roles=["rep"])
    crm.add_staff("li", "Li", roles=["supervisor"])
    c = crm.add_customer("Ann", owner="zhang")
    t = crm.open_ticket(c, "rude cashier")
    assert (t.state, t.owner_id) == ("verify", crm.get_staff("zhang").id)
    assert t.due_at == crm_clock.now() + dt.timedelta(hours=24)
    for state, owner in [
        ("review", "li"),
        ("rectify", "zhang"),
        ("revisit", "zhang"),
        ("archive", None),
    ]:
        t = crm.move_ticket(t, state, owner=owner)
    assert t.state == "archive" and t.closed_at is not None
    history = crm.ticket_history(t)
    assert [(m.from_state, m.to_state) for m in history] == [
        (None, "verify"),
        ("verify", "review"),
        ("review", "rectify"),
        ("rectify", "revisit"),
        ("revisit", "archive"),
    ]
    assert history[1].owner_id == crm.get_staff("li").id


def test_skipping_a_step_is_refused(crm):
    c = crm.add_customer("Ann")
    t = crm.open_ticket(c, "x")
    with pytest.raises(
        TransitionError, match=r"cannot move from 'verify' to 'rectify'; allowed: \['review'\]"
    ):
        crm.move_ticket(t, "rectify")
    assert crm.get_ticket(t.id).state == "verify"


def test_closed_ticket_cannot_move(crm):
    c = crm.add_customer("Ann")
    t = crm.open_ticket(c, "x")
    for s in ("review", "rectify", "revisit", "archive"):
        crm.move_ticket(t, s)
    with pytest.raises(TransitionError, match="closed"):
        crm.move_ticket(t, "verify")


def test_configured_workflow(crm_factory):
    crm = crm_factory(
        config={
            "crm": {"workflows": {"quick": {"states": ["open", "done"], "due_hours": {"open": 2}}}}
        }
    )
    c = crm.add_customer("Ann")
    t = crm.open_ticket(c, "question", workflow="quick", kind="enquiry")
    assert crm.move_ticket(t, "done").closed_at is not None
    with pytest.raises(ValidationError, match="workflow 'nope' is not defined"):
        crm.open_ticket(c, "x", workflow="nope")


def test_unknown_ticket(crm):
    with pytest.raises(NotFound, match="ticket 99 not found"):
        crm.get_ticket(99)


def test_reminders_due_and_done(crm, crm_clock):
    crm.add_staff("zhang", "Zhang", roles=["rep"])
    c = crm.add_customer("Ann")
    now = crm_clock.now()
    r1 = crm.add_reminder("zhang", "call Ann", now + dt.timedelta(hours=1), customer=c)
    crm.add_reminder("zhang", "later", now + dt.timedelta(days=3))
    assert crm.due_reminders(at=now) == []
    assert [r.id for r in crm.due_reminders(at=now + dt.timedelta(hours=2))] == [r1.id]
    crm.complete_reminder(r1.id, outcome="will come on Friday")
    assert crm.due_reminders(at=now + dt.timedelta(hours=2)) == []
    assert any("will come on Friday" in e.summary for e in crm.timeline(c))
    with pytest.raises(TransitionError, match="already done"):
        crm.complete_reminder(r1.id)


def test_reminder_key_makes_it_idempotent(crm, crm_clock):
    crm.add_staff("zhang", "Zhang", roles=["rep"])
    a = crm.add_reminder("zhang", "x", crm_clock.now(), key="job:1")
    b = crm.add_reminder("zhang", "x", crm_clock.now(), key="job:1")
    assert a.id == b.id and len(crm.due_reminders()) == 1


def test_a_step_may_be_back_dated_but_not_before_the_last(crm, crm_clock):
    c = crm.add_customer("Ann")
    t = crm.open_ticket(c, "x", at=crm_clock.now() - dt.timedelta(hours=5))
    moved = crm.move_ticket(t, "review", at=crm_clock.now() - dt.timedelta(hours=2))
    assert crm.ticket_history(moved)[-1].at == crm_clock.now() - dt.timedelta(hours=2)
    with pytest.raises(ValidationError, match="cannot precede the last one"):
        crm.move_ticket(t, "rectify", at=crm_clock.now() - dt.timedelta(hours=3))


def test_the_owner_of_an_open_ticket_may_work_on_its_customer(crm):
    crm.add_staff("zhang", "Zhang", roles=["rep"])
    crm.add_staff("fixer", "Fixer", roles=["rep"])
    c = crm.add_customer("Ann", owner="zhang")
    t = crm.open_ticket(c, "leak", owner="fixer")
    fixer = crm.as_("fixer")
    assert fixer.move_ticket(t, "review").state == "review"
    for state in ("rectify", "revisit", "archive"):
        crm.move_ticket(t, state)
    from crmcore import NotFound

    with pytest.raises(NotFound):
        fixer.get_customer(c.id)  # closed: access ends with the work
