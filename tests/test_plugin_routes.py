"""The bundled plugins' HTTP routes: documented, and bound by the caller's scope.

With the demo data of all four plugins loaded, a rep calls every plugin route
that names a customer (or a record of one) with another rep's customer: each
answers 404 with the text a missing one gets, and changes nothing. Lists show
only what the rep may see."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from crmcore.demo import DEMO_AT, load_demo_data  # noqa: E402
from crmcore.plugins import installed  # noqa: E402
from crmcore.web import create_app  # noqa: E402

SHIPPED = ["retail", "utility", "insurance", "real_estate"]
pytestmark = pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)
MISSING = "999999"


@pytest.fixture
def demo_crm(crm_factory: Any) -> Any:
    crm = crm_factory(plugins=SHIPPED)
    crm.clock.set(DEMO_AT)
    load_demo_data(crm, command="test setup")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    return crm


@pytest.fixture
def api(demo_crm: Any, crm_clock: Any) -> TestClient:
    app = create_app(demo_crm.config, clock=crm_clock)
    # test-only: the staff key comes from a header (sign-in is the web app's own concern)
    app.state.authenticate = lambda request: request.headers.get("X-Test-Staff")
    return TestClient(app)


def call(api: TestClient, who: str, method: str, path: str, body: Any = None) -> Any:
    return api.request(method, path, json=body, headers={"X-Test-Staff": who})


def plugin_routes(crm: Any) -> set[tuple[str, str]]:
    """(METHOD, full path template) of every route the plugins' routers declare."""
    out = set()
    for name, routers in crm.plugins.each("crm_api_routers"):
        for router in routers or ():
            for route in router.routes:
                path = f"/api/v1/{name}{route.path}"
                out |= {(m, path) for m in route.methods if m != "HEAD"}
    return out


def test_the_openapi_documents_every_plugin_route(api: TestClient, demo_crm: Any) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    routes = plugin_routes(demo_crm)
    assert {p.split("/")[3] for _, p in routes} == set(SHIPPED)
    for method, path in routes:
        assert method.lower() in doc["paths"].get(path, {}), (method, path)


def test_every_plugin_route_refuses_a_caller_without_credentials(
    api: TestClient, demo_crm: Any
) -> None:
    for method, path in plugin_routes(demo_crm):
        r = api.request(method, path.replace("{", "").replace("}", ""), json={})
        assert r.status_code == 401, (method, path, r.status_code)


# Every route naming a customer or a customer's record, as (METHOD, path, body); the
# placeholders are filled with another rep's records, then with ids that do not exist.
REFERRING: dict[str, list[tuple[str, str, Any]]] = {
    "retail": [
        ("GET", "/api/v1/retail/members/{customer}", None),
        ("GET", "/api/v1/retail/members/{customer}/points", None),
        ("POST", "/api/v1/retail/members/{customer}/redemptions", {"points": 1}),
        ("POST", "/api/v1/retail/members", {"customer": "{customer}"}),
    ],
    "utility": [
        (
            "POST",
            "/api/v1/utility/meters/{meter_no}/readings",
            {"readings": [{"at": "2026-06-16T00:00:00", "kwh": "1.5"}]},
        ),
        ("GET", "/api/v1/utility/meters/{meter_no}/readings?start=2026-06-01&end=2026-06-15", None),
        ("GET", "/api/v1/utility/meters/{meter_no}/readings/2026-06-14", None),
        ("PUT", "/api/v1/utility/meters/{meter_no}/key", {"key": True}),
        ("GET", "/api/v1/utility/tickets/{ticket_id}", None),
        ("POST", "/api/v1/utility/tickets/{ticket_id}/moves", {"to_state": "dispatched"}),
        (
            "POST",
            "/api/v1/utility/tickets",
            {"customer": "{customer}", "type": "enquiry", "subject": "bill"},
        ),
        ("GET", "/api/v1/utility/meters?customer={customer}", None),
    ],
    "insurance": [
        ("POST", "/api/v1/insurance/visits", {"customer": "{customer}", "agent": "chen"}),
        ("GET", "/api/v1/insurance/visits?customer={customer}", None),
        ("GET", "/api/v1/insurance/visits/{visit_id}", None),
    ],
    "real_estate": [
        ("GET", "/api/v1/real_estate/requests/{request_id}", None),
        ("POST", "/api/v1/real_estate/requests/{request_id}/dispatch", {}),
        ("GET", "/api/v1/real_estate/requests?customer={customer}", None),
        (
            "POST",
            "/api/v1/real_estate/requests",
            {"customer": "{customer}", "category": "plumbing", "channel": "phone", "text": "leak"},
        ),
    ],
}
# An incident is a building's, not a customer's: anyone may see it, and it lists
# only the requests the caller may see (checked below).
BUILDING_RECORDS = {("GET", "/api/v1/real_estate/incidents/{incident_id}")}


def hidden_records(crm: Any) -> dict[str, str]:
    """Records of customers the rep chen may not see, by route placeholder."""
    from crm_utility import accounts, tickets

    seen = {c.id for c in crm.as_("chen").customers.list()}
    hidden = {c.id for c in crm.customers.list()} - seen
    assert hidden
    from crm_insurance import visits
    from crm_real_estate import requests

    return {
        "visit_id": next(
            str(v["id"]) for v in visits.list_visits(crm) if v["customer_id"] in hidden
        ),
        "request_id": next(
            str(r["id"]) for r in requests.list_requests(crm) if r["customer_id"] in hidden
        ),
        "customer": str(min(hidden)),
        "meter_no": next(
            p["meter_no"] for p in accounts.list_points(crm) if p["customer_id"] in hidden
        ),
        "ticket_id": next(
            str(t["ticket_id"])
            for t in tickets.list_service_tickets(crm)
            if t["customer_id"] in hidden
        ),
    }


