"""Audit, analytics labels, outbox and staff through the API, with their refusals."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, make_api


@pytest.fixture
def api(crm: Any, crm_clock: Any) -> Api:
    return make_api(crm, crm_clock)


def test_the_audit_trail_is_for_auditors_and_admins(api: Api) -> None:
    cid = api.ids["zhang_c"]
    rows = api.client("audit").get("/api/v1/audit", params={"customer": cid}).json()
    assert rows and all(r["customer_id"] == cid for r in rows)
    assert api.client("boss").get("/api/v1/audit").status_code == 200
    refused = api.client("zhang").get("/api/v1/audit")
    assert refused.status_code == 403 and "needs 'audit'" in refused.json()["detail"]


def test_label_counts_follow_the_callers_scope(api: Api) -> None:
    api.crm.customers.set_label(api.ids["zhang_c"], "abc", "A")
    api.crm.customers.set_label(api.ids["li_c"], "abc", "A")
    assert api.client("boss").get("/api/v1/analytics/labels/abc").json() == {"A": 2}
    assert api.client("zhang").get("/api/v1/analytics/labels/abc").json() == {"A": 1}


def test_outbox_status_is_scoped(api: Api) -> None:
    api.crm.messages.enqueue("sms", body="hello", customer=api.ids["li_c"], to="13800000002")
    assert api.client("boss").get("/api/v1/outbox").json()["counts"] == {"queued": 1}
    assert api.client("zhang").get("/api/v1/outbox").json()["counts"] == {}
    listed = api.client("boss").get("/api/v1/outbox", params={"status": "queued"}).json()
    assert len(listed["messages"]) == 1


def test_staff_is_admin_only_and_a_departure_ends_access(api: Api) -> None:
    admin = api.client("boss")
    made = admin.post("/api/v1/staff", json={"key": "qian", "name": "Qian", "roles": ["rep"]})
    assert made.status_code == 201, made.text
    assert "qian" in [s["key"] for s in admin.get("/api/v1/staff").json()]
    rep = api.client("zhang")
    assert rep.get("/api/v1/staff").status_code == 403
    assert rep.post("/api/v1/staff", json={"key": "evil", "name": "E"}).status_code == 403
    li = api.client("li")
    assert li.get("/api/v1/me").status_code == 200
    left = admin.post("/api/v1/staff/li/leave", json={"handover_to": "zhang"})
    assert left.status_code == 200, left.text
    assert li.get("/api/v1/me").status_code == 401
