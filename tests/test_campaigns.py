"""Campaigns: dry run equals the sends, each message once, hold-out never messaged,
uplift on a constructed case."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from crmcore import AccessDenied, NotFound, ValidationError
from crmcore.campaigns import (
    add_campaign,
    dry_run,
    in_holdout,
    list_campaigns,
    parse_holdout,
    remove_campaign,
    send,
    show_campaign,
)
from crmcore.campaigns.report import campaign_report, welch
from crmcore.campaigns.schedule import occurrence
from crmcore.schema import campaign_recipients, messages
from crmcore.segments import add_segment
from crmcore.storage._driver import connection


@pytest.fixture
def shop(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    for i in range(30):
        crm.customers.add(
            f"Z{i:02}",
            phone=f"1380000{i:04}",
            owner="zhang" if i < 20 else "wang",
            consent_sms=i % 5 != 0,  # six without consent
        )
    crm.customers.add("No phone", owner="zhang")
    add_segment(crm, "everyone", {"stage": ["prospect"]})
    return crm


def queued(crm):
    with crm.transaction(write=False) as db:
        return connection(db).execute(messages.select().order_by(messages.c.id)).all()


def recipients(crm):
    with crm.transaction(write=False) as db:
        return connection(db).execute(campaign_recipients.select()).all()


def test_dry_run_equals_the_sends_and_a_rerun_sends_nothing_twice(shop):
    crm = shop
    add_campaign(
        crm,
        "hello",
        segment="everyone",
        channel="sms",
        template="Hi {name}",
        schedule={"kind": "once", "at": "2026-01-01T09:00"},
        holdout_percent=20,
    )
    planned = dry_run(crm, "hello")
    assert planned["due"] and planned["eligible"] == 24  # consent and a phone
    assert queued(crm) == [] and recipients(crm) == []  # the dry run wrote nothing
    done = send(crm, "hello")
    assert done["sent"] == planned["would_send"] == len(queued(crm))
    assert done["held_out"] == planned["holdout"] > 0
    assert {m.body for m in queued(crm)} >= {s["body"] for s in planned["sample"]}
    again = send(crm, "hello")
    assert again["sent"] == 0 and again["eligible"] == 0
    assert len(queued(crm)) == done["sent"]
    # keys are per (campaign, occurrence, customer)
    assert len({m.idempotency_key for m in queued(crm)}) == done["sent"]


def test_the_holdout_is_never_messaged_and_stable(shop):
    crm = shop
    add_campaign(
        crm,
        "hold",
        segment="everyone",
        channel="sms",
        template="Hi",
        schedule={"kind": "daily"},
        holdout_percent=30,
    )
    send(crm, "hold")
    held = {r.customer_id for r in recipients(crm) if r.holdout}
    assert held and all(in_holdout(1, cid, 30) for cid in held)
    # next day: a new occurrence, the same customers held out again
    crm.clock.advance(days=1)
    send(crm, "hold")
    messaged = {m.customer_id for m in queued(crm)}
    assert held.isdisjoint(messaged)
    assert {r.customer_id for r in recipients(crm) if r.holdout} == held


def test_a_reps_send_reaches_only_their_customers(shop):
    crm = shop
    add_campaign(
        crm,
        "mine",
        segment="everyone",
        channel="sms",
        template="Hi",
        schedule={"kind": "daily"},
    )
    assert dry_run(crm.as_("wang"), "mine")["would_send"] == 8
    done = send(crm.as_("zhang"), "mine")
    assert done["sent"] == 16
    owners = {m.customer_id for m in queued(crm)}
    assert all(crm.customers.get(cid).owner_id == crm.staff.get("zhang").id for cid in owners)
    with pytest.raises(AccessDenied):
        add_campaign(
            crm.as_("zhang"),
            "x",
            segment="everyone",
            channel="sms",
            template="Hi",
            schedule={"kind": "daily"},
        )


def test_yearly_holiday_occurrences():
    mid = {"kind": "yearly", "holiday": "mid_autumn", "days_before": 2}
    assert occurrence(mid, dt.datetime(2026, 9, 22, 9)) == ("2026-09-25", False)
    assert occurrence(mid, dt.datetime(2026, 9, 23, 9)) == ("2026-09-25", True)
    assert occurrence(mid, dt.datetime(2026, 9, 25, 23)) == ("2026-09-25", True)
    assert occurrence(mid, dt.datetime(2026, 9, 26, 9)) == ("2027-09-15", False)
    national = {"kind": "yearly", "holiday": "national_day"}
    assert occurrence(national, dt.datetime(2031, 10, 1)) == ("2031-10-01", True)
    with pytest.raises(ValidationError, match="spring_festival in 2031 is not known"):
        occurrence({"kind": "yearly", "holiday": "spring_festival"}, dt.datetime(2031, 1, 1))
    assert occurrence({"kind": "once", "at": "2026-02-01T00:00"}, dt.datetime(2026, 1, 31)) == (
        "once",
        False,
    )


def test_a_campaign_not_due_sends_nothing(shop):
    crm = shop
    add_campaign(
        crm,
        "festival",
        segment="everyone",
        channel="sms",
        template="中秋快乐, {name}",
        schedule={"kind": "yearly", "holiday": "mid_autumn"},
    )
    crm.clock.set(dt.datetime(2026, 9, 24, 9))
    assert send(crm, "festival")["sent"] == 0 and queued(crm) == []
    crm.clock.set(dt.datetime(2026, 9, 25, 9))
    assert send(crm, "festival")["sent"] == 24
    assert show_campaign(crm, "festival")["occurrences"] == [
        {"occurrence": "2026-09-25", "selected": 24, "messaged": 24}
    ]
    assert [c["name"] for c in list_campaigns(crm)] == ["festival"]
    with pytest.raises(Exception, match="has run"):
        remove_campaign(crm, "festival")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"template": "Hi {surname}"}, r"unknown placeholder\(s\) \['surname'\]"),
        ({"channel": "fax"}, "a campaign goes by sms or email"),
        ({"schedule": {"kind": "weekly"}}, "campaign schedule"),
        ({"schedule": {"kind": "yearly"}}, "names a holiday or a date"),
        ({"segment": "nobody"}, "segment 'nobody' not found"),
        ({"holdout_percent": 80}, "holdout 80"),
    ],
)
def test_bad_campaigns_are_refused(shop, kwargs, message):
    args = {
        "segment": "everyone",
        "channel": "sms",
        "template": "Hi",
        "schedule": {"kind": "daily"},
        **kwargs,
    }
    with pytest.raises((ValidationError, NotFound), match=message):
        add_campaign(shop, "bad", **args)


def test_parse_holdout():
    assert parse_holdout("10%") == 10 and parse_holdout(None) == 0
    with pytest.raises(ValidationError, match="--holdout"):
        parse_holdout("ten")


def test_uplift_on_a_constructed_case(shop):
    crm = shop
    add_campaign(
        crm,
        "promo",
        segment="everyone",
        channel="sms",
        template="Hi",
        schedule={"kind": "daily"},
        holdout_percent=40,
    )
    send(crm, "promo")
    rows = recipients(crm)
    now = crm.now()
    # every reached customer buys 100.00 twice in the week, every held-out one 40.00 once,
    # and a purchase after the window counts for nobody
    for r in rows:
        if r.holdout:
            crm.records.add_transaction(r.customer_id, 4000, occurred_at=now + dt.timedelta(days=1))
        elif r.message_id is not None:
            for d in (1, 2):
                crm.records.add_transaction(
                    r.customer_id, 10_000, occurred_at=now + dt.timedelta(days=d)
                )
        crm.records.add_transaction(r.customer_id, 99_999, occurred_at=now + dt.timedelta(days=40))
    got = campaign_report(crm, "promo", days=30)
    reached = sum(1 for r in rows if not r.holdout and r.message_id is not None)
    held = sum(1 for r in rows if r.holdout)
    assert got["reached"]["customers"] == reached and got["holdout"]["customers"] == held
    assert got["reached"]["purchases"] == 2 * reached
    assert got["holdout"]["spend_cents"] == 4000 * held
    assert got["uplift_spend_cents"]["difference"] == pytest.approx(20_000 - 4000)
    lo, hi = got["uplift_spend_cents"]["ci95"]
    assert lo == hi == pytest.approx(16_000)  # no variance in either group


def test_welch_interval_matches_the_textbook_formula():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 40), rng.normal(8, 5, 25)
    got = welch(a, b)
    se = np.sqrt(a.var(ddof=1) / 40 + b.var(ddof=1) / 25)
    assert got["difference"] == pytest.approx(a.mean() - b.mean())
    lo, hi = got["ci95"]
    assert (hi - lo) / 2 / se == pytest.approx(2.0, abs=0.1)  # t quantile ~2.0 at df ~ 30
    assert welch(a, np.array([]))["difference"] is None


def test_cli_campaign_from_add_to_report(shop, crm_cli):
    crm = shop
    add = crm_cli(
        "campaign",
        "add",
        "mid-autumn",
        "--segment",
        "everyone",
        "--template",
        "中秋快乐 {name}",
        "--holiday",
        "mid_autumn",
        "--days-before",
        "1",
        "--holdout",
        "10%",
        "--json",
        crm=crm,
    )
    assert add.exit_code == 0, add
    planned = crm_cli(
        "campaign", "dry-run", "mid-autumn", "--at", "2026-09-24T09:00", "--json", crm=crm
    )
    assert planned.json()["due"] is True
    sent = crm_cli("campaign", "send", "mid-autumn", "--at", "2026-09-24T09:00", "--json", crm=crm)
    assert sent.json()["sent"] == planned.json()["would_send"]
    report = crm_cli("campaign", "report", "mid-autumn", "--days", "7", "--json", crm=crm)
    assert report.exit_code == 0 and report.json()["occurrence"] == "2026-09-25"
    assert crm_cli("campaign", "show", "mid-autumn", crm=crm).exit_code == 0
    assert crm_cli("campaign", "list", "--json", crm=crm).json()[0]["name"] == "mid-autumn"
    two = crm_cli(
        "campaign",
        "add",
        "x",
        "--segment",
        "everyone",
        "--template",
        "Hi",
        "--daily",
        "--holiday",
        "mid_autumn",
        crm=crm,
    )
    assert two.exit_code == 1 and two.stderr.startswith("error: campaign add: give exactly one")
