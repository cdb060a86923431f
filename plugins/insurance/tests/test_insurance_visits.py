"""Visit verification by the customer's own SMS (issue rule 2)."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, d, world
from crm_insurance import visits
from crm_insurance.scores import parse_score
from crm_insurance.tables import replies
from sqlalchemy import select

from crmcore import NotFound, ValidationError

pytestmark = pytest.mark.crm(plugins=PLUGINS)


def _visit(crm, who="fang", agent="zhang", at="2026-01-05T09:00"):
    w = world(crm)
    v = visits.record_visit(crm, w[who], agent=agent, at=d(at), note="policy check-up")
    return w, v


def _replies(crm):
    with crm.transaction(write=False):
        return [dict(r._mapping) for r in crm.db.execute(select(replies).order_by(replies.c.id))]


SENDERS = ["139 0000 1111", "+86-139-0000-1111", "0086 13900001111", "+8613900001111"]


def test_reply_from_customers_phone_verifies_the_visit(crm):
    w, v = _visit(crm)
    crm.clock.advance(hours=2)
    out = crm.messages.receive_sms("139 0000 1111", "非常满意，谢谢！")
    assert out["routed"] == [f"insurance: verified visit {v['id']}, score 5 (very satisfied)"]
    [row] = visits.list_visits(crm)
    assert row["status"] == "verified"
    assert row["reply_at"] == d("2026-01-05T11:00")
    assert row["reply_phone"] == "+8613900001111"
    assert row["reply_text"] == "非常满意，谢谢！"
    assert row["score"] == 5
    [reply] = _replies(crm)
    assert reply["matched"] and reply["reason"] == "verified" and reply["visit_id"] == v["id"]
    assert any(e.kind == "insurance.visit_verified" for e in crm.records.timeline(w["fang"]))


def test_sender_is_matched_whatever_the_spelling_of_the_number(crm):
    w = world(crm)
    for sender in SENDERS:
        v = visits.record_visit(crm, w["fang"], agent="zhang")
        crm.clock.advance(minutes=5)
        out = crm.messages.receive_sms(sender, "满意")
        assert out["routed"] == [f"insurance: verified visit {v['id']}, score 4 (satisfied)"]
        crm.clock.advance(minutes=5)
    assert {v["status"] for v in visits.list_visits(crm)} == {"verified"}


def test_reply_from_a_number_on_nobodys_record_is_stored_unmatched(crm):
    _, v = _visit(crm)
    crm.clock.advance(minutes=10)
    out = crm.messages.receive_sms("138 0000 9999", "非常满意")  # e.g. the agent's own phone
    assert "unknown_number" in out["routed"][0]
    assert visits.list_visits(crm)[0]["status"] == "pending"
    [reply] = _replies(crm)
    assert reply["matched"] is False and reply["reason"] == "unknown_number"
    assert reply["customer_id"] is None and reply["score"] == 5


def test_reply_from_another_customers_phone_never_verifies(crm):
    w, v = _visit(crm, who="fang")  # Wu Lei's phone replies for Wu Fang's visit
    crm.clock.advance(minutes=10)
    out = crm.messages.receive_sms("139 0000 2222", "很满意")
    assert "no_visit" in out["routed"][0]
    assert visits.list_visits(crm)[0]["status"] == "pending"
    [reply] = _replies(crm)
    assert reply["reason"] == "no_visit" and reply["customer_id"] == w["lei"].id


def test_second_reply_does_not_verify_twice(crm):
    _, v = _visit(crm)
    crm.clock.advance(hours=1)
    crm.messages.receive_sms("13900001111", "满意")
    crm.clock.advance(hours=1)
    out = crm.messages.receive_sms("13900001111", "非常不满意")
    assert "duplicate" in out["routed"][0]
    [row] = visits.list_visits(crm)
    assert row["score"] == 4 and row["reply_at"] == d("2026-01-05T10:00")
    assert [r["reason"] for r in _replies(crm)] == ["verified", "duplicate"]
    assert [r["score"] for r in _replies(crm)] == [4, 1]


def test_reply_after_the_window_is_stored_but_does_not_verify(crm):
    _, v = _visit(crm)
    crm.clock.advance(hours=48, minutes=1)
    out = crm.messages.receive_sms("13900001111", "5")
    assert "late" in out["routed"][0]
    [row] = visits.list_visits(crm)
    assert row["status"] == "expired" and row["score"] is None
    [reply] = _replies(crm)
    assert reply["reason"] == "late" and reply["visit_id"] == v["id"] and reply["score"] == 5


def test_reply_exactly_at_the_window_end_still_verifies(crm):
    _visit(crm)
    crm.clock.advance(hours=48)
    assert "verified" in crm.messages.receive_sms("13900001111", "满意")["routed"][0]


@pytest.mark.crm(plugins=PLUGINS, config={"plugins": {"insurance": {"visit_window_hours": 2}}})
def test_window_is_configurable(crm):
    _visit(crm)
    crm.clock.advance(hours=3)
    assert "late" in crm.messages.receive_sms("13900001111", "满意")["routed"][0]


def test_one_reply_verifies_only_the_most_recent_pending_visit(crm):
    w, first = _visit(crm, at="2026-01-05T08:00")
    second = visits.record_visit(crm, w["fang"], agent="chen", at=d("2026-01-05T09:00"))
    crm.messages.receive_sms("13900001111", "满意")
    status = {v["id"]: v["status"] for v in visits.list_visits(crm)}
    assert status == {first["id"]: "pending", second["id"]: "verified"}


def test_number_on_a_contact_point_of_the_visited_customer_verifies(crm):
    w = world(crm)
    other = crm.customers.add("Wu Fang (old record)", phone="136 0000 7777")
    crm.customers.merge(w["fang"], other)  # the old phone becomes a contact point of Wu Fang
    v = visits.record_visit(crm, w["fang"], agent="zhang")
    out = crm.messages.receive_sms("136-0000-7777", "满意")
    assert out["routed"] == [f"insurance: verified visit {v['id']}, score 4 (satisfied)"]


def test_sms_that_is_no_visit_reply_is_left_alone(crm):
    world(crm)
    out = crm.messages.receive_sms("138 0000 9999", "please call me back")
    assert out["routed"] == []
    assert _replies(crm) == []


def test_visit_in_the_future_or_by_a_departed_agent_is_refused(crm):
    w = world(crm)
    with pytest.raises(ValidationError, match="in the future"):
        visits.record_visit(crm, w["fang"], agent="zhang", at=d("2026-01-06T09:00"))
    crm.staff.leave("chen", handover_to="li")
    with pytest.raises(ValidationError, match="departed"):
        visits.record_visit(crm, w["fang"], agent="chen")
    assert visits.list_visits(crm) == []
    assert crm.records.interactions(w["fang"]) == []


def test_agent_cannot_record_a_visit_to_another_agents_customer(crm):
    w = world(crm)
    with pytest.raises(NotFound):  # hidden answers like missing
        visits.record_visit(crm.as_("wang"), w["fang"])
    assert visits.list_visits(crm) == []


def test_agent_sees_only_visits_to_their_customers(crm):
    w = world(crm)
    visits.record_visit(crm.as_("zhang"), w["fang"])
    visits.record_visit(crm.as_("chen"), w["lei"])
    assert [v["agent"] for v in visits.list_visits(crm.as_("zhang"))] == ["zhang"]
    assert len(visits.list_visits(crm.as_("li"))) == 2
    # unmatched replies from unknown numbers are not shown to reps
    crm.messages.receive_sms("138 0000 9999", "满意")
    assert visits.list_replies(crm.as_("zhang")) == []
    assert len(visits.list_replies(crm)) == 1


def test_forget_erases_reply_text_and_number(crm):
    _, v = _visit(crm)
    crm.messages.receive_sms("13900001111", "非常满意 张经理很专业")
    crm.customers.forget("C-1")
    [row] = visits.list_visits(crm)
    assert row["reply_text"] == "[erased]" and row["reply_phone"] is None
    assert _replies(crm)[0]["text"] == "[erased]"
    assert row["score"] == 5 and row["status"] == "verified"  # anonymous facts stay


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("非常满意", 5),
        ("很满意!", 5),
        ("Very satisfied", 5),
        ("满意", 4),
        ("比较满意", 4),
        ("一般", 3),
        ("基本满意", 3),
        ("不满意", 2),
        ("不太满意", 2),
        ("非常不满意", 1),
        ("很不满意", 1),
        ("dissatisfied", 2),
        ("satisfied", 4),
        ("5", 5),
        ("评分：4分", 4),
        ("1", 1),
        ("我打3", 3),
        ("谢谢 123456", None),
        ("hello", None),
        ("", None),
        ("10", None),
    ],
)
def test_parse_score(text, score):
    assert parse_score(text) == score
