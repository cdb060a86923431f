"""Member day (discount, extra points, reminder the day before) and birthday greetings."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail import members
from crm_retail.settings import is_member_day, parse
from crm_retail.tables import member_day_benefits
from sqlalchemy import select

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)  # Monday
WED = dt.datetime(2026, 1, 7, 15, 0)


def member(crm, name, phone, *, birthday=None, consent=True):
    c = crm.customers.add(name, phone=phone, consent_sms=consent)
    members.join(crm, c, birthday=birthday, at=T0 - dt.timedelta(days=30))
    return c


def benefits(crm):
    with crm.transaction(write=False):
        return crm.db.execute(select(member_day_benefits).order_by(member_day_benefits.c.id)).all()


def sms(outbox, prefix):
    return [m for m in outbox.queued("sms") if m.idempotency_key.startswith(prefix)]


@RETAIL
def test_member_day_gives_extra_points_and_records_the_discount(crm):
    c = member(crm, "Hu", "13800000001")
    crm.records.add_transaction(c, 10_000, occurred_at=WED)
    crm.records.add_transaction(c, 10_000, occurred_at=WED + dt.timedelta(days=1))  # Thursday
    assert members.member_info(crm, c)["points_balance"] == 200 + 100
    (b,) = benefits(crm)
    assert (b.day, b.amount_cents, b.discount_cents, b.extra_points) == (
        WED.date(),
        10_000,
        500,
        100,
    )


@RETAIL
def test_non_members_get_no_member_day_benefit(crm):
    c = crm.customers.add("Walk-in", phone="13800000002")
    crm.records.add_transaction(c, 10_000, occurred_at=WED)
    assert benefits(crm) == []


@pytest.mark.crm(
    plugins=["retail"],
    config={
        "plugins": {"retail": {"member_day": {"day": 18, "discount": 0.1, "points_multiplier": 3}}}
    },
)
def test_member_day_by_day_of_month(crm):
    c = member(crm, "Ma", "13800000003")
    crm.records.add_transaction(c, 10_001, occurred_at=dt.datetime(2026, 1, 18, 10))
    crm.records.add_transaction(c, 10_000, occurred_at=dt.datetime(2026, 1, 7, 10))  # a Wednesday: no
    (b,) = benefits(crm)
    assert (b.discount_cents, b.extra_points) == (1000, 200)
    assert members.member_info(crm, c)["points_balance"] == 300 + 100


def test_day_31_falls_on_the_last_day_of_short_months():
    s = parse(
        {
            "tiers": [{"name": "a", "min_spend_cents": 0, "multiplier": 1, "benefits": []}],
            "tier_review_date": "01-01",
            "abc": {"a_share": 0.7, "b_share": 0.2},
            "member_day": {"enabled": True, "day": 31},
        }
    )
    assert is_member_day(s, dt.date(2026, 2, 28))
    assert is_member_day(s, dt.date(2026, 4, 30))
    assert is_member_day(s, dt.date(2026, 1, 31)) and not is_member_day(s, dt.date(2026, 1, 30))


@pytest.mark.crm(
    plugins=["retail"], config={"plugins": {"retail": {"member_day": {"enabled": False}}}}
)
def test_member_day_can_be_switched_off(crm, crm_outbox):
    c = member(crm, "Off", "13800000004")
    crm.records.add_transaction(c, 10_000, occurred_at=WED)
    assert benefits(crm) == []
    crm.jobs.run(["retail.member_day_reminder"], at=WED - dt.timedelta(days=1))
    assert crm_outbox.queued() == []


@RETAIL
def test_member_day_reminder_the_day_before_once_with_consent(crm, crm_outbox):
    a = member(crm, "Yes", "13800000005")
    member(crm, "No", "13800000006", consent=False)
    crm.customers.add("Not a member", phone="13800000007")
    out = crm.jobs.run(["retail.member_day_reminder"], at=T0)[0]["summary"]  # Monday: no
    assert out["is_member_day"] is False and crm_outbox.queued() == []
    tue = dt.datetime(2026, 1, 6, 8, 0)
    out = crm.jobs.run(["retail.member_day_reminder"], at=tue)[0]["summary"]
    assert out["queued"] == 1 and out["no_consent_or_phone"] == 1
    crm.jobs.run(["retail.member_day_reminder"], at=tue + dt.timedelta(hours=5))
    (msg,) = sms(crm_outbox, "retail:member_day:")
    assert msg.customer_id == a.id and "明天（2026-01-07）是" in msg.body and "会员日" in msg.body
    assert "5% off and x2 points" in msg.body
    sent = crm_outbox.send()
    assert [m["to"] for m in sent] == ["+8613800000005"]


@RETAIL
def test_birthday_greeting_once_per_year_with_consent(crm, crm_outbox):
    a = member(crm, "Birthday", "13800000008", birthday="1985-01-05")
    member(crm, "Opted out", "13800000009", birthday="1990-01-05", consent=False)
    member(crm, "Tomorrow", "13800000010", birthday="1990-01-06")
    member(crm, "No date", "13800000011")
    out = crm.jobs.run(["retail.birthdays"], at=T0)[0]["summary"]
    assert out["queued"] == 1 and out["customers"] == [a.id] and out["no_consent_or_phone"] == 1
    crm.jobs.run(["retail.birthdays"], at=T0 + dt.timedelta(hours=3))
    (msg,) = sms(crm_outbox, "retail:birthday:")
    assert msg.idempotency_key == f"retail:birthday:2026:{a.id}"
    assert "Birthday，祝您生日快乐" in msg.body  # Chinese unless configured otherwise
    # changing the birthday within the year does not greet again
    members.set_birthday(crm, a, "1985-01-10")
    crm.jobs.run(["retail.birthdays"], at=dt.datetime(2026, 1, 10, 8))
    assert len(sms(crm_outbox, "retail:birthday:")) == 1
    crm.jobs.run(["retail.birthdays"], at=dt.datetime(2027, 1, 10, 8))
    assert len(sms(crm_outbox, "retail:birthday:2027:")) == 1
    assert any(e.kind == "message.sms" and "祝您生日快乐" in e.summary for e in crm.records.timeline(a))


@pytest.mark.crm(plugins=["retail"], config={"crm": {"message_locale": "en"}})
def test_a_deployment_that_writes_to_customers_in_english_sends_the_english_text(
    crm, crm_outbox
):
    a = member(crm, "Birthday", "13800000008", birthday="1985-01-05")
    crm.jobs.run(["retail.birthdays"], at=T0)
    (msg,) = sms(crm_outbox, "retail:birthday:")
    assert msg.customer_id == a.id and msg.body.startswith("Happy birthday, Birthday!")


@RETAIL
def test_feb_29_birthdays_are_greeted_on_feb_28_in_non_leap_years(crm, crm_outbox):
    leap = member(crm, "Leap", "13800000012", birthday="2000-02-29")
    feb28 = member(crm, "Feb 28", "13800000013", birthday="2001-02-28")
    crm.jobs.run(["retail.birthdays"], at=dt.datetime(2027, 2, 28, 8))
    assert {m.customer_id for m in sms(crm_outbox, "retail:birthday:2027:")} == {leap.id, feb28.id}
    crm.jobs.run(["retail.birthdays"], at=dt.datetime(2027, 3, 1, 8))
    assert len(sms(crm_outbox, "retail:birthday:2027:")) == 2
    # a leap year: Feb 28 greets only Feb 28, Feb 29 greets the leap-day member
    crm.jobs.run(["retail.birthdays"], at=dt.datetime(2028, 2, 28, 8))
    assert {m.customer_id for m in sms(crm_outbox, "retail:birthday:2028:")} == {feb28.id}
    crm.jobs.run(["retail.birthdays"], at=dt.datetime(2028, 2, 29, 8))
    assert {m.customer_id for m in sms(crm_outbox, "retail:birthday:2028:")} == {leap.id, feb28.id}
