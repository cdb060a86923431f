"""DM price error reports, out-of-stock waiting lists, after-sale surveys."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail import dm, feedback, members, waitlist
from crm_retail.tables import dm_reports, surveys
from sqlalchemy import func, select

from crmcore import AccessDenied, Conflict, NotFound, TransitionError, ValidationError

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


def member(crm, name, phone, **kw):
    c = crm.customers.add(name, phone=phone, **kw)
    members.join(crm, c)
    return c


def report(crm, c, product="Rice 5 kg", promotion="DM-W02"):
    return dm.report(
        crm, c, product=product, promotion=promotion, poster_price="39.90", till_price="45.90"
    )


# -- DM price errors ------------------------------------------------------------------------
@RETAIL
def test_verified_report_credits_the_reward(crm):
    c = member(crm, "Lu", "13800000001")
    r = report(crm, c)
    assert r["status"] == "reported" and r["poster_price_cents"] == 3990
    done = dm.decide(crm, r["id"], verified=True)
    assert done["status"] == "verified" and done["reward_points"] == 200
    assert members.member_info(crm, c)["points_balance"] == 200
    assert any("verified: 200 points reward" in e.summary for e in crm.records.timeline(c))


@RETAIL
def test_reward_once_per_product_per_promotion(crm):
    a = member(crm, "A", "13800000002")
    b = member(crm, "B", "13800000003")
    r1 = report(crm, a)
    r2 = report(crm, b, product="  rice 5 KG ")  # the same product, written differently
    r3 = report(crm, b, promotion="DM-W03")  # another promotion: rewarded again
    dm.decide(crm, r1["id"], verified=True)
    second = dm.decide(crm, r2["id"], verified=True)
    assert second["status"] == "verified" and second["reward_points"] == 0
    assert dm.decide(crm, r3["id"], verified=True)["reward_points"] == 200
    assert members.member_info(crm, b)["points_balance"] == 200
    assert any("already rewarded (report 1)" in e.summary for e in crm.records.timeline(b))


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"dm_reward_points": 50}}})
def test_reward_points_are_configurable(crm):
    c = member(crm, "Cfg", "13800000004")
    dm.decide(crm, report(crm, c)["id"], verified=True)
    assert members.member_info(crm, c)["points_balance"] == 50


@RETAIL
def test_dm_refusals(crm):
    c = member(crm, "R", "13800000005")
    stranger = crm.customers.add("Not a member", phone="13800000006")
    with pytest.raises(ValidationError, match="equals the till price"):
        dm.report(crm, c, product="X", promotion="P", poster_price="1.00", till_price=100)
    with pytest.raises(ValidationError, match="not a member"):
        report(crm, stranger)
    with pytest.raises(ValidationError, match="poster price"):
        dm.report(crm, c, product="X", promotion="P", poster_price="1.005", till_price="2")
    r = report(crm, c)
    with pytest.raises(ValidationError, match="note: required"):
        dm.decide(crm, r["id"], verified=False)
    dm.decide(crm, r["id"], verified=False, note="the poster says 'from 45.90'")
    with pytest.raises(TransitionError, match="already rejected"):
        dm.decide(crm, r["id"], verified=True)
    with pytest.raises(NotFound):
        dm.decide(crm, 999, verified=True)
    assert members.member_info(crm, c)["points_balance"] == 0
    with crm.transaction(write=False):
        assert crm.db.execute(select(func.count()).select_from(dm_reports)).scalar() == 1


@RETAIL
def test_rep_sees_only_their_customers_reports(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    mine = member(crm, "Mine", "13800000007", owner="zhang")
    other = member(crm, "Other", "13800000008", owner="chen")
    report(crm, mine)
    r = report(crm, other)
    assert [x["customer_id"] for x in dm.list_reports(crm.as_("zhang"))] == [mine.id]
    with pytest.raises(NotFound):
        dm.decide(crm.as_("zhang"), r["id"], verified=True)


# -- waiting list -----------------------------------------------------------------------------
@RETAIL
def test_restock_notifies_everyone_once_in_request_order(crm, crm_outbox):
    late = crm.customers.add("Late", phone="13800000010")
    early = crm.customers.add("Early", phone="13800000011")
    other = crm.customers.add("Other item", phone="13800000012")
    waitlist.add(crm, late, item="Eggs 30", at=T0 + dt.timedelta(minutes=5))
    waitlist.add(crm, early, item="eggs  30", offer="19.90", at=T0)
    waitlist.add(crm, other, item="Milk", at=T0)
    out = waitlist.restock(crm, "EGGS 30")
    assert len(out["notified"]) == 2
    msgs = [m for m in crm_outbox.queued("sms") if m.idempotency_key.startswith("retail:restock:")]
    assert [m.customer_id for m in msgs] == [early.id, late.id]
    assert "(19.90)" in msgs[0].body
    again = waitlist.restock(crm, "Eggs 30")
    assert again["notified"] == [] and len(crm_outbox.queued("sms")) == 2
    assert [w["customer_id"] for w in waitlist.list_waiting(crm)] == [other.id]


@RETAIL
def test_waitlist_respects_consent_and_contact_phone(crm, crm_outbox):
    no = crm.customers.add("No SMS", phone="13800000013", consent_sms=False)
    alt = crm.customers.add("Alt phone", phone="13800000014")
    waitlist.add(crm, no, item="TV")
    waitlist.add(crm, alt, item="TV", phone="139 1111 2222")
    out = waitlist.restock(crm, "TV")
    assert len(out["no_contact"]) == 1 and len(out["notified"]) == 1
    (msg,) = crm_outbox.queued("sms")
    assert msg.to_address == "+8613911112222"
    assert {w["status"] for w in waitlist.list_waiting(crm, all_=True)} == {
        "notified",
        "no_contact",
    }


@RETAIL
def test_waitlist_refusals(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    c = crm.customers.add("Twice", phone="13800000015", owner="zhang")
    waitlist.add(crm, c, item="TV")
    with pytest.raises(Conflict, match="already waiting"):
        waitlist.add(crm, c, item="tv")
    with pytest.raises(ValidationError, match="item: required"):
        waitlist.add(crm, c, item="  ")
    with pytest.raises(ValidationError, match="not a phone number"):
        waitlist.add(crm, c, item="Radio", phone="call me")
    with pytest.raises(AccessDenied, match="restock"):
        waitlist.restock(crm.as_("zhang"), "TV")
    assert len(waitlist.list_waiting(crm)) == 1


# -- after-sale surveys -------------------------------------------------------------------------
def buyers(crm, n):
    out = []
    for i in range(n):
        c = crm.customers.add(f"Buyer {i}", phone=f"1370000{i:04d}")
        crm.records.add_transaction(c, 1000 + i, occurred_at=T0 - dt.timedelta(days=2 * i))
        out.append(c)
    return out


@RETAIL
def test_survey_sample_is_seeded_and_reproducible(crm, crm_outbox):
    buyers(crm, 30)  # 30 buyers, 15 of them in the last 30 days
    a = feedback.sample(crm, name="s1", size=5, seed=42)
    b = feedback.sample(crm, name="s2", size=5, seed=42)
    c = feedback.sample(crm, name="s3", size=5, seed=7)
    assert a["recent_buyers"] == 15 and len(a["sampled"]) == 5
    assert a["sampled"] == b["sampled"] != c["sampled"]
    again = feedback.sample(crm, name="s1", size=9, seed=1)
    assert again["created"] is False and again["sampled"] == a["sampled"]
    assert len(crm_outbox.queued("sms")) == 15
    d = feedback.sample(crm, name="s4", size=100)
    assert len(d["sampled"]) == 15 and d["seed"] == feedback.zlib.crc32(b"s4")


@RETAIL
def test_answers_are_interactions_and_satisfaction_is_perceived_over_expected(crm):
    cs = buyers(crm, 3)
    s = feedback.sample(crm, name="jan", size=3, seed=1)
    ans = feedback.answer(crm, cs[0], expected=8, perceived=6, survey="jan", comment="slow")
    assert ans["satisfaction"] == 0.75
    (inter,) = crm.records.interactions(cs[0], kind="survey")
    assert inter.data["perceived"] == 6 and "C = 0.75" in inter.text
    feedback.answer(crm, cs[1], expected=5, perceived=10, survey="jan")
    feedback.answer(crm, cs[2], expected=6, perceived=6, at=dt.datetime(2026, 2, 3))
    rep = feedback.report(crm, period="month")
    jan, feb = rep["periods"]
    assert jan["period"] == "2026-01" and jan["answers"] == 2
    assert jan["satisfaction"] == round(16 / 13, 3) and jan["met_or_beat_share"] == 0.5
    assert feb == {
        "period": "2026-02",
        "answers": 1,
        "expected_avg": 6.0,
        "perceived_avg": 6.0,
        "satisfaction": 1.0,
        "met_or_beat_share": 1.0,
    }
    assert feedback.report(crm, period="quarter")["periods"][0]["answers"] == 3
    assert sorted(s["sampled"]) == [c.id for c in cs]


@RETAIL
def test_survey_refusals(crm):
    cs = buyers(crm, 2)
    feedback.sample(crm, name="one", size=1, seed=3)
    invited = feedback.sample(crm, name="one")["sampled"][0]
    outsider = next(c for c in cs if c.id != invited)
    with pytest.raises(ValidationError, match="expected: expected a whole number 1..10"):
        feedback.answer(crm, invited, expected=0, perceived=5)
    with pytest.raises(ValidationError, match="perceived"):
        feedback.answer(crm, invited, expected=5, perceived=11)
    with pytest.raises(ValidationError, match="was not invited"):
        feedback.answer(crm, outsider, expected=5, perceived=5, survey="one")
    with pytest.raises(NotFound, match="survey 'two'"):
        feedback.answer(crm, invited, expected=5, perceived=5, survey="two")
    feedback.answer(crm, invited, expected=5, perceived=5, survey="one")
    with pytest.raises(Conflict, match="already answered"):
        feedback.answer(crm, invited, expected=5, perceived=5, survey="one")
    with pytest.raises(ValidationError, match="period"):
        feedback.report(crm, period="decade")
    assert feedback.report(crm)["overall"]["answers"] == 1
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    with pytest.raises(AccessDenied):
        feedback.sample(crm.as_("zhang"), name="rep")
    with crm.transaction(write=False):
        assert crm.db.execute(select(func.count()).select_from(surveys)).scalar() == 1
