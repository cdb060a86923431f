"""The agent report (issue rule 3)."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, add_policy, d, world
from crm_insurance import report, visits

from crmcore import ValidationError

pytestmark = pytest.mark.crm(plugins=PLUGINS)


def _agents(r):
    return {a["agent"]: a for a in r["agents"]}


def _scenario(crm):
    w = world(crm)
    third = crm.customers.add("Zhao Min", phone="131 0000 0003", owner="zhang")
    # zhang: 3 visits in January; 2 verified (scores 5 and 3), 1 expired
    for cust, at, reply in (
        (w["fang"], "2026-01-02T10:00", "非常满意"),
        (third, "2026-01-03T10:00", "一般"),
        (w["fang"], "2026-01-01T08:00", None),
    ):
        visits.record_visit(crm, cust, agent="zhang", at=d(at))
        if reply:
            phone = "139 0000 1111" if cust is w["fang"] else "131 0000 0003"
            crm.messages.receive_sms(phone, reply, at=d(at).replace(hour=12))
    # chen: one verified with score 5 in January, one in December (outside the period)
    visits.record_visit(crm, w["lei"], agent="chen", at=d("2026-01-04T10:00"))
    crm.messages.receive_sms("139 0000 2222", "很满意", at=d("2026-01-04T11:00"))
    visits.record_visit(crm, w["lei"], agent="chen", at=d("2025-12-20T10:00"))
    return w


def test_rates_scores_and_very_satisfied_share_per_agent(crm):
    _scenario(crm)
    r = report.agent_report(crm, start=d("2026-01-01"), end=d("2026-02-01"))
    zhang, chen = _agents(r)["zhang"], _agents(r)["chen"]
    assert (zhang["visits"], zhang["verified"], zhang["expired"], zhang["pending"]) == (3, 2, 1, 0)
    assert zhang["verified_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert zhang["average_score"] == 4.0
    assert zhang["very_satisfied_share"] == 0.5
    assert (chen["visits"], chen["verified"], chen["verified_rate"]) == (1, 1, 1.0)
    assert chen["very_satisfied_share"] == 1.0
    assert _agents(r)["wang"]["visits"] == 0 and _agents(r)["wang"]["verified_rate"] is None


def test_default_period_is_the_current_month_and_bad_period_is_refused(crm):
    _scenario(crm)
    r = report.agent_report(crm)
    assert (r["from"], r["to"]) == (d("2026-01-01"), d("2026-02-01"))
    dec = report.agent_report(crm, start=d("2025-12-01"), end=d("2026-01-01"))
    assert _agents(dec)["chen"]["visits"] == 1 and _agents(dec)["zhang"]["visits"] == 0
    with pytest.raises(ValidationError, match="not before"):
        report.agent_report(crm, start=d("2026-02-01"), end=d("2026-01-01"))


def test_vip_customers_below_guarantee_are_listed_under_their_agent(crm):
    w = _scenario(crm)
    add_policy(crm, w["fang"], "L-1", premium_cents=3_000_000)  # gold: 6 visits a year
    vip_lei = add_policy(crm, w["lei"], "L-2", agent="chen", premium_cents=10_000_000)
    assert vip_lei["policy_no"] == "L-2"
    r = report.agent_report(crm, start=d("2026-01-01"), end=d("2026-02-01"))
    # Wu Fang had a verified visit on 2 January: not below; Wu Lei (diamond, 12/year) verified
    # on 4 January: not below either
    assert _agents(r)["zhang"]["vip_below_guarantee"] == []
    crm.clock.set(d("2026-03-15T09:00"))  # > 365/6 days after 2 January; > 365/12 after 4 Jan
    r = report.agent_report(crm, start=d("2026-03-01"), end=d("2026-04-01"))
    assert [v["name"] for v in _agents(r)["zhang"]["vip_below_guarantee"]] == ["Wu Fang"]
    assert [v["grade"] for v in _agents(r)["chen"]["vip_below_guarantee"]] == ["diamond"]


def test_an_agent_sees_only_their_own_figures(crm):
    _scenario(crm)
    r = report.agent_report(crm.as_("zhang"), start=d("2026-01-01"), end=d("2026-02-01"))
    assert list(_agents(r)) == ["zhang"]
    r = report.agent_report(
        crm.as_("chen"), start=d("2026-01-01"), end=d("2026-02-01"), agent="zhang"
    )
    assert _agents(r)["zhang"]["visits"] == 0  # chen cannot see zhang's customers' visits
    sup = report.agent_report(crm.as_("li"), start=d("2026-01-01"), end=d("2026-02-01"))
    assert set(_agents(sup)) == {"zhang", "chen"}  # team north only
