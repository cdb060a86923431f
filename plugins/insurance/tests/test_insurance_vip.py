"""VIP grades from configurable rules, guaranteed visits and the reminder job (rule 4)."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, add_policy, d, world
from crm_insurance import vip, visits

from crmcore import AccessDenied, ConfigError

GRADES = [
    {
        "name": "platinum",
        "visits_per_year": 12,
        "match": "all",
        "min_annual_premium_cents": 2_000_000,
        "min_tenure_years": 5,
    },
    {"name": "gold", "visits_per_year": 4, "min_sum_at_risk_cents": 100_000_000},
    {"name": "loyal", "visits_per_year": 2, "min_tenure_years": 10},
]
CFG = {"plugins": {"insurance": {"vip_grades": GRADES}}}
pytestmark = pytest.mark.crm(plugins=PLUGINS, config=CFG)


def _grades(crm):
    return {r["name"]: r["grade"] for r in vip.vip_list(crm)}


def _people(crm):
    w = world(crm)
    for name, phone in (
        ("Zhao", "131 0000 0001"),
        ("Qian", "131 0000 0002"),
        ("Sun", "131 0000 0003"),
        ("Li Si", "131 0000 0004"),
    ):
        w[name] = crm.customers.add(name, phone=phone, owner="zhang")
    return w


def test_grades_follow_the_configured_rules(crm):
    w = _people(crm)
    # platinum needs premium AND tenure ("all")
    add_policy(crm, w["Zhao"], "P-1", premium_cents=2_000_000, start_at=d("2020-01-01"))
    # premium but too new: not platinum; nothing else -> none
    add_policy(
        crm,
        w["Qian"],
        "P-2",
        premium_cents=2_000_000,
        start_at=d("2022-01-06"),
        sum_at_risk_cents=1,
    )
    # gold by sum at risk (the "any" default)
    add_policy(crm, w["Sun"], "P-3", premium_cents=1, sum_at_risk_cents=100_000_000)
    # loyal by tenure: first policy 10 years ago to the day, even if lapsed since
    add_policy(
        crm,
        w["Li Si"],
        "P-4",
        premium_cents=1,
        sum_at_risk_cents=1,
        start_at=d("2016-01-05T09:00"),
        status="lapsed",
    )
    # inactive policies do not count for premium or sum at risk
    add_policy(
        crm,
        w["fang"],
        "P-5",
        sum_at_risk_cents=500_000_000,
        status="surrendered",
        start_at=d("2025-01-01"),
    )
    assert _grades(crm) == {"Zhao": "platinum", "Sun": "gold", "Li Si": "loyal"}
    crm.clock.advance(days=-1)  # a day earlier Li Si had 9.99 years
    assert "Li Si" not in _grades(crm)


def test_bad_grade_rules_are_a_start_up_error(crm_factory):
    with pytest.raises(ConfigError, match="vip_grades"):
        crm_factory(
            PLUGINS,
            {"plugins": {"insurance": {"vip_grades": [{"name": "gold", "visits_per_year": 4}]}}},
        )
    with pytest.raises(ConfigError, match="visits_per_year"):
        crm_factory(
            PLUGINS,
            {
                "plugins": {
                    "insurance": {
                        "vip_grades": [
                            {"name": "gold", "visits_per_year": 0, "min_tenure_years": 1}
                        ]
                    }
                }
            },
        )


def test_job_reminds_the_agent_once_per_guarantee_period(crm):
    w = _people(crm)
    add_policy(crm, w["Sun"], "P-3", sum_at_risk_cents=100_000_000)  # gold: 4 a year
    add_policy(crm, w["lei"], "P-6", agent="chen", sum_at_risk_cents=100_000_000)
    [first] = crm.jobs.run(["insurance.vip_visit_reminders"])
    assert first["summary"]["created"] == 2
    again = crm.jobs.run(["insurance.vip_visit_reminders"])[0]["summary"]
    assert again["created"] == 0 and again["already_reminded"] == 2
    crm.clock.advance(days=30)  # same quarter: still nothing new
    assert crm.jobs.run(["insurance.vip_visit_reminders"])[0]["summary"]["created"] == 0
    rem = crm.tickets.due_reminders(staff="zhang")
    assert [r.customer_id for r in rem] == [w["Sun"].id]
    assert "gold" in rem[0].text and rem[0].source == "insurance"
    assert [r.customer_id for r in crm.tickets.due_reminders(staff="chen")] == [w["lei"].id]


def test_a_verified_visit_inside_the_interval_satisfies_the_guarantee(crm):
    w = _people(crm)
    add_policy(crm, w["Sun"], "P-3", sum_at_risk_cents=100_000_000)
    visits.record_visit(crm, w["Sun"], agent="zhang", at=d("2025-12-01T10:00"))
    crm.messages.receive_sms("131 0000 0003", "满意", at=d("2025-12-01T12:00"))
    # an unverified visit does not count
    visits.record_visit(crm, w["Sun"], agent="zhang", at=d("2026-01-02T10:00"))
    assert vip.vip_list(crm, due_only=True) == []
    assert crm.jobs.run(["insurance.vip_visit_reminders"])[0]["summary"]["created"] == 0
    # 365/4 = 91.25 days after the verified visit it is due again
    crm.clock.set(d("2026-03-03T09:00"))
    [due] = vip.vip_list(crm, due_only=True)
    assert due["last_verified_visit"] == d("2025-12-01T10:00")
    assert crm.jobs.run(["insurance.vip_visit_reminders"])[0]["summary"]["created"] == 1


def test_job_needs_company_wide_scope(crm):
    world(crm)
    with pytest.raises(AccessDenied):
        crm.as_("li").jobs.run(["insurance.vip_visit_reminders"])
