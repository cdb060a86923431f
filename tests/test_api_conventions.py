"""The API's conventions: ETag and If-Match, Idempotency-Key, size and rate
limits, cursors, projection, and bad input answered as problem+json 4xx."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from api_helpers import Api, make_api
from fastapi.testclient import TestClient

from crmcore.web import create_app


@pytest.fixture
def api(crm: Any, crm_clock: Any) -> Api:
    return make_api(crm, crm_clock)


def _url(api: Api, name: str = "zhang_c") -> str:
    return f"/api/v1/customers/{api.ids[name]}"


def test_an_update_needs_if_match(api: Api) -> None:
    c = api.client("zhang")
    r = c.patch(_url(api), json={"name": "Renamed"})
    assert r.status_code == 428 and "If-Match" in r.json()["detail"]
    assert api.crm.customers.get(api.ids["zhang_c"]).name == "Zhang's customer"


def test_a_stale_if_match_is_412_and_no_update_is_lost(api: Api) -> None:
    first, second = api.client("zhang"), api.client("zhang")
    etag = first.get(_url(api)).headers["ETag"]
    assert second.get(_url(api)).headers["ETag"] == etag
    ok = first.patch(_url(api), json={"name": "First"}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.headers["ETag"] != etag
    late = second.patch(_url(api), json={"name": "Second"}, headers={"If-Match": etag})
    assert late.status_code == 412
    assert api.crm.customers.get(api.ids["zhang_c"]).name == "First"
    again = second.patch(
        _url(api), json={"name": "Second"}, headers={"If-Match": ok.headers["ETag"]}
    )
    assert again.status_code == 200


def test_concurrent_updates_with_one_etag_let_exactly_one_through(api: Api) -> None:
    etag = api.client("zhang").get(_url(api)).headers["ETag"]
    statuses: list[int] = []

    def update(name: str) -> None:
        c = api.client("zhang")
        statuses.append(
            c.patch(_url(api), json={"name": name}, headers={"If-Match": etag}).status_code
        )

    threads = [threading.Thread(target=update, args=(f"N{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses)[0] == 200 and statuses.count(200) == 1, statuses


def test_an_idempotent_retry_replays_the_first_answer(api: Api) -> None:
    c = api.client("zhang")
    headers = {"Idempotency-Key": "abc-1"}
    first = c.post("/api/v1/customers", json={"name": "Once"}, headers=headers)
    again = c.post("/api/v1/customers", json={"name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert [x.name for x in api.crm.customers.list()].count("Once") == 1
    other = c.post("/api/v1/customers", json={"name": "Other"}, headers=headers)
    assert other.status_code == 422 and "already used" in other.json()["detail"]


def test_idempotency_holds_across_processes(api: Api, crm_clock: Any) -> None:
    token = api.token("zhang")
    headers = {"Idempotency-Key": "k-2", "Authorization": f"Bearer {token}"}
    first = api.client().post("/api/v1/customers", json={"name": "Twice?"}, headers=headers)
    second_process = create_app(api.app.state.crm.config, clock=crm_clock)
    again = TestClient(second_process).post(
        "/api/v1/customers", json={"name": "Twice?"}, headers=headers
    )
    assert again.json() == first.json()
    assert [x.name for x in api.crm.customers.list()].count("Twice?") == 1


def test_an_idempotency_key_is_the_callers_own(api: Api) -> None:
    headers = {"Idempotency-Key": "shared"}
    mine = api.client("zhang").post("/api/v1/customers", json={"name": "Mine"}, headers=headers)
    theirs = api.client("li").post("/api/v1/customers", json={"name": "Mine"}, headers=headers)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers


def test_an_oversize_body_is_413_and_writes_nothing(crm: Any, crm_clock: Any) -> None:
    web = make_api(crm, crm_clock, web={"max_body_bytes": 2048})
    c = web.client("zhang")
    r = c.post("/api/v1/customers", json={"name": "Big", "attributes": {"x": "y" * 5000}})
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")

    def chunks() -> Any:  # no Content-Length: streamed
        yield b'{"name": "Streamed", "kind": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}'

    streamed = c.post(
        "/api/v1/customers", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert not any(x.name in ("Big", "Streamed") for x in crm.customers.list())


def test_rate_limit_per_token_with_headers(crm: Any, crm_clock: Any) -> None:
    web = make_api(crm, crm_clock, web={"rate_limit": 3, "rate_window_seconds": 60})
    c, other = web.client("zhang"), web.client("li")
    seen = [c.get("/api/v1/me") for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert "remaining=0" in seen[-1].headers["RateLimit"]
    refused = c.get("/api/v1/me")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert other.get("/api/v1/me").status_code == 200  # another token has its own budget
    crm_clock.advance(seconds=60)
    assert c.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        (
            "post",
            "/api/v1/customers",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
        ),
        ("post", "/api/v1/customers", {"json": {"name": "X", "colour": "red"}}, 422),
        ("post", "/api/v1/customers", {"json": {"name": 12}}, 422),
        ("post", "/api/v1/customers", {"json": []}, 422),
        ("get", "/api/v1/customers?cursor=bogus", {}, 422),
        ("get", "/api/v1/customers?limit=0", {}, 422),
        ("get", "/api/v1/customers?fields=nope", {}, 422),
        ("get", "/api/v1/customers/abc", {}, 422),
        ("get", "/api/v1/customers/999999", {}, 404),
        ("post", "/api/v1/reminders", {"json": {"text": "x", "due_at": "2026-13-45"}}, 422),
        (
            "post",
            "/api/v1/customers/{zhang_c}/transactions",
            {"json": {"amount_cents": "1e999"}},
            422,
        ),
        (
            "post",
            "/api/v1/customers/{zhang_c}/interactions",
            {"json": {"kind": "call", "at": "2026-01-01T10:00:00+08:00"}},
            422,
        ),
    ],
)
def test_bad_input_is_a_4xx_problem(
    api: Api, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    before = len(api.crm.customers.list())
    r = getattr(api.client("zhang"), method)(path.format(**api.ids), **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status and r.json()["detail"]
    assert len(api.crm.customers.list()) == before


def test_a_forbidden_customer_is_the_same_404_as_a_missing_one(api: Api) -> None:
    c = api.client("zhang")
    hidden = c.get(_url(api, "li_c"))
    missing = c.get("/api/v1/customers/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(str(api.ids["li_c"]), "N") == missing.json()[
        "detail"
    ].replace("999999", "N")
