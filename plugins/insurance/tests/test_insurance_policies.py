"""Policies, payouts and the customer profile (issue rule 1)."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, add_policy, d, world
from crm_insurance import policies

from crmcore import Conflict, NotFound, ValidationError

pytestmark = pytest.mark.crm(plugins=PLUGINS)


def test_policy_records_every_field(crm):
    w = world(crm)
    p = add_policy(
        crm,
        w["fang"],
        "L-1",
        insured=w["lei"],
        product_line="critical_illness",
        term="long",
        sum_at_risk_cents=50_000_000,
        premium_cents=800_000,
        start_at=d("2020-06-20"),
        paid_to=d("2026-06-20"),
        payment_end=d("2040-06-20"),
        maturity=d("2060-06-20"),
        product_name="CI plus",
    )
    assert p == {
        "id": p["id"],
        "policy_no": "L-1",
        "customer_id": w["fang"].id,
        "insured_customer_id": w["lei"].id,
        "product_line": "critical_illness",
        "product_name": "CI plus",
        "term": "long",
        "sum_at_risk_cents": 50_000_000,
        "premium_cents": 800_000,
        "status": "active",
        "start_at": d("2020-06-20"),
        "paid_to": d("2026-06-20"),
        "payment_end": d("2040-06-20"),
        "maturity": d("2060-06-20"),
        "agent": "zhang",
        "agent_active": True,
    }
    assert policies.list_policies(crm, customer=w["lei"])[0]["policy_no"] == "L-1"


BAD_POLICIES = [
    ({"product_line": "pets"}, "product line"),
    ({"term": "medium"}, "term"),
    ({"status": "sleeping"}, "policy status"),
    ({"premium_cents": -1}, "premium"),
    ({"sum_at_risk_cents": 1.5}, "sum at risk"),
    ({"maturity": d("2019-01-01")}, "before the start"),
    ({"payment_end": d("2050-01-01"), "maturity": d("2040-01-01")}, "after the maturity"),
    ({"agent": "nobody"}, "not found"),
]


def test_bad_policy_is_refused_and_nothing_written(crm):
    w = world(crm)
    for change, message in BAD_POLICIES:
        with pytest.raises((ValidationError, NotFound), match=message):
            add_policy(crm, w["fang"], "L-1", **change)
    assert policies.list_policies(crm) == []
    assert crm.customers.relationships(w["fang"]) == []


def test_duplicate_policy_number_and_departed_agent_are_refused(crm):
    w = world(crm)
    add_policy(crm, w["fang"], "L-1")
    with pytest.raises(Conflict, match="L-1"):
        add_policy(crm, w["lei"], "L-1", agent="chen")
    crm.staff.leave("chen", handover_to="li")
    with pytest.raises(ValidationError, match="departed"):
        add_policy(crm, w["lei"], "L-2", agent="chen")
    assert [p["policy_no"] for p in policies.list_policies(crm)] == ["L-1"]


def test_serving_agent_is_linked_to_the_policyholder_and_may_see_them(crm):
    w = world(crm)
    assert policies.list_policies(crm.as_("chen"), customer=None) == []
    add_policy(crm, w["fang"], "L-1", agent="chen")  # Wu Fang is zhang's customer
    assert [p["policy_no"] for p in policies.list_policies(crm.as_("chen"))] == ["L-1"]
    assert policies.list_policies(crm.as_("wang")) == []
    with pytest.raises(NotFound):  # hidden answers like missing
        policies.profile(crm.as_("wang"), w["fang"])


def test_status_and_payouts(crm):
    w = world(crm)
    add_policy(crm, w["fang"], "L-1")
    assert policies.set_status(crm, "L-1", "lapsed")["status"] == "lapsed"
    r = policies.record_payout(crm, "L-1", "claim", 320_000, paid_at=d("2026-01-01"))
    assert r["customer_id"] == w["fang"].id and r["amount_cents"] == 320_000
    with pytest.raises(ValidationError, match="payout kind"):
        policies.record_payout(crm, "L-1", "bonus", 100)
    with pytest.raises(ValidationError, match="positive"):
        policies.record_payout(crm, "L-1", "claim", 0)
    with pytest.raises(ValidationError, match="future"):
        policies.record_payout(crm, "L-1", "claim", 100, paid_at=d("2026-02-01"))
    with pytest.raises(NotFound):
        policies.set_status(crm, "L-404", "active")
    assert any(e.kind == "insurance.claim" for e in crm.records.timeline(w["fang"]))


def test_profile_for_the_agent(crm):
    w = world(crm)
    crm.customers.update(
        w["fang"],
        attributes={
            "insurance.birth_date": "1975-03-08",
            "insurance.gender": "female",
            "insurance.points": 1200,
        },
    )
    add_policy(crm, w["fang"], "L-1", sum_at_risk_cents=150_000_000, premium_cents=3_600_000)
    add_policy(
        crm,
        w["fang"],
        "A-1",
        product_line="accident",
        term="short",
        sum_at_risk_cents=20_000_000,
        premium_cents=30_000,
    )
    add_policy(
        crm,
        w["fang"],
        "A-0",
        product_line="accident",
        term="short",
        status="matured",
        sum_at_risk_cents=99_000_000,
    )
    add_policy(
        crm,
        w["fang"],
        "CI-1",
        product_line="critical_illness",
        insured=w["lei"],
        sum_at_risk_cents=50_000_000,
    )
    add_policy(
        crm,
        w["lei"],
        "CI-2",
        product_line="critical_illness",
        insured=w["fang"],
        agent="chen",
        sum_at_risk_cents=30_000_000,
    )
    p = policies.profile(crm, "C-1")
    assert p["age"] == 50 and p["gender"] == "female" and p["points"] == 1200
    assert p["grade"] == "gold"  # annual premium 36,000 + ... >= 30,000 yuan
    assert p["active_long_term_policies"] == 2 and p["active_short_term_policies"] == 1
    assert p["policies_held"] == 4
    # sum at risk of active policies insuring Wu Fang, per line
    assert p["sum_at_risk_cents_by_line"] == {
        "accident": 20_000_000,
        "critical_illness": 30_000_000,
        "life": 150_000_000,
    }
    assert p["phone"] == "+8613900001111"
    assert crm.records.card("C-1")["labels"]["insurance.grade"] == "gold"


def test_profile_masks_the_phone_without_pii(crm):
    w = world(crm)
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    assert policies.profile(crm.as_("audit"), w["fang"])["phone"] == "+86139****1111"


def test_merge_moves_policies_held_and_insured(crm):
    w = world(crm)
    dup = crm.customers.add("Wu Lei dup", phone="135 0000 0001", owner="chen")
    add_policy(crm, dup, "L-9", agent="chen")
    add_policy(crm, w["fang"], "CI-9", insured=dup)
    crm.customers.merge(w["lei"], dup)
    held = {p["policy_no"]: p for p in policies.list_policies(crm, customer=w["lei"])}
    assert held["L-9"]["customer_id"] == w["lei"].id
    assert held["CI-9"]["insured_customer_id"] == w["lei"].id


def test_birth_date_must_be_a_real_past_date(crm):
    w = world(crm)
    for bad, message in (
        ("1975-13-40", "is not an ISO date"),
        ("0001-01-01", "out of range"),
        ("2030-01-01", "in the future"),
    ):
        with pytest.raises(ValidationError, match=message):
            crm.customers.update(w["fang"], attributes={"insurance.birth_date": bad})
    assert "insurance.birth_date" not in crm.customers.get(w["fang"]).attributes
