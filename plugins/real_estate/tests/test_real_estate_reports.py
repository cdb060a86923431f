"""Reports: open requests by age, deadline compliance, satisfaction by team and project."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_real_estate import places, reports
from crm_real_estate import requests as req
from real_estate_helpers import estate, leak

from crmcore import ValidationError

pytestmark = pytest.mark.crm(plugins=["real_estate"])


def test_open_requests_by_age(crm, crm_clock):
    estate(crm)
    now = crm_clock.now()
    leak(crm, at=now - dt.timedelta(hours=2))  # <1d
    leak(crm, at=now - dt.timedelta(days=2), category="electrical")  # 1-3d, received
    leak(crm, at=now - dt.timedelta(days=10))  # 7-30d
    old = leak(crm, at=now - dt.timedelta(days=40))  # >=30d
    done = leak(crm, at=now - dt.timedelta(days=5))
    req.complete(crm, done["id"])
    req.revisit(crm, done["id"], satisfaction=5)  # closed: not open
    req.complete(crm, old["id"])  # completed awaiting revisit: still open
    d = reports.ages(crm)
    assert d["open"] == 4
    got = {b["age"]: (b["count"], b["by_state"]) for b in d["buckets"]}
    assert got == {
        "<1d": (1, {"dispatched": 1}),
        "1-3d": (1, {"received": 1}),
        "3-7d": (0, {}),
        "7-30d": (1, {"dispatched": 1}),
        ">=30d": (1, {"completed": 1}),
    }


@pytest.mark.crm(
    plugins=["real_estate"], config={"plugins": {"real_estate": {"age_buckets_days": [2, 14]}}}
)
def test_age_buckets_from_config(crm, crm_clock):
    estate(crm)
    leak(crm, at=crm_clock.now() - dt.timedelta(days=3))
    assert [(b["age"], b["count"]) for b in reports.ages(crm)["buckets"]] == [
        ("<2d", 0),
        ("2-14d", 1),
        (">=14d", 0),
    ]


def test_deadline_compliance_by_team_counts_reopens_against_the_team(crm, crm_clock):
    estate(crm)
    on_time = leak(crm, urgency="urgent")
    late = leak(crm, urgency="emergency")
    reopened = leak(crm, urgency="urgent", customer="C-3", unit="JD/A2/0101")
    overdue = leak(crm, urgency="emergency", customer="C-3", unit="JD/A2/0101")
    leak(crm)  # open, within its deadline: not judged yet
    crm_clock.advance(hours=6)
    req.complete(crm, on_time["id"])
    req.complete(crm, late["id"])  # 6 h > 4 h
    req.complete(crm, reopened["id"])
    req.revisit(crm, reopened["id"], satisfaction=1, fixed=False)
    crm_clock.advance(hours=1)
    req.complete(crm, reopened["id"])
    d = reports.compliance(crm)
    teams = {r["team"]: r for r in d["teams"]}
    assert teams["PLB"] == {
        "team": "PLB",
        "requests": 3,
        "completed": 2,
        "on_time": 1,
        "late": 1,
        "open_overdue": 0,
        "reopened": 0,
        "reopens": 0,
        "compliance": 0.5,
    }
    assert teams["A2P"] == {
        "team": "A2P",
        "requests": 2,
        "completed": 1,
        "on_time": 0,
        "late": 1,
        "open_overdue": 1,
        "reopened": 1,
        "reopens": 1,
        "compliance": 0.0,
    }
    assert d["total"]["compliance"] == 0.25  # 1 on time of 3 completed + 1 overdue
    assert overdue["id"] in [r["id"] for r in req.list_requests(crm, overdue=True)]
    # the period filter is on the report time
    empty = reports.compliance(crm, since=crm_clock.now())
    assert empty["teams"] == [] and empty["total"]["compliance"] is None


def test_satisfaction_by_team_and_project(crm):
    estate(crm)
    places.add_project(crm, "HY", "Harbour View")
    places.add_building(crm, "HY", "B1")
    places.add_unit(crm, "HY/B1", "0801", handover_at=dt.datetime(2025, 1, 1))
    places.add_owner(crm, "HY/B1/0801", "C-2", role="owner")

    def visit(r, *scores):
        for i, s in enumerate(scores):
            req.complete(crm, r["id"])
            req.revisit(crm, r["id"], satisfaction=s, fixed=i == len(scores) - 1)

    visit(leak(crm), 5)
    visit(leak(crm), 3)
    visit(leak(crm, customer="C-3", unit="JD/A2/0101"), 2, 4)
    visit(leak(crm, customer="C-2", unit="HY/B1/0801"), 4)
    by_team = {r["team"]: r for r in reports.satisfaction(crm, by="team")["rows"]}
    assert by_team["PLB"] == {
        "team": "PLB",
        "revisits": 3,
        "mean": 4.0,
        "satisfied_share": round(2 / 3, 4),
        "not_fixed": 0,
    }
    assert by_team["A2P"] == {
        "team": "A2P",
        "revisits": 2,
        "mean": 3.0,
        "satisfied_share": 0.5,
        "not_fixed": 1,
    }
    by_project = {r["project"]: r for r in reports.satisfaction(crm, by="project")["rows"]}
    assert (by_project["JD"]["revisits"], by_project["JD"]["mean"]) == (4, 3.5)
    assert (by_project["HY"]["revisits"], by_project["HY"]["mean"]) == (1, 4.0)
    with pytest.raises(ValidationError, match="expected team or project"):
        reports.satisfaction(crm, by="rep")


def test_a_rep_sees_only_their_customers_in_reports_and_listings(crm):
    estate(crm)
    a = leak(crm)  # zhang's Wu Fang
    b = leak(crm, customer="C-2", unit="JD/A1/1202")  # chen's Wu Lei
    for r in (a, b):
        req.complete(crm, r["id"])
        req.revisit(crm, r["id"], satisfaction=5 if r is a else 1)
    zhang, chen = crm.as_("zhang"), crm.as_("chen")
    assert [r["id"] for r in req.list_requests(zhang)] == [a["id"]]
    assert [r["id"] for r in req.list_requests(chen)] == [b["id"]]
    assert reports.satisfaction(zhang)["rows"][0]["mean"] == 5.0
    assert reports.satisfaction(chen)["rows"][0]["mean"] == 1.0
    assert reports.compliance(zhang)["total"]["requests"] == 1
    assert reports.satisfaction(crm.as_("li"))["rows"][0]["revisits"] == 1  # team north
    from crmcore import AccessDenied, NotFound

    with pytest.raises((AccessDenied, NotFound)):
        req.get_request(chen, a["id"])
