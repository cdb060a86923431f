"""The messaging rules: consent per channel medium, quiet hours, frequency caps,
unsubscribe by reply; each applied at enqueue and checked again at send."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crmcore import Template, hookimpl
from crmcore.errors import ConfigError, NotFound, ValidationError
from crmcore.schema import audit_log
from crmcore.storage._driver import connection

ALIYUN = {
    "kind": "aliyun",
    "access_key_id": "test-id",
    "access_key_secret_env": "CRM_TEST_ALIYUN_SECRET",
    "sign_name": "测试商城",
    "templates": {"promo.sale": "SMS_1"},
}


class Promo:
    """A plugin with one marketing and one transactional template."""

    @hookimpl
    def crm_message_templates(self):
        return [
            Template(name="promo.sale", text="Sale on {item}", purpose="marketing"),
            Template(name="promo.receipt", text="Paid {amount}"),
        ]


@pytest.fixture
def make(crm_factory):
    def build(**messages_rules):
        config = {"messages": messages_rules} if messages_rules else {}
        crm = crm_factory(plugins=["promo"], extra_plugins={"promo": Promo()}, config=config)
        crm.staff.add("zhang", "Zhang", roles=["rep"], team="north")
        crm.staff.add("wang", "Wang", roles=["rep"], team="south")
        crm.staff.add("audit", "Auditor", roles=["auditor"])
        return crm

    return build


def sale(crm, customer, **kw):
    return crm.messages.enqueue(
        "sms", template="promo.sale", values={"item": "tea"}, customer=customer, **kw
    )


def status_of(crm, message):
    return next(m for m in crm.messages.outbox() if m.id == message.id)


# -- access first ---------------------------------------------------------------------


def test_a_rep_cannot_message_or_see_the_messages_of_another_reps_customer(make):
    crm = make(max_marketing_per_day=1)
    theirs = crm.customers.add("Wu", phone="13800000001", owner="wang")
    queued = sale(crm, theirs)
    zhang = crm.as_("zhang")
    with pytest.raises(NotFound):
        sale(zhang, theirs.id)
    assert zhang.messages.outbox() == []  # neither the message nor its status
    assert crm.as_("wang").messages.outbox()[0].id == queued.id
    assert [m.id for m in crm.messages.outbox()] == [queued.id]  # the refused attempt wrote nothing


def test_an_auditor_may_neither_queue_nor_send(make):
    crm = make()
    c = crm.customers.add("Wu", phone="13800000001", owner="wang")
    auditor = crm.as_("audit")
    with pytest.raises(Exception, match="write|may not"):
        sale(auditor, c.id)
    with pytest.raises(Exception, match="may not send the outbox"):
        auditor.messages.send_outbox()


# -- consent per medium ------------------------------------------------------------


def test_a_configured_sms_channel_of_any_name_needs_sms_consent(crm_factory, monkeypatch):
    monkeypatch.setenv("CRM_TEST_ALIYUN_SECRET", "s")
    crm = crm_factory(
        plugins=["promo"],
        extra_plugins={"promo": Promo()},
        config={"channels": {"aliyun-sms": ALIYUN}},
    )
    no = crm.customers.add("No", phone="13800000001", consent_sms=False)
    yes = crm.customers.add("Yes", phone="13800000002", email="yes@example.com")

    def promo(customer):
        return crm.messages.enqueue(
            "aliyun-sms", template="promo.sale", values={"item": "t"}, customer=customer
        )

    assert promo(no) is None
    m = promo(yes)
    assert m.to_address == "+8613800000002"  # the phone, not the e-mail: an SMS medium


def test_consent_withdrawn_after_queueing_cancels_at_send(make, crm_outbox):
    crm = make()
    c = crm.customers.add("Wu", phone="13800000001")
    m = crm.messages.enqueue("sms", body="your parcel is ready", customer=c)
    crm.customers.update(c.id, consent_sms=False)
    assert crm.messages.send_outbox()["cancelled"] == 1
    after = status_of(crm, m)
    assert after.status == "cancelled" and "withdrew consent" in after.last_error
    assert crm_outbox.sent() == []


# -- quiet hours -----------------------------------------------------------------------


def test_marketing_inside_quiet_hours_is_held_until_they_end(make, crm_outbox):
    crm = make(quiet_hours="21:00-08:00")
    c = crm.customers.add("Wu", phone="13800000001")
    crm.clock.set(dt.datetime(2026, 1, 5, 22, 30))
    held = sale(crm, c)
    receipt = crm.messages.enqueue("sms", template="promo.receipt", values={"amount": 5}, customer=c)
    assert held.not_before == dt.datetime(2026, 1, 6, 8, 0) and receipt.not_before is None
    assert crm.messages.send_outbox()["sent"] == 1  # the transactional one only
    assert [m["body"] for m in crm_outbox.sent()] == ["Paid 5"]
    crm.clock.set(dt.datetime(2026, 1, 6, 7, 59))
    assert crm.messages.send_outbox()["sent"] == 0
    crm.clock.set(dt.datetime(2026, 1, 6, 8, 0))
    assert crm.messages.send_outbox()["sent"] == 1  # held, never dropped
    assert [m["body"] for m in crm_outbox.sent()] == ["Paid 5", "Sale on tea"]


def test_a_marketing_message_due_when_quiet_hours_began_is_held_again(make, crm_outbox):
    crm = make(quiet_hours="12:00-14:00")
    c = crm.customers.add("Wu", phone="13800000001")
    m = sale(crm, c)  # 09:00: outside the window
    crm.clock.set(dt.datetime(2026, 1, 5, 12, 30))
    assert crm.messages.send_outbox() == {"sent": 0, "failed": 0, "held": 1, "cancelled": 0}
    assert status_of(crm, m).not_before == dt.datetime(2026, 1, 5, 14, 0)
    crm.clock.set(dt.datetime(2026, 1, 5, 14, 0))
    assert crm.messages.send_outbox()["sent"] == 1 and crm_outbox.sent()[0]["body"] == "Sale on tea"


def test_an_explicit_purpose_overrides_the_templates(make):
    crm = make(quiet_hours="08:00-20:00")
    c = crm.customers.add("Wu", phone="13800000001")
    assert crm.messages.enqueue("sms", body="promo", customer=c).not_before is None
    held = crm.messages.enqueue("sms", body="promo", customer=c, purpose="marketing")
    assert held.not_before == dt.datetime(2026, 1, 5, 20, 0)
    with pytest.raises(ValidationError, match="message purpose: expected one of"):
        crm.messages.enqueue("sms", body="x", customer=c, purpose="spam")


# -- frequency caps --------------------------------------------------------------------


def test_daily_cap_counts_marketing_only_and_resets_the_next_day(make):
    crm = make(max_marketing_per_day=2)
    c = crm.customers.add("Wu", phone="13800000001")
    other = crm.customers.add("Li", phone="13800000002")
    assert sale(crm, c) and sale(crm, c)
    assert sale(crm, c) is None  # the third marketing message today
    assert crm.messages.enqueue("sms", template="promo.receipt", values={"amount": 1}, customer=c)
    assert sale(crm, other)  # per customer
    crm.clock.set(dt.datetime(2026, 1, 6, 9, 0))
    assert sale(crm, c)


def test_weekly_cap_spans_the_iso_week(make):
    crm = make(max_marketing_per_week=2)
    c = crm.customers.add("Wu", phone="13800000001")
    assert sale(crm, c)
    crm.clock.set(dt.datetime(2026, 1, 8, 9, 0))  # Thursday
    assert sale(crm, c)
    crm.clock.set(dt.datetime(2026, 1, 11, 23, 0))  # Sunday
    assert sale(crm, c) is None
    crm.clock.set(dt.datetime(2026, 1, 12, 0, 0))  # the next Monday
    assert sale(crm, c)


def test_a_cap_reached_by_the_time_of_sending_cancels_the_rest(make, crm_outbox):
    crm = make()
    c = crm.customers.add("Wu", phone="13800000001")
    first, second = sale(crm, c), sale(crm, c)  # queued before any cap was set
    crm.config.messages["max_marketing_per_day"] = 1
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 1}
    assert status_of(crm, first).status == "sent"
    late = status_of(crm, second)
    assert late.status == "cancelled" and "max_marketing_per_day = 1" in late.last_error
    assert len(crm_outbox.sent()) == 1


def test_bad_rules_are_one_line_config_errors(make):
    with pytest.raises(ConfigError, match="messages.quiet_hours: expected"):
        make(quiet_hours="9pm-8am")
    with pytest.raises(ConfigError, match="messages.quiet_hours: .*same time"):
        make(quiet_hours="08:00-08:00")
    with pytest.raises(ConfigError, match="messages.max_marketing_per_day"):
        make(max_marketing_per_day=0)


# -- unsubscribe by reply ---------------------------------------------------------------


@pytest.mark.parametrize("word", ["退订", "td", " Stop ", "STOP!"])
def test_an_unsubscribe_reply_withdraws_consent_and_cancels_queued_marketing(make, word):
    crm = make()
    c = crm.customers.add("Wu", phone="13800000001", owner="wang")
    promo = sale(crm, c)
    receipt = crm.messages.enqueue("sms", template="promo.receipt", values={"amount": 1}, customer=c)
    out = crm.messages.receive_sms("13800000001", word, delivered_by="sms")
    assert out["claimed"] == 1 and "unsubscribed customer" in out["routed"][0]
    assert crm.customers.get(c.id).consent_sms is False
    assert status_of(crm, promo).status == "cancelled"
    assert status_of(crm, receipt).status == "queued"  # what they asked for still goes
    assert sale(crm, c) is None  # and nothing new is queued
    with crm.transaction() as db:
        rows = connection(db).execute(
            sa.select(audit_log.c.after).where(
                audit_log.c.entity == "customers", audit_log.c.action == "update"
            )
        ).all()
    assert any(r.after.get("consent_sms") is False for r in rows)


def test_other_replies_and_other_numbers_change_nothing(make):
    crm = make()
    c = crm.customers.add("Wu", phone="13800000001")
    assert crm.messages.receive_sms("13800000001", "stop sending me the sale please")["claimed"] == 0
    assert crm.messages.receive_sms("13900000009", "TD")["claimed"] == 0
    assert crm.customers.get(c.id).consent_sms is True


def test_configured_unsubscribe_words_replace_the_defaults(make):
    crm = make(unsubscribe_words=["取消"])
    c = crm.customers.add("Wu", phone="13800000001")
    assert crm.messages.receive_sms("13800000001", "TD")["claimed"] == 0
    assert crm.messages.receive_sms("13800000001", "取消")["claimed"] == 1
    assert crm.customers.get(c.id).consent_sms is False


def test_unsubscribe_reaches_a_contact_point_holding_the_number(make):
    crm = make()
    c = crm.customers.add("Wu", phone="13800000001")
    crm.customers.add_contact_point(c.id, "phone", "13800000002")
    crm.messages.receive_sms("13800000002", "TD")
    assert crm.customers.get(c.id).consent_sms is False
    assert [p["consent"] for p in crm.customers.contact_points(c.id)] == [False]
