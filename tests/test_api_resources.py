"""The core's resources through the HTTP API: the same services, scope and
masking as the command line."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, make_api


@pytest.fixture
def api(crm: Any, crm_clock: Any) -> Api:
    return make_api(crm, crm_clock)


def test_create_read_and_find_a_customer(api: Api) -> None:
    c = api.client("zhang")
    r = c.post(
        "/api/v1/customers", json={"name": "Ann", "phone": "13900000001", "external_id": "A1"}
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["Location"] == f"/api/v1/customers/{made['id']}"
    got = c.get(f"/api/v1/customers/{made['id']}")
    assert got.json()["name"] == "Ann" and got.headers["ETag"] == r.headers["ETag"]
    by_ext = c.get("/api/v1/customers", params={"external_id": "A1"}).json()["items"]
    by_phone = c.get("/api/v1/customers", params={"phone": "13900000001"}).json()["items"]
    assert [x["id"] for x in by_ext] == [x["id"] for x in by_phone] == [made["id"]]


def test_listing_pages_with_a_cursor_and_filters(api: Api) -> None:
    for i in range(5):
        api.crm.customers.add(f"C{i}", owner="zhang")
    c = api.client("zhang")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "fields": "id,name"}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/api/v1/customers", params=params).json()
        assert all(set(x) == {"id", "name"} for x in page["items"])
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 6  # five new and zhang_c, never li_c
    assert api.ids["li_c"] not in seen
    owned = c.get("/api/v1/customers", params={"owner": "zhang", "stage": "prospect"}).json()
    assert len(owned["items"]) == 6
    api.crm.customers.set_label(api.ids["zhang_c"], "segment", "gold")
    gold = c.get("/api/v1/customers", params={"label": "segment=gold"}).json()["items"]
    assert [x["id"] for x in gold] == [api.ids["zhang_c"]]


def test_stage_moves_and_history(api: Api) -> None:
    c = api.client("zhang")
    cid = api.ids["zhang_c"]
    assert c.post(f"/api/v1/customers/{cid}/stage", json={"stage": "new"}).status_code == 200
    bad = c.post(f"/api/v1/customers/{cid}/stage", json={"stage": "stable"})
    assert bad.status_code == 409 and "cannot move" in bad.json()["detail"]
    assert [h["to_stage"] for h in c.get(f"/api/v1/customers/{cid}/stages").json()][-1] == "new"


def test_interactions_transactions_and_timeline(api: Api) -> None:
    c = api.client("zhang")
    cid = api.ids["zhang_c"]
    r = c.post(f"/api/v1/customers/{cid}/interactions", json={"kind": "call", "text": "hello"})
    assert r.status_code == 201, r.text
    assert r.json()["staff_id"] == api.crm.staff.get("zhang").id
    t = c.post(f"/api/v1/customers/{cid}/transactions", json={"amount_cents": 1234})
    assert t.status_code == 201, t.text
    assert [x["amount_cents"] for x in c.get(f"/api/v1/customers/{cid}/transactions").json()] == [
        1234
    ]
    first = c.get(f"/api/v1/customers/{cid}/timeline", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = c.get(
        f"/api/v1/customers/{cid}/timeline", params={"limit": 10, "cursor": first["next_cursor"]}
    ).json()
    assert rest["items"] and first["items"][0] not in rest["items"]


def test_a_batch_of_transactions_is_all_or_nothing(api: Api) -> None:
    api.crm.customers.add("Ext", external_id="E1")
    admin = api.client("boss")
    bad = admin.post(
        "/api/v1/transactions/batch",
        json={
            "transactions": [
                {"customer_external_id": "E1", "occurred_at": "2026-01-02", "amount": "1.00"},
                {"customer_external_id": "E1", "occurred_at": "not a date", "amount": "2.00"},
            ]
        },
    )
    assert bad.status_code == 422 and "line 2" in bad.json()["detail"], bad.text
    assert api.crm.records.transactions("E1") == []
    ok = admin.post(
        "/api/v1/transactions/batch",
        json={
            "transactions": [
                {"customer_external_id": "E1", "occurred_at": "2026-01-02", "amount": "1.00"},
                {"customer_external_id": "E1", "occurred_at": "2026-01-03", "amount": "2.50"},
            ]
        },
    )
    assert ok.status_code == 201, ok.text
    assert sorted(t.amount_cents for t in api.crm.records.transactions("E1")) == [100, 250]
    rep = api.client("zhang").post(
        "/api/v1/transactions/batch",
        json={
            "transactions": [
                {"customer_external_id": "E1", "occurred_at": "2026-01-04", "amount": "1"}
            ]
        },
    )
    assert rep.status_code == 403


def test_tickets_open_move_and_list_by_queue(api: Api) -> None:
    c = api.client("zhang")
    r = c.post("/api/v1/tickets", json={"customer": api.ids["zhang_c"], "subject": "Broken"})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    assert r.json()["state"] == "verify"
    assert [
        t["id"] for t in c.get("/api/v1/tickets", params={"queue": "verify"}).json()["items"]
    ] == [tid]
    moved = c.post(f"/api/v1/tickets/{tid}/move", json={"state": "review"})
    assert moved.status_code == 200 and moved.json()["state"] == "review"
    assert c.get("/api/v1/tickets", params={"queue": "verify"}).json()["items"] == []
    assert api.client("li").get(f"/api/v1/tickets/{tid}").status_code == 404


def test_reminders_add_due_done(api: Api) -> None:
    c = api.client("zhang")
    r = c.post("/api/v1/reminders", json={"text": "call back", "due_at": "2026-01-05T10:00:00"})
    assert r.status_code == 201, r.text
    api.clock.advance(hours=2)
    due = c.get("/api/v1/reminders/due").json()
    assert [x["id"] for x in due] == [r.json()["id"]]
    done = c.post(f"/api/v1/reminders/{r.json()['id']}/done", json={"outcome": "reached"})
    assert done.status_code == 200 and done.json()["done_at"]


def test_merge_and_forget(api: Api) -> None:
    admin = api.client("boss")
    a = api.crm.customers.add("Twin A", phone="13900000011").id
    b = api.crm.customers.add("Twin B", phone="13900000012").id
    assert admin.post(f"/api/v1/customers/{a}/merge", json={"other": b}).status_code == 200
    assert admin.get(f"/api/v1/customers/{b}").json()["id"] == a
    assert admin.post(f"/api/v1/customers/{a}/forget").status_code == 200
    assert api.client("audit").post(f"/api/v1/customers/{a}/forget").status_code in (403, 404)


def test_personal_data_is_masked_for_a_principal_without_pii(api: Api) -> None:
    got = api.client("audit").get(f"/api/v1/customers/{api.ids['zhang_c']}").json()
    assert got["phone"] != "+8613800000001" and "*" in got["phone"]
    assert api.client("boss").get(f"/api/v1/customers/{api.ids['zhang_c']}").json()["phone"] == (
        "+8613800000001"
    )


def test_contact_points_relationships_labels(api: Api) -> None:
    c = api.client("zhang")
    cid = api.ids["zhang_c"]
    r = c.post(f"/api/v1/customers/{cid}/contact-points", json={"kind": "email", "value": "a@b.cn"})
    assert r.status_code == 201, r.text
    other = api.crm.customers.add("Spouse", owner="zhang").id
    rel = c.post(
        f"/api/v1/customers/{cid}/relationships", json={"kind": "spouse", "to_customer": other}
    )
    assert rel.status_code == 201, rel.text
    assert len(c.get(f"/api/v1/customers/{cid}/relationships").json()) == 1
    assert c.put(f"/api/v1/customers/{cid}/labels/vip", json={"value": "yes"}).json() == {
        "vip": "yes"
    }


def test_a_nul_character_in_a_batch_is_refused_not_a_server_error(api: Api) -> None:
    api.crm.customers.add("Ext", external_id="E1")
    r = api.client("boss").post(
        "/api/v1/transactions/batch",
        json={
            "transactions": [
                {"customer_external_id": "E1", "occurred_at": "2026-01-02", "amount": "1\u0000"}
            ]
        },
    )
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert api.crm.records.transactions("E1") == []
