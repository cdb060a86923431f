"""Follow-ups: recurring reminders make the next when done; playbooks create a
reminder per step for the owner and are cancelled when the customer responds."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import AccessDenied, ConfigError, Conflict, NotFound, ValidationError, hookimpl
from crmcore.config import from_dict
from crmcore.followups import Playbook

NOW = dt.datetime(2026, 1, 5, 9, 0)
WIN_BACK = {
    "description": "call, text, visit",
    "steps": [
        {"day": 0, "action": "call", "text": "ask why"},
        {"day": 3, "action": "sms"},
        {"day": 14, "action": "visit"},
    ],
}
CONFIG = {
    "crm": {
        "followups": {
            "playbooks": {"win-back": WIN_BACK},
            "start_on_stage": {"declining": "win-back"},
        },
        "lifecycle": {
            "rules": [
                {
                    "name": "declining-90",
                    "when": "no_purchase",
                    "days": 90,
                    "from": ["stable"],
                    "to": "declining",
                }
            ]
        },
    }
}


def _team(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    crm.staff.add("audit", "Auditor", roles=["auditor"])


def _open_steps(crm, customer):
    return [
        r
        for r in crm.tickets.due_reminders(customer=customer, include_done=True)
        if r.source == "playbook" and r.done_at is None
    ]


# -- recurring reminders ----------------------------------------------------------


def test_a_recurring_reminder_done_makes_the_next(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    first = crm.tickets.add_reminder("zhang", "monthly check", NOW, customer=c, every="30d")
    crm.tickets.complete_reminder(first.id, outcome="fine")
    nxt = crm.tickets.next_reminder(first.id)
    assert nxt is not None and nxt.due_at == NOW + dt.timedelta(days=30)
    assert nxt.text == "monthly check" and nxt.staff_id == first.staff_id
    crm.tickets.complete_reminder(nxt.id)
    assert crm.tickets.next_reminder(nxt.id).due_at == NOW + dt.timedelta(days=60)


def test_a_one_off_reminder_makes_no_next(crm):
    _team(crm)
    once = crm.tickets.add_reminder("zhang", "once", NOW)
    crm.tickets.complete_reminder(once.id)
    assert crm.tickets.next_reminder(once.id) is None


def test_a_monthly_reminder_keeps_the_day_or_the_month_end(crm, crm_clock):
    _team(crm)
    crm_clock.set(dt.datetime(2026, 1, 31, 8))
    r = crm.tickets.add_reminder("zhang", "month end", dt.datetime(2026, 1, 31, 9), every="1m")
    crm.tickets.complete_reminder(r.id)
    assert crm.tickets.next_reminder(r.id).due_at == dt.datetime(2026, 2, 28, 9)


def test_a_late_done_recurring_reminder_skips_to_the_next_future_time(crm, crm_clock):
    _team(crm)
    r = crm.tickets.add_reminder("zhang", "weekly", NOW, every="1w")
    crm_clock.set(NOW + dt.timedelta(days=16))
    crm.tickets.complete_reminder(r.id)
    assert crm.tickets.next_reminder(r.id).due_at == NOW + dt.timedelta(days=21)


@pytest.mark.parametrize("every", ["30", "0d", "3y", "d", "-1d"])
def test_a_bad_recurrence_is_refused_and_nothing_written(crm, every):
    _team(crm)
    with pytest.raises(ValidationError, match="--every"):
        crm.tickets.add_reminder("zhang", "x", NOW, every=every)
    assert crm.tickets.due_reminders(at=NOW + dt.timedelta(days=400)) == []


def test_a_rep_may_not_add_a_recurring_reminder_on_another_reps_customer(crm):
    _team(crm)
    theirs = crm.customers.add("Theirs", owner="wang")
    with pytest.raises(NotFound):
        crm.as_("zhang").tickets.add_reminder("zhang", "x", NOW, customer=theirs.id, every="30d")


def test_cli_reminder_add_every_json(crm, crm_cli):
    _team(crm)
    out = crm_cli(
        "reminder",
        "add",
        "--staff",
        "zhang",
        "--text",
        "t",
        "--due",
        NOW.isoformat(),
        "--every",
        "2w",
        "--json",
    )
    assert out.exit_code == 0, out
    done = crm_cli("reminder", "done", str(out.json()["id"]), "--json")
    assert done.exit_code == 0, done
    assert crm.tickets.next_reminder(out.json()["id"]).due_at == NOW + dt.timedelta(days=14)
    bad = crm_cli(
        "reminder",
        "add",
        "--staff",
        "zhang",
        "--text",
        "t",
        "--due",
        NOW.isoformat(),
        "--every",
        "often",
    )
    assert bad.exit_code == 1 and "--every 'often'" in bad.stderr


# -- playbooks ----------------------------------------------------------------------


@pytest.mark.crm(config=CONFIG)
def test_starting_a_playbook_makes_a_reminder_per_step_for_the_owner(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    run = crm.as_("zhang").lifecycle.start_playbook("win-back", c.id)
    steps = _open_steps(crm, c)
    assert [s.due_at for s in steps] == [
        NOW,
        NOW + dt.timedelta(days=3),
        NOW + dt.timedelta(days=14),
    ]
    assert {s.staff_id for s in steps} == {crm.staff.get("zhang").id}
    assert steps[0].text == "playbook win-back step 1/3: call — ask why"
    assert run["owner"] == "zhang" and run["trigger"] == "explicit"
    assert "playbook_started" in [e.kind for e in crm.records.timeline(c)]
    with pytest.raises(Conflict, match="already running"):
        crm.lifecycle.start_playbook("win-back", c.id)


@pytest.mark.crm(config=CONFIG)
def test_a_rep_may_not_start_a_playbook_for_another_reps_customer(crm):
    _team(crm)
    theirs = crm.customers.add("Theirs", owner="wang")
    with pytest.raises(NotFound):
        crm.as_("zhang").lifecycle.start_playbook("win-back", theirs.id)
    with pytest.raises(AccessDenied):
        crm.as_("audit").lifecycle.start_playbook("win-back", theirs.id)
    assert _open_steps(crm, theirs) == []


@pytest.mark.crm(config=CONFIG)
def test_an_unknown_playbook_is_not_found(crm):
    c = crm.customers.add("Ann")
    with pytest.raises(NotFound, match="playbook 'nope' not found; playbooks: win-back"):
        crm.lifecycle.start_playbook("nope", c.id)


@pytest.mark.crm(config=CONFIG)
@pytest.mark.parametrize(
    ("kind", "data"), [("visit", None), ("complaint", None), ("call", {"direction": "in"})]
)
def test_an_inbound_response_cancels_the_open_steps(crm, crm_clock, kind, data):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    crm.lifecycle.start_playbook("win-back", c.id)
    first = _open_steps(crm, c)[0]
    crm.tickets.complete_reminder(first.id)
    crm_clock.set(NOW + dt.timedelta(days=1))
    crm.as_("zhang").records.add_interaction(c.id, kind, "she came back", data=data)
    assert _open_steps(crm, c) == []
    texts = [r.text for r in crm.tickets.due_reminders(customer=c, include_done=True)]
    assert sum("cancelled: the customer responded" in t for t in texts) == 2
    assert "playbook_cancelled" in [e.kind for e in crm.records.timeline(c)]


@pytest.mark.crm(config=CONFIG)
def test_an_outbound_touch_does_not_cancel(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    crm.lifecycle.start_playbook("win-back", c.id)
    crm.records.add_interaction(c.id, "note", "left a voicemail")
    crm.records.add_interaction(c.id, "call", "no answer", data={"direction": "out"})
    assert len(_open_steps(crm, c)) == 3


@pytest.mark.crm(config=CONFIG)
def test_an_inbound_sms_from_the_customer_cancels(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang", phone="13900001111")
    other = crm.customers.add("Bo", owner="zhang", phone="13900002222")
    crm.lifecycle.start_playbook("win-back", c.id)
    crm.lifecycle.start_playbook("win-back", other.id)
    crm.messages.receive_sms("13900001111", "ok, call me tomorrow")
    assert _open_steps(crm, c) == []
    assert len(_open_steps(crm, other)) == 3


@pytest.mark.crm(config=CONFIG)
def test_a_purchase_after_the_start_cancels_one_before_does_not(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    crm.lifecycle.start_playbook("win-back", c.id)
    crm.records.add_transaction(c.id, 100, occurred_at=NOW - dt.timedelta(days=5))
    assert len(_open_steps(crm, c)) == 3
    crm.records.add_transaction(c.id, 100, occurred_at=NOW)
    assert _open_steps(crm, c) == []


@pytest.mark.crm(
    config={
        "crm": {
            **CONFIG["crm"],
            "followups": {**CONFIG["crm"]["followups"], "purchase_is_response": False},
        }
    }
)
def test_purchases_may_be_configured_not_to_count(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    crm.lifecycle.start_playbook("win-back", c.id)
    crm.records.add_transaction(c.id, 100, occurred_at=NOW)
    assert len(_open_steps(crm, c)) == 3


@pytest.mark.crm(config=CONFIG)
def test_entering_the_configured_stage_starts_the_playbook(crm):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang", stage="stable")
    crm.customers.change_stage(c, "declining")
    steps = _open_steps(crm, c)
    assert len(steps) == 3
    assert any("stage:declining" in e.summary for e in crm.records.timeline(c))


@pytest.mark.crm(config=CONFIG)
def test_lifecycle_moves_start_playbooks_set_based(crm):
    _team(crm)
    a = crm.customers.add("A", owner="zhang", stage="stable")
    b = crm.customers.add("B", owner="wang", stage="stable")
    ownerless = crm.customers.add("C", stage="stable")
    for c in (a, b, ownerless):
        crm.records.add_transaction(c, 100, occurred_at=NOW - dt.timedelta(days=100))
    assert crm.jobs.run(["core.lifecycle"], at=NOW)[0]["status"] == "ok"
    assert len(_open_steps(crm, a)) == 3 and len(_open_steps(crm, b)) == 3
    assert _open_steps(crm, ownerless) == []
    assert {s.staff_id for s in _open_steps(crm, b)} == {crm.staff.get("wang").id}
    # the run is idempotent: running again starts nothing twice
    crm.jobs.run(["core.lifecycle"], at=NOW)
    assert len(_open_steps(crm, a)) == 3


@pytest.mark.crm(config=CONFIG)
def test_an_imported_purchase_cancels_set_based(crm, tmp_path):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang", external_id="A1")
    crm.lifecycle.start_playbook("win-back", c.id)
    path = tmp_path / "tx.csv"
    path.write_text(f"customer_external_id,occurred_at,amount\nA1,{NOW.isoformat()},12.50\n")
    from crmcore.importer import import_transactions

    import_transactions(crm, str(path))
    assert _open_steps(crm, c) == []


def test_a_start_on_stage_without_its_playbook_is_a_config_error():
    with pytest.raises(ConfigError, match="no playbook 'x'"):
        from_dict({"crm": {"followups": {"start_on_stage": {"lost": "x"}}}})


def test_a_plugin_contributes_playbooks(crm_factory):
    class Calls:
        @hookimpl
        def crm_playbooks(self):
            return [Playbook(name="welcome", steps=[{"day": 1, "action": "call"}])]

    crm = crm_factory(plugins=["calls"], extra_plugins={"calls": Calls()})
    assert list(crm.lifecycle.playbooks()) == ["welcome"]
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    c = crm.customers.add("Ann", owner="zhang")
    crm.lifecycle.start_playbook("welcome", c.id)
    assert [s.due_at for s in _open_steps(crm, c)] == [NOW + dt.timedelta(days=1)]


@pytest.mark.crm(config=CONFIG)
def test_cli_playbook_list_and_start_json(crm, crm_cli):
    _team(crm)
    c = crm.customers.add("Ann", owner="zhang")
    listed = crm_cli("playbook", "list", "--json")
    assert listed.exit_code == 0 and listed.json()[0]["name"] == "win-back"
    started = crm_cli("playbook", "start", "win-back", str(c.id), "--json")
    assert started.exit_code == 0, started
    assert len(started.json()["steps"]) == 3
    again = crm_cli("playbook", "start", "win-back", str(c.id))
    assert again.exit_code == 1 and "already running" in again.stderr
