"""Bills, payments and the dunning ladder (never skipped, stopped by full payment)."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_utility import arrears
from sqlalchemy import select
from utility_testkit import mill, staff

from crmcore import Conflict, TransitionError, ValidationError
from crmcore.schema import audit_log

pytestmark = pytest.mark.crm(plugins=["utility"])
DUE = dt.date(2026, 1, 5)


def _at(days: int, hour: int = 8) -> dt.datetime:
    return dt.datetime.combine(DUE + dt.timedelta(days=days), dt.time(hour))


def _setup(crm, *, amount=100_000, bill_no="B-1", consent=True):
    staff(crm)
    mill(crm, owner="zhang")
    if not consent:
        crm.customers.update("U-1", consent_sms=False)
    return arrears.add_bill(
        crm,
        "U-1",
        bill_no=bill_no,
        period="2025-12",
        amount_cents=amount,
        due_on=DUE,
        issued_on=dt.date(2025, 12, 20),
        meter_no="M1",
    )


def _run(crm, at):
    return crm.jobs.run(["utility.dunning"], at=at)[0]["summary"]


def _step_names(crm, bill_no="B-1"):
    return [s["name"] for s in arrears.show_bill(crm, bill_no)["steps"]]


def test_bill_and_payment_input_is_checked(crm):
    _setup(crm)
    with pytest.raises(Conflict, match="bill 'B-1' already exists"):
        arrears.add_bill(crm, "U-1", bill_no="B-1", period="2025-12", amount_cents=1, due_on=DUE)
    for kwargs, msg in [
        ({"period": "2025-13"}, "expected YYYY-MM"),
        ({"amount_cents": 0}, "expected a positive amount"),
        ({"amount_cents": 1.5}, "expected integer cents"),
        ({"due_on": dt.date(2025, 1, 1)}, "before the issue date"),
    ]:
        args = {"bill_no": "B-2", "period": "2025-12", "amount_cents": 100, "due_on": DUE}
        with pytest.raises(ValidationError, match=msg):
            arrears.add_bill(crm, "U-1", **(args | kwargs))
    with pytest.raises(ValidationError, match="exceeds the 1,000.00 outstanding"):
        arrears.pay(crm, "B-1", 100_001)
    with pytest.raises(ValidationError, match="expected a positive amount"):
        arrears.pay(crm, "B-1", -5)
    arrears.pay(crm, "B-1", 50_000, reference="P-1")
    again = arrears.pay(crm, "B-1", 50_000, reference="P-1")
    assert again["duplicate"] is True and again["bill"]["paid_cents"] == 50_000
    arrears.pay(crm, "B-1", 50_000, reference="P-2")
    with pytest.raises(Conflict, match="already paid in full"):
        arrears.pay(crm, "B-1", 1)


def test_the_job_climbs_one_step_at_a_time_and_never_skips(crm, crm_outbox):
    _setup(crm)
    assert _run(crm, _at(0))["steps"] == 0  # not overdue yet
    assert _run(crm, _at(1))["taken"] == [{"bill_no": "B-1", "step": "reminder_message"}]
    assert _run(crm, _at(1))["steps"] == 0  # same time again: nothing (idempotent)
    # 60 days overdue at once: still only the next step, the formal notice
    assert _run(crm, _at(60))["taken"] == [{"bill_no": "B-1", "step": "formal_notice"}]
    assert _run(crm, _at(63))["steps"] == 0  # 7 days between steps
    assert _run(crm, _at(67))["taken"][0]["step"] == "restricted_supply_proposal"
    assert _run(crm, _at(74))["taken"][0]["step"] == "disconnection_proposal"
    assert _run(crm, _at(90))["steps"] == 0  # the ladder's end
    bill = arrears.show_bill(crm, "B-1")
    assert [s["step"] for s in bill["steps"]] == [1, 2, 3, 4]
    # the legal notice period: disconnection 7 days after the proposal at the earliest
    assert bill["steps"][3]["disconnect_on"] == (DUE + dt.timedelta(days=81))
    sms = crm_outbox.queued("sms")
    assert [m.template for m in sms] == [
        "utility.dunning_reminder",
        "utility.formal_notice",
        "utility.disconnection_notice",
    ]
    assert "将于2026-03-27或之后停止供电" in sms[2].body
    decide = crm.tickets.due_reminders(at=_at(100), staff="zhang")
    assert [r.text.split(":")[1].strip().split(" for ")[0] for r in decide] == [
        "restrict supply",
        "disconnect supply on 2026-03-27",
    ]


def test_a_step_before_its_predecessor_is_refused_and_nothing_is_written(crm, crm_outbox):
    _setup(crm)
    crm.clock.set(_at(50))
    with pytest.raises(
        TransitionError,
        match="cannot take formal_notice before reminder_message; dunning steps are never skipped",
    ):
        arrears.take_step(crm, "B-1", "formal_notice")
    with pytest.raises(
        TransitionError, match="cannot take disconnection_proposal before reminder_message"
    ):
        arrears.take_step(crm, "B-1", "disconnection_proposal")
    assert _step_names(crm) == [] and crm_outbox.queued() == []
    arrears.take_step(crm, "B-1", "reminder_message")
    with pytest.raises(Conflict, match="step reminder_message was already taken"):
        arrears.take_step(crm, "B-1", "reminder_message")
    with pytest.raises(ValidationError, match="'final_demand' is not on the ladder"):
        arrears.take_step(crm, "B-1", "final_demand")


def test_a_step_before_its_day_or_too_soon_after_the_last_is_refused(crm):
    _setup(crm)
    crm.clock.set(_at(0))
    with pytest.raises(
        TransitionError, match="0 day\\(s\\) overdue; reminder_message is allowed from 1 days"
    ):
        arrears.take_step(crm, "B-1", "reminder_message")
    crm.clock.set(_at(14))
    arrears.take_step(crm, "B-1", "reminder_message")
    with pytest.raises(
        TransitionError, match="formal_notice is allowed from 15 days overdue \\(2026-01-20\\)"
    ):
        arrears.take_step(crm, "B-1", "formal_notice")
    crm.clock.set(_at(16))
    with pytest.raises(
        TransitionError, match="may follow reminder_message .* after 7 day\\(s\\), from 2026-01-26"
    ):
        arrears.take_step(crm, "B-1", "formal_notice")
    assert arrears.show_bill(crm, "B-1")["next_step"] == {
        "name": "formal_notice",
        "from": dt.date(2026, 1, 26),
    }


def test_disconnection_date_inside_the_legal_notice_period_is_refused(crm):
    _setup(crm)
    for days, name in [
        (1, "reminder_message"),
        (15, "formal_notice"),
        (30, "restricted_supply_proposal"),
    ]:
        crm.clock.set(_at(days))
        arrears.take_step(crm, "B-1", name)
    crm.clock.set(_at(45))
    with pytest.raises(
        ValidationError,
        match="inside the legal notice period of 7 days; the earliest date is 2026-02-26",
    ):
        arrears.take_step(crm, "B-1", "disconnection_proposal", disconnect_on=dt.date(2026, 2, 22))
    assert _step_names(crm) == ["reminder_message", "formal_notice", "restricted_supply_proposal"]
    b = arrears.take_step(crm, "B-1", "disconnection_proposal", disconnect_on=dt.date(2026, 3, 2))
    assert b["steps"][-1]["disconnect_on"] == dt.date(2026, 3, 2)


def test_paying_in_full_stops_the_ladder_at_once(crm):
    _setup(crm)
    _run(crm, _at(1))
    _run(crm, _at(15))
    arrears.pay(crm, "B-1", 1_000, at=_at(2))  # a partial payment keeps the ladder going
    _run(crm, _at(30))  # restricted-supply proposal, with a decision reminder for the owner
    assert len(crm.tickets.due_reminders(at=_at(31), staff="zhang")) == 1
    crm.clock.set(_at(31))
    part = arrears.pay(crm, "B-1", 39_000, reference="P-1")
    assert part["ladder_stopped"] is False and part["bill"]["outstanding_cents"] == 60_000
    assert _step_names(crm) == ["reminder_message", "formal_notice", "restricted_supply_proposal"]
    done = arrears.pay(crm, "B-1", 60_000, reference="P-2")
    assert done["ladder_stopped"] is True and done["steps_withdrawn"] == 3
    bill = done["bill"]
    assert bill["status"] == "paid" and bill["next_step"] is None
    assert all(s["withdrawn_at"] == _at(31) for s in bill["steps"])
    assert crm.tickets.due_reminders(at=_at(100), staff="zhang") == []  # the proposal's reminder closed
    assert _run(crm, _at(60))["steps"] == 0
    with pytest.raises(TransitionError, match="paid in full; its dunning ladder has stopped"):
        arrears.take_step(crm, "B-1", "disconnection_proposal", at=_at(60))
    assert arrears.arrears(crm, as_of=DUE + dt.timedelta(days=60)) == []
    summaries = [e.summary for e in crm.records.timeline("U-1") if e.kind == "utility.dunning"]
    assert all("withdrawn" in s for s in summaries) and len(summaries) == 3


def test_each_step_is_an_audited_event_even_without_sms_consent(crm, crm_outbox):
    _setup(crm, consent=False)
    _run(crm, _at(1))
    _run(crm, _at(15))
    with crm.transaction(write=False):
        rows = crm.db.execute(
            select(audit_log)
            .where(audit_log.c.entity == "utility_dunning_steps")
            .order_by(audit_log.c.id)
        ).all()
    assert [(r.action, r.after["name"]) for r in rows] == [
        ("insert", "reminder_message"),
        ("insert", "formal_notice"),
    ]
    assert all(r.command == "jobs run utility.dunning" and r.customer_id for r in rows)
    # no SMS consent: the step is still taken and recorded, for a notice on paper
    step = arrears.show_bill(crm, "B-1")["steps"][0]
    assert step["message_id"] is None and "serve this notice on paper" in step["note"]
    assert crm_outbox.queued("sms") == []


def test_reps_cannot_dun_other_reps_customers(crm):
    _setup(crm)  # owned by zhang
    from crmcore import NotFound

    with pytest.raises(NotFound):
        arrears.take_step(crm.as_("chen"), "B-1", "reminder_message", at=_at(2))
    assert arrears.arrears(crm.as_("chen"), as_of=DUE + dt.timedelta(days=2)) == []
    assert len(arrears.arrears(crm.as_("zhang"), as_of=DUE + dt.timedelta(days=2))) == 1


def test_cli_bills_payments_and_dunning(crm, crm_cli):
    staff(crm)
    mill(crm, owner="zhang")
    r = crm_cli(
        "utility",
        "bill",
        "add",
        "U-1",
        "--bill-no",
        "B-9",
        "--period",
        "2025-12",
        "--amount",
        "1234.50",
        "--due",
        "2025-12-01",
        "--issued",
        "2025-11-20",
        "--json",
    )
    assert r.exit_code == 0, r
    assert r.json()["amount_cents"] == 123_450
    assert crm_cli("utility", "arrears", "--json").json()[0]["days_overdue"] == 35
    skip = crm_cli("utility", "dunning", "step", "B-9", "formal_notice")
    assert skip.exit_code == 1 and "never skipped" in skip.stderr
    assert crm_cli("utility", "dunning", "step", "B-9", "reminder_message", "--json").exit_code == 0
    run = crm_cli("jobs", "run", "utility.dunning", "--at", "2026-01-20T08:00", "--json")
    assert run.json()[0]["summary"]["taken"] == [{"bill_no": "B-9", "step": "formal_notice"}]
    assert crm_cli("utility", "bill", "pay", "B-9", "--amount", "1234.5", "--json").json()[
        "ladder_stopped"
    ]
    assert crm_cli("utility", "bill", "pay", "B-9", "--amount", "1.001").exit_code == 1
    assert crm_cli("utility", "bill", "show", "B-9", "--json").json()["status"] == "paid"
