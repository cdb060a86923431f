"""The shipped plugins' segment conditions, each on a hand-built case."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore.plugins import installed
from crmcore.segments import add_segment, segment_members

SHIPPED = ("retail", "utility", "insurance", "real_estate")
pytestmark = pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)


@pytest.fixture
def crm4(crm_factory):
    crm = crm_factory(plugins=SHIPPED)
    crm.clock.set(dt.datetime(2026, 2, 26, 9, 0))
    return crm


def names(crm, segment, **kw):
    return sorted(m["name"] for m in segment_members(crm, segment, **kw))


def test_retail_birthday_within_n_days_includes_feb_29_in_a_common_year(crm4):
    from crm_retail import members

    crm = crm4
    for name, birthday in (
        ("today", dt.date(1990, 2, 26)),
        ("leapling", dt.date(2004, 2, 29)),
        ("march 1", dt.date(1980, 3, 1)),
        ("march 2", dt.date(1980, 3, 2)),
        ("yesterday", dt.date(1985, 2, 25)),
    ):
        members.join(crm, crm.customers.add(name), birthday=birthday)
    members.join(crm, crm.customers.add("no birthday"))
    add_segment(crm, "soon", {"retail.birthday_within": {"days": 3}})
    assert names(crm, "soon") == ["leapling", "march 1", "today"]
    add_segment(crm, "today", {"retail.birthday_within": {"days": 0}})
    assert names(crm, "today") == ["today"]
    # counted from --at
    assert names(crm, "today", at=dt.datetime(2026, 3, 2, 8, 0)) == ["march 2"]


def test_insurance_policy_maturing_within_n_days(crm4):
    from crm_insurance.policies import add_policy

    crm = crm4
    now = crm.now()
    crm.staff.add("agent", "Agent", roles=["rep"])
    for i, (name, days, status) in enumerate(
        (("in 10 days", 10, "active"), ("in 40 days", 40, "active"), ("lapsed", 5, "lapsed"))
    ):
        add_policy(
            crm,
            crm.customers.add(name),
            f"P-{i}",
            product_line="life",
            term="long",
            sum_at_risk_cents=1,
            premium_cents=1,
            start_at=now - dt.timedelta(days=400),
            status=status,
            maturity=now + dt.timedelta(days=days),
            agent="agent",
        )
    add_segment(crm, "maturing", {"insurance.maturing_within": {"days": 30}})
    assert names(crm, "maturing") == ["in 10 days"]


def test_real_estate_owner_of_a_unit_handed_over_in_the_last_n_days(crm4):
    from crm_real_estate import places

    crm = crm4
    now = crm.now()
    places.add_project(crm, "P1", "Garden")
    places.add_building(crm, "P1", "B1")
    places.add_unit(crm, "P1/B1", "101", handover_at=now - dt.timedelta(days=10))
    places.add_unit(crm, "P1/B1", "102", handover_at=now - dt.timedelta(days=100))
    places.add_owner(crm, "P1/B1/101", crm.customers.add("new owner"))
    places.add_owner(crm, "P1/B1/101", crm.customers.add("tenant"), role="tenant")
    places.add_owner(crm, "P1/B1/102", crm.customers.add("old owner"))
    add_segment(crm, "new-homes", {"real_estate.handed_over_within": {"days": 30}})
    assert names(crm, "new-homes") == ["new owner"]
