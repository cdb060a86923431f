"""The retail HTTP routes: the same operations and one-line errors as the CLI,
201 with the created resource, typed bodies, and the caller's scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from crmcore.web import create_app  # noqa: E402

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


@pytest.fixture
def world(crm: Any, crm_clock: Any) -> dict[str, Any]:
    crm_clock.set(T0)
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("chen", "Chen", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    mine = crm.customers.add("Mine Customer", phone="13800000001", owner="chen")
    theirs = crm.customers.add("Their Customer", phone="13800000002", owner="zhang")
    app = create_app(crm.config, clock=crm_clock)
    # test-only: the staff key comes from a header
    app.state.authenticate = lambda request: request.headers.get("X-Test-Staff")
    return {"api": TestClient(app), "mine": mine, "theirs": theirs, "crm": crm}


def as_(world: dict[str, Any], who: str, method: str, path: str, body: Any = None) -> Any:
    return world["api"].request(
        method, f"/api/v1/retail{path}", json=body, headers={"X-Test-Staff": who}
    )


@RETAIL
def test_enrol_answers_201_with_the_member_and_show_reads_it_back(world: dict[str, Any]) -> None:
    mine = world["mine"]
    r = as_(world, "chen", "POST", "/members", {"customer": str(mine.id), "birthday": "1990-04-01"})
    assert r.status_code == 201, r.text
    assert r.json()["member_no"] == f"M{mine.id:08d}"
    assert r.json()["tier"] == "standard" and r.json()["birthday"] == "1990-04-01"
    shown = as_(world, "chen", "GET", f"/members/{mine.id}").json()
    assert shown["member_no"] == r.json()["member_no"]
    again = as_(world, "chen", "POST", "/members", {"customer": str(mine.id)})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert (
        again.json()["detail"]
        == f"customer {mine.id} (Mine Customer) is already member " + (r.json()["member_no"])
    )


@RETAIL
def test_points_history_and_redemption(world: dict[str, Any]) -> None:
    crm, mine = world["crm"], world["mine"]
    as_(world, "chen", "POST", "/members", {"customer": str(mine.id)})
    crm.records.add_transaction(mine, 50_000, occurred_at=T0)
    history = as_(world, "chen", "GET", f"/members/{mine.id}/points").json()
    earned = history["balance"]
    assert earned > 0 and [e["kind"] for e in history["entries"]] == ["accrual"]
    r = as_(world, "chen", "POST", f"/members/{mine.id}/redemptions", {"points": 10, "ref": "R1"})
    assert r.status_code == 201 and r.json()["balance"] == earned - 10
    redeemed = as_(world, "chen", "GET", f"/members/{mine.id}/points?kind=redeem").json()
    assert [e["delta"] for e in redeemed["entries"]] == [-10]
    assert redeemed["balance"] == earned - 10
    too_many = as_(world, "chen", "POST", f"/members/{mine.id}/redemptions", {"points": 10**6})
    assert too_many.status_code == 422
    assert "cannot redeem 1000000" in too_many.json()["detail"]
    assert as_(world, "chen", "GET", f"/members/{mine.id}/points").json()["balance"] == earned - 10


@RETAIL
def test_a_body_with_an_unknown_or_bad_field_is_refused_naming_it(world: dict[str, Any]) -> None:
    mine = world["mine"]
    as_(world, "chen", "POST", "/members", {"customer": str(mine.id)})
    r = as_(world, "chen", "POST", f"/members/{mine.id}/redemptions", {"points": 5, "pionts": 1})
    assert r.status_code == 422 and r.json()["detail"].startswith("pionts:")
    r = as_(world, "chen", "POST", f"/members/{mine.id}/redemptions", {"points": 0})
    assert r.status_code == 422 and r.json()["detail"].startswith("points:")


@RETAIL
def test_a_rep_sees_only_their_members_and_a_supervisor_the_teams(world: dict[str, Any]) -> None:
    mine, theirs = world["mine"], world["theirs"]
    assert as_(world, "chen", "POST", "/members", {"customer": str(mine.id)}).status_code == 201
    assert as_(world, "chen", "POST", "/members", {"customer": str(theirs.id)}).status_code == 404
    assert as_(world, "zhang", "POST", "/members", {"customer": str(theirs.id)}).status_code == 201
    listed = as_(world, "chen", "GET", "/members").json()
    assert [m["customer_id"] for m in listed["items"]] == [mine.id] and listed["count"] == 1
    team = as_(world, "li", "GET", "/members").json()
    assert {m["customer_id"] for m in team["items"]} == {mine.id, theirs.id}
    assert as_(world, "chen", "GET", f"/members/{theirs.id}").status_code == 404
    assert as_(world, "li", "GET", f"/members/{theirs.id}").status_code == 200


@RETAIL
def test_tiers_are_the_configured_ladder(world: dict[str, Any]) -> None:
    tiers = as_(world, "chen", "GET", "/tiers").json()
    assert [t["name"] for t in tiers["tiers"]][0] == "standard"
    assert tiers["window_days"] == 365


@RETAIL
def test_joining_publishes_the_plugin_event_to_its_subscribers(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmcore.webhooks import deliveries, new_secret, subscribe

    crm, mine = world["crm"], world["mine"]
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", new_secret())
    subscribe(crm, "https://example.test/hooks", ["retail.member_joined"])
    as_(world, "chen", "POST", "/members", {"customer": str(mine.id)})
    [queued] = deliveries(crm.as_("chen"))
    assert queued["event"] == "retail.member_joined" and queued["customer_id"] == mine.id
    assert deliveries(crm.as_("zhang")) == []