def covers(spec_path: str, route_path: str) -> bool:
    """Whether a filled-in path (query left out) is an instance of a route template."""
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(route_path))
    return re.fullmatch(pattern, spec_path.split("?")[0]) is not None


def fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        for k, v in values.items():
            template = template.replace("{" + k + "}", v)
        return template
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


@pytest.mark.parametrize("plugin", SHIPPED)
def test_a_rep_cannot_reach_another_reps_customer_through_any_route(
    api: TestClient, demo_crm: Any, plugin: str
) -> None:
    specs = REFERRING[plugin]
    with_params = {
        (m, p) for m, p in plugin_routes(demo_crm) if "{" in p and f"/{plugin}/" in p
    } - BUILDING_RECORDS
    unchecked = [
        (m, p) for m, p in with_params if not any(sm == m and covers(sp, p) for sm, sp, _ in specs)
    ]
    assert not unchecked, "routes not checked"
    hidden = hidden_records(demo_crm)
    missing = dict.fromkeys(hidden, MISSING)
    before = len(demo_crm.admin.audit_trail(limit=100_000))
    for method, path, body in specs:
        got = call(api, "chen", method, fill(path, hidden), fill(body, hidden))
        assert got.status_code == 404, (method, path, got.status_code, got.text)
        absent = call(api, "chen", method, fill(path, missing), fill(body, missing))
        assert absent.status_code == 404, (method, path, absent.text)
        shown = got.json()["detail"]
        for value in hidden.values():
            shown = re.sub(rf"\b{re.escape(value)}\b", MISSING, shown)
        assert shown == absent.json()["detail"], (method, path)
    assert len(demo_crm.admin.audit_trail(limit=100_000)) == before  # nothing was written


def customer_ids(data: Any) -> set[int]:
    """Every ``customer_id`` anywhere in a JSON answer."""
    if isinstance(data, dict):
        found = {data["customer_id"]} if isinstance(data.get("customer_id"), int) else set()
        return found.union(*(customer_ids(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(*(customer_ids(v) for v in data))
    return set()


@pytest.mark.parametrize("who", ["chen", "li", "audit"])
def test_every_plugin_list_shows_only_customers_the_caller_may_see(
    api: TestClient, demo_crm: Any, who: str
) -> None:
    visible = {c.id for c in demo_crm.as_(who).customers.list()}
    everyone = {c.id for c in demo_crm.customers.list()}
    shown: set[int] = set()
    lists = sorted(p for m, p in plugin_routes(demo_crm) if m == "GET" and "{" not in p)
    assert len(lists) >= 8
    for path in lists:
        r = call(api, who, "GET", path)
        assert r.status_code in (200, 403, 422), (who, path, r.text)
        got = customer_ids(r.json())
        assert got <= visible, (who, path, got - visible)
        shown |= got
    if who == "chen":
        assert shown and everyone - visible  # the rep saw some customers, and not others


def test_insurance_visits_and_orphans_over_http(api: TestClient, demo_crm: Any) -> None:
    r = call(api, "chen", "POST", "/api/v1/insurance/visits", {"customer": "2", "note": "check-up"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending" and r.json()["agent"] == "chen"
    shown = call(api, "chen", "GET", f"/api/v1/insurance/visits/{r.json()['id']}").json()
    assert shown["note"] == "check-up"
    future = call(
        api, "chen", "POST", "/api/v1/insurance/visits", {"customer": "2", "at": "2030-01-01T00:00"}
    )
    assert future.status_code == 422 and "in the future" in future.json()["detail"]
    orphans = call(api, "li", "GET", "/api/v1/insurance/orphans").json()
    assert [o["customer_id"] for o in orphans["items"]] == [5]
    refused = call(api, "chen", "POST", "/api/v1/insurance/orphans/reassignments", {"all": True})
    assert refused.status_code == 403 and "team or company scope" in refused.json()["detail"]
    done = call(api, "li", "POST", "/api/v1/insurance/orphans/reassignments", {"customers": ["5"]})
    assert done.status_code == 201, done.text
    assert done.json()["items"][0]["customer_id"] == 5
    assert call(api, "li", "GET", "/api/v1/insurance/orphans").json()["count"] == 0


def test_real_estate_requests_over_http(api: TestClient, demo_crm: Any) -> None:
    mine = call(api, "chen", "GET", "/api/v1/real_estate/requests").json()["items"]
    assert [r["customer_id"] for r in mine] == [2]
    request = mine[0]
    shown = call(api, "chen", "GET", f"/api/v1/real_estate/requests/{request['id']}").json()
    assert shown["history"] and shown["state"] == "dispatched"
    again = call(api, "chen", "POST", f"/api/v1/real_estate/requests/{request['id']}/dispatch", {})
    assert again.status_code == 409 and "only new requests are dispatched" in again.json()["detail"]
    body = {"customer": "2", "category": request["category"], "channel": "phone", "text": "again"}
    opened = call(
        api, "chen", "POST", "/api/v1/real_estate/requests", body | {"unit": request["place"]}
    )
    assert opened.status_code == 201, opened.text
    listed = call(api, "chen", "GET", "/api/v1/real_estate/requests?open=true").json()
    assert opened.json()["id"] in [r["id"] for r in listed["items"]]
    assert call(api, "chen", "GET", "/api/v1/real_estate/incidents").json()["count"] == 0
