"""The utility HTTP routes: readings, service tickets and key customers over HTTP,
with the CLI's one-line errors and the caller's scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

from crm_utility import accounts  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from utility_testkit import DAY, mill, staff  # noqa: E402

from crmcore.web import create_app  # noqa: E402

pytestmark = pytest.mark.crm(plugins=["utility"])


@pytest.fixture
def world(crm: Any, crm_clock: Any) -> dict[str, Any]:
    staff(crm)  # zhang and chen are reps under li
    mill(crm, meter="M1", owner="zhang", ext="U-1")
    other = crm.customers.add("Chen's Household", phone="13900002222", owner="chen")
    accounts.add_point(
        crm,
        other,
        meter_no="M2",
        address="2 Village Road",
        voltage_level="220V",
        customer_class="residential",
        area="rural",
    )
    app = create_app(crm.config, clock=crm_clock)
    # test-only: the staff key comes from a header
    app.state.authenticate = lambda request: request.headers.get("X-Test-Staff")
    return {"api": TestClient(app), "crm": crm}


def as_(world: dict[str, Any], who: str, method: str, path: str, body: Any = None) -> Any:
    return world["api"].request(
        method, f"/api/v1/utility{path}", json=body, headers={"X-Test-Staff": who}
    )


def day_of_readings(day: dt.date, kwh: str = "2.5") -> list[dict[str, Any]]:
    start = dt.datetime.combine(day, dt.time())
    return [
        {"at": (start + dt.timedelta(minutes=15 * i)).isoformat(), "kwh": kwh} for i in range(96)
    ]


def test_readings_are_recorded_all_or_nothing_and_listed_by_day(world: dict[str, Any]) -> None:
    r = as_(world, "zhang", "POST", "/meters/M1/readings", {"readings": day_of_readings(DAY)})
    assert r.status_code == 201, r.text
    assert r.json()["stored"] == 96
    curve = as_(world, "zhang", "GET", f"/meters/M1/readings/{DAY.isoformat()}").json()
    assert curve["complete"] and curve["total_kwh"] == 240.0 and len(curve["curve"]) == 96
    days = as_(world, "zhang", "GET", f"/meters/M1/readings?start={DAY}&end={DAY}").json()
    assert days["count"] == 1 and days["items"][0]["peak_kw"] == 10.0
    # the same intervals again: every one is a duplicate, nothing more is stored
    again = as_(world, "zhang", "POST", "/meters/M1/readings", {"readings": day_of_readings(DAY)})
    assert again.status_code == 422 and "nothing stored" in again.json()["detail"]
    bad = day_of_readings(DAY + dt.timedelta(days=1))
    bad[3]["kwh"] = "-1"
    refused = as_(world, "zhang", "POST", "/meters/M1/readings", {"readings": bad})
    assert refused.status_code == 422 and refused.json()["detail"].startswith("readings.3.kwh:")
    later = as_(world, "zhang", "GET", "/meters/M1/readings?start=2026-01-01&end=2026-01-31")
    assert later.json()["count"] == 1


def test_a_ticket_is_opened_listed_and_moved(world: dict[str, Any]) -> None:
    body = {"customer": "U-1", "type": "fault_repair", "subject": "no power", "meter_no": "M1"}
    r = as_(world, "zhang", "POST", "/tickets", body)
    assert r.status_code == 201, r.text
    tid = r.json()["ticket_id"]
    assert r.json()["state"] == "received" and r.json()["response_due"] is not None
    moved = as_(world, "zhang", "POST", f"/tickets/{tid}/moves", {"to_state": "dispatched"})
    assert moved.status_code == 201 and moved.json()["state"] == "dispatched"
    assert moved.json()["responded_at"] is not None
    refused = as_(world, "zhang", "POST", f"/tickets/{tid}/moves", {"to_state": "resolved"})
    assert refused.status_code == 409 and "move it to on_site" in refused.json()["detail"]
    assert as_(world, "zhang", "GET", f"/tickets/{tid}").json()["state"] == "dispatched"
    assert [t["ticket_id"] for t in as_(world, "zhang", "GET", "/tickets").json()["items"]] == [tid]
    assert as_(world, "chen", "GET", "/tickets").json()["items"] == []
    assert as_(world, "chen", "GET", f"/tickets/{tid}").status_code == 404
    typo = as_(world, "zhang", "POST", "/tickets", body | {"type": "fault"})
    assert typo.status_code == 422 and typo.json()["detail"].startswith("type:")


def test_key_customers_are_listed_and_flagged_within_scope(world: dict[str, Any]) -> None:
    keys = as_(world, "zhang", "GET", "/key-customers").json()
    assert [p["meter_no"] for p in keys["items"]] == ["M1"]
    off = as_(world, "zhang", "PUT", "/meters/M1/key", {"key": False})
    assert off.status_code == 200 and off.json()["key"] is False
    assert as_(world, "zhang", "GET", "/key-customers").json()["count"] == 0
    assert as_(world, "chen", "PUT", "/meters/M1/key", {"key": True}).status_code == 404
    # li supervises team north: zhang's meter, not chen's (team south)
    assert [p["meter_no"] for p in as_(world, "li", "GET", "/meters").json()["items"]] == ["M1"]
    assert [p["meter_no"] for p in as_(world, "chen", "GET", "/meters").json()["items"]] == ["M2"]
