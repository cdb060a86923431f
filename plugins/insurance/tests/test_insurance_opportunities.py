"""Opportunity lists within a horizon (issue rule 6). The clock is 2026-01-05 09:00."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, add_policy, d, world
from crm_insurance import policies
from crm_insurance.opportunities import opportunities

from crmcore import ValidationError

pytestmark = pytest.mark.crm(plugins=PLUGINS)


def _setup(crm):
    w = world(crm)
    f, lei = w["fang"], w["lei"]
    # renewal premium due in 10 days; another in 40 days (outside 30); one paid up already
    add_policy(crm, f, "R-IN", paid_to=d("2026-01-15"), payment_end=d("2030-01-15"))
    add_policy(crm, f, "R-OUT", paid_to=d("2026-02-14"))
    add_policy(
        crm,
        f,
        "R-PAIDUP",
        paid_to=d("2026-01-20"),
        payment_end=d("2026-01-20"),
        maturity=d("2040-01-01"),
    )
    add_policy(crm, f, "R-LAPSED", paid_to=d("2026-01-10"), status="lapsed")
    # a short-term cover ending in the window: renew it
    add_policy(
        crm,
        lei,
        "S-END",
        agent="chen",
        term="short",
        product_line="accident",
        maturity=d("2026-01-31"),
    )
    # payment period ending; maturity
    add_policy(crm, lei, "P-END", agent="chen", payment_end=d("2026-02-01"))
    add_policy(crm, f, "M-1", maturity=d("2026-01-25"))
    # benefit and claim paid: 20 days ago (in), 40 days ago (out)
    add_policy(crm, lei, "C-1", agent="chen", product_line="health", term="short")
    policies.record_payout(crm, "C-1", "claim", 100_000, paid_at=d("2025-12-16"))
    policies.record_payout(crm, "C-1", "claim", 100_000, paid_at=d("2025-11-26"))
    policies.record_payout(crm, "M-1", "benefit", 500_000, paid_at=d("2026-01-01"))
    return w


def _pairs(rows):
    return [(r["kind"], r["policy_no"]) for r in rows]


def test_each_kind_within_the_default_horizon(crm):
    w = _setup(crm)
    rows = opportunities(crm)
    assert _pairs(rows) == [
        ("claim", "C-1"),
        ("benefit", "M-1"),
        ("renewal", "R-IN"),
        ("payment_end", "R-PAIDUP"),  # its last premium is due: payment period ends, no renewal
        ("maturity", "M-1"),
        ("renewal", "S-END"),
        ("payment_end", "P-END"),
    ]
    by = {(r["kind"], r["policy_no"]): r for r in rows}
    renewal = by[("renewal", "R-IN")]
    assert renewal["date"] == d("2026-01-15") and renewal["customer"] == "Wu Fang"
    assert renewal["customer_id"] == w["fang"].id and renewal["agent"] == "zhang"
    assert by[("claim", "C-1")]["amount_cents"] == 100_000
    assert by[("renewal", "S-END")]["agent"] == "chen"


def test_horizon_kind_and_agent_filters(crm):
    _setup(crm)
    assert ("renewal", "R-OUT") in _pairs(opportunities(crm, horizon_days=45))
    assert ("claim", "C-1") in _pairs(opportunities(crm, kinds=["claim"], horizon_days=45))
    assert len([r for r in opportunities(crm, kinds=["claim"], horizon_days=45)]) == 2
    assert _pairs(opportunities(crm, kinds=["maturity"])) == [("maturity", "M-1")]
    assert {r["agent"] for r in opportunities(crm, agent="chen")} == {"chen"}
    with pytest.raises(ValidationError, match="opportunity kind"):
        opportunities(crm, kinds=["lottery"])
    with pytest.raises(ValidationError, match="horizon"):
        opportunities(crm, horizon_days=0)


@pytest.mark.crm(
    plugins=PLUGINS, config={"plugins": {"insurance": {"opportunity_horizon_days": 45}}}
)
def test_default_horizon_is_configurable(crm):
    _setup(crm)
    assert ("renewal", "R-OUT") in _pairs(opportunities(crm))


def test_agents_see_only_their_customers_opportunities(crm):
    _setup(crm)
    assert {r["customer"] for r in opportunities(crm.as_("chen"))} == {"Wu Lei"}
    assert opportunities(crm.as_("wang")) == []


def test_departed_agent_is_shown_as_such(crm):
    _setup(crm)
    crm.staff.leave("chen", handover_to="li")
    rows = [r for r in opportunities(crm) if r["policy_no"] == "S-END"]
    assert rows[0]["agent"] == "chen" and rows[0]["agent_active"] is False
