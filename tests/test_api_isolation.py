"""A rep's token sees nothing of another rep's customers through any route.

Driven by the application's own OpenAPI description: every operation whose
path names a customer, ticket or reminder is called by Zhang (a rep) with the
ids of Li's records, with a valid body, and must answer 404 exactly like an id
that does not exist; nothing may change. A route added later is covered
without editing this test (its body is built from its schema)."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, make_api

ID_PARAMS = {"customer_id": "li_c", "ticket_id": "li_ticket", "reminder_id": "li_reminder"}
# values for string fields whose schema restricts them
STRING_SAMPLES = {"kind": "email", "value": "x@example.cn", "stage": "new", "state": "review"}

# bodies whose fields depend on each other (one of two targets)
BODIES = {"RelationshipIn": {"kind": "spouse", "to_staff": "zhang"}}


@pytest.fixture
def api(crm: Any, crm_clock: Any) -> Api:
    web = make_api(crm, crm_clock)
    li = crm.as_("li")
    web.ids["li_ticket"] = li.tickets.open(web.ids["li_c"], "Li's ticket").id
    web.ids["li_reminder"] = li.tickets.add_reminder(
        "li", "call", crm_clock.now(), customer=web.ids["li_c"]
    ).id
    return web


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _sample(spec: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, int]) -> Any:
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        schema = _resolve(spec, next(s for s in schema["anyOf"] if s.get("type") != "null"))
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            k: _sample(spec, props[k], k, ids) for k in schema.get("required", []) if k in props
        }
    if kind == "array":
        return [_sample(spec, schema.get("items", {}), name, ids)]
    if kind == "integer":
        return ids["li_c"]
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2026-02-01T10:00:00"
    return STRING_SAMPLES.get(name, "x")


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in spec["paths"].items():
        if any("{" + p + "}" in path for p in ID_PARAMS):
            for method, op in item.items():
                found.append((method, path, op))
    return found


def test_every_route_with_an_id_hides_another_reps_records(api: Api) -> None:
    spec = api.client().get("/api/v1/openapi.json").json()
    operations = _operations(spec)
    assert len(operations) >= 20  # the core's routes are all there
    zhang = api.client("zhang")
    before = api.crm.customers.get(api.ids["li_c"])
    for method, path, op in operations:
        url = path
        for param, name in ID_PARAMS.items():
            url = url.replace("{" + param + "}", str(api.ids[name]))
        url = url.replace("{name}", "vip")
        kwargs: dict[str, Any] = {"headers": {"If-Match": "*"}}
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            named = body["schema"].get("$ref", "").rsplit("/", 1)[-1]
            kwargs["json"] = BODIES.get(named) or _sample(spec, body["schema"], "", api.ids)
        r = zhang.request(method.upper(), url, **kwargs)
        assert r.status_code == 404, f"{method.upper()} {path}: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json")
    assert api.crm.customers.get(api.ids["li_c"]) == before
    assert api.crm.tickets.get(api.ids["li_ticket"]).state == "verify"


def test_a_supervisor_sees_the_team_not_another_team(api: Api) -> None:
    assert api.client("wang").get(f"/api/v1/customers/{api.ids['li_c']}").status_code == 200
    assert api.client("zhao").get(f"/api/v1/customers/{api.ids['li_c']}").status_code == 404
    listed = api.client("zhao").get("/api/v1/customers").json()["items"]
    assert listed == []


def test_an_auditor_reads_everything_and_changes_nothing(api: Api) -> None:
    auditor = api.client("audit")
    assert auditor.get(f"/api/v1/customers/{api.ids['li_c']}").status_code == 200
    r = auditor.post(f"/api/v1/customers/{api.ids['li_c']}/interactions", json={"kind": "note"})
    assert r.status_code == 403
    assert api.crm.records.interactions(api.ids["li_c"]) == []
