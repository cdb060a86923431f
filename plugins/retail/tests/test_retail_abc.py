"""ABC classification (70/20/10 by default) and the service level of each class."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail.tables import service_plans
from sqlalchemy import select

T0 = dt.datetime(2026, 1, 5, 9, 0)
SPEND = [700_000, 100_000, 100_000, 50_000, 30_000, 20_000]  # 70 % / 20 % / 10 %


def world(crm, spend=SPEND, owner="zhang"):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    out = []
    for i, cents in enumerate(spend):
        c = crm.customers.add(f"C{i}", phone=f"1380000{i:04d}", owner=owner)
        crm.records.add_transaction(c, cents, occurred_at=T0 - dt.timedelta(days=10 + i))
        out.append(c)
    out.append(crm.customers.add("Nothing", phone="13900000000", owner=owner))
    return out


def plans(crm):
    with crm.transaction(write=False):
        return {r.customer_id: r for r in crm.db.execute(select(service_plans))}


def abc_sms(outbox):
    return [m for m in outbox.queued("sms") if m.idempotency_key.startswith("retail:abc:B:")]


@pytest.mark.crm(plugins=["retail"])
def test_default_cutoffs_and_service_levels(crm, crm_outbox):
    cs = world(crm)
    res = crm.jobs.run(["retail.abc_service"], at=T0)[0]["summary"]
    labels = [crm.customers.labels(c)["abc"] for c in cs]
    assert labels == ["A", "B", "B", "C", "C", "C", "C"]
    assert res["classes"]["A"]["spend_share"] == 0.7
    # A: plan, named account manager, reminder
    assert set(plans(crm)) == {cs[0].id}
    rels = [r for r in crm.customers.relationships(cs[0]) if r.kind == "account_manager"]
    assert [r.to_staff_id for r in rels] == [crm.staff.get("zhang").id]
    (rem,) = crm.tickets.due_reminders(staff="zhang", at=T0)
    assert rem.customer_id == cs[0].id and "one-to-one service plan" in rem.text
    # B: survey invitations; C: nothing
    assert {m.customer_id for m in abc_sms(crm_outbox)} == {cs[1].id, cs[2].id}
    assert res["service"]["A"]["new_plans"] == 1
    assert res["service"]["B"]["survey_invitations"] == 2
    card = crm.records.card(cs[1])
    assert card["labels"]["retail.service"] == "survey invitations"


@pytest.mark.crm(plugins=["retail"])
def test_service_follow_ups_are_idempotent(crm, crm_outbox):
    cs = world(crm)
    crm.jobs.run(["retail.abc_service"], at=T0)
    again = crm.jobs.run(["retail.abc_service"], at=T0)[0]["summary"]
    later = crm.jobs.run(["retail.abc_service"], at=T0 + dt.timedelta(days=20))[0]["summary"]
    assert again["service"]["A"]["new_plans"] == 0 and later["service"]["A"]["new_plans"] == 0
    assert len(crm.tickets.due_reminders(staff="zhang", at=T0 + dt.timedelta(days=30))) == 1
    assert len(abc_sms(crm_outbox)) == 2
    assert len([r for r in crm.customers.relationships(cs[0]) if r.kind == "account_manager"]) == 1
    # a new quarter: B customers are invited again
    crm.jobs.run(["retail.abc_service"], at=dt.datetime(2026, 4, 2, 9))
    assert len(abc_sms(crm_outbox)) == 4


@pytest.mark.crm(plugins=["retail"])
def test_leaving_class_a_ends_the_plan_and_re_entering_starts_a_new_one(crm):
    cs = world(crm)
    crm.jobs.run(["retail.abc_service"], at=T0)
    crm.records.add_transaction(cs[5], 5_000_000, occurred_at=T0)  # C5 now dominates
    crm.jobs.run(["retail.abc_service"], at=T0 + dt.timedelta(days=1))
    p = plans(crm)
    assert p[cs[0].id].active is False and p[cs[0].id].ended_at is not None
    assert p[cs[5].id].active is True
    crm.records.add_transaction(cs[0], 9_000_000, occurred_at=T0 + dt.timedelta(days=2))
    crm.jobs.run(["retail.abc_service"], at=T0 + dt.timedelta(days=3))
    assert plans(crm)[cs[0].id].active is True
    texts = [
        r.text
        for r in crm.tickets.due_reminders(staff="zhang", at=T0 + dt.timedelta(days=5))
        if r.customer_id == cs[0].id
    ]
    assert len(texts) == 2


@pytest.mark.crm(
    plugins=["retail"], config={"plugins": {"retail": {"abc": {"a_share": 0.5, "b_share": 0.4}}}}
)
def test_cutoffs_come_from_config(crm):
    cs = world(crm, spend=[400_000, 300_000, 200_000, 100_000])
    crm.jobs.run(["retail.abc_service"], at=T0)
    assert [crm.customers.labels(c)["abc"] for c in cs[:4]] == ["A", "A", "B", "C"]


@pytest.mark.crm(plugins=["retail"])
def test_a_customer_without_owner_is_reported_without_manager(crm):
    cs = world(crm, owner=None)
    res = crm.jobs.run(["retail.abc_service"], at=T0)[0]["summary"]
    assert res["service"]["A"]["without_manager"] == [cs[0].id]
    assert crm.tickets.due_reminders(at=T0) == []


@pytest.mark.crm(
    plugins=["retail"],
    config={"plugins": {"retail": {"abc": {"default_account_manager": "zhang"}}}},
)
def test_default_account_manager_from_config(crm):
    cs = world(crm, owner=None)
    crm.jobs.run(["retail.abc_service"], at=T0)
    (rem,) = crm.tickets.due_reminders(staff="zhang", at=T0)
    assert rem.customer_id == cs[0].id
