"""``POST /api/v1/hooks/sms/{channel}``: receipts and replies pushed by a gateway,
verified by their signature (generic) or URL token (Alibaba Cloud), applied once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi", reason="the web extra (crmcore[web]) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from crmcore import Channel, hookimpl  # noqa: E402
from crmcore.channels.sms_http import signature  # noqa: E402
from crmcore.schema import inbound_messages  # noqa: E402
from crmcore.storage._driver import connection
from crmcore.web import create_app  # noqa: E402

SECRET = "receipt-secret"
TOKEN = "aliyun-push-token"


class FakeGateway:
    """Stands in for the gateways' sending side: every message gets id P-<n>."""

    def __init__(self):
        self.sent = []

    @hookimpl
    def crm_delivery_channels(self):
        def send(message, key):
            self.sent.append(key)
            return f"P-{len(self.sent)}"

        return [Channel(name="sms", send=send), Channel(name="ali", send=send)]


CHANNELS = {
    "sms": {"kind": "sms_http", "url": "http://127.0.0.1:9/", "receipt_secret_env": "CRM_TEST_RS"},
    "ali": {
        "kind": "aliyun",
        "access_key_id": "id",
        "access_key_secret_env": "CRM_TEST_RS",
        "sign_name": "测试",
        "templates": {},
        "receipt_token_env": "CRM_TEST_TOKEN",
    },
    "email": {"kind": "smtp", "host": "127.0.0.1", "from": "a@example.com"},
}


@pytest.fixture
def env(crm_factory, crm_clock, monkeypatch):
    monkeypatch.setenv("CRM_TEST_RS", SECRET)
    monkeypatch.setenv("CRM_TEST_TOKEN", TOKEN)
    plugin = FakeGateway()
    crm = crm_factory(
        plugins=["fake"], extra_plugins={"fake": plugin}, config={"channels": CHANNELS}
    )
    app = create_app(crm.config, clock=crm_clock, extra_plugins={"fake": plugin})
    app.state.authenticate = lambda request: "admin"  # a staff sign-in is no signature
    return crm, TestClient(app)


def push(client, body: Any, *, secret: str | None = SECRET, channel: str = "sms"):
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Signature"] = "sha256=" + signature(secret, raw)
    return client.post(f"/api/v1/hooks/sms/{channel}", content=raw, headers=headers)


def sent_message(crm, phone="13800000001", channel="sms", **kw):
    c = crm.customers.add(kw.pop("name", "Ann"), phone=phone, **kw)
    m = crm.messages.enqueue(channel, body="hello", customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    return c, next(x for x in crm.messages.outbox() if x.id == m.id)


def test_a_receipt_by_our_key_marks_the_message_delivered(env):
    crm, client = env
    _, m = sent_message(crm)
    r = push(
        client,
        {
            "type": "receipt",
            "id": "e1",
            "reference": m.idempotency_key,
            "status": "delivered",
            "at": "2026-01-05T09:01:00",
        },
    )
    assert r.status_code == 200 and r.json()["receipts"] == 1
    after = crm.messages.outbox()[0]
    assert (after.delivery_status, after.provider_error) == ("delivered", None)


def test_a_failed_receipt_by_the_gateways_id_keeps_its_error_code(env):
    crm, client = env
    _, m = sent_message(crm)
    assert m.provider_id == "P-1"
    push(
        client,
        [
            {
                "type": "receipt",
                "id": "e2",
                "message_id": "P-1",
                "status": "UNDELIV",
                "error": "MK:0001",
            }
        ],
    )
    after = crm.messages.outbox()[0]
    assert (after.delivery_status, after.provider_error) == ("failed", "MK:0001")


def test_a_push_without_or_with_a_wrong_signature_is_refused_and_changes_nothing(env):
    crm, client = env
    _, m = sent_message(crm)
    body = {"type": "receipt", "id": "e3", "reference": m.idempotency_key, "status": "delivered"}
    assert push(client, body, secret=None).status_code == 401
    assert push(client, body, secret="guess").status_code == 401
    signed = json.dumps(body).encode()
    tampered = signed.replace(b"delivered", b"failedxxx")
    r = client.post(
        "/api/v1/hooks/sms/sms",
        content=tampered,
        headers={"X-Signature": signature(SECRET, signed)},
    )
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert crm.messages.outbox()[0].delivery_status is None


def test_a_repeated_push_is_applied_once(env):
    crm, client = env
    crm.customers.add("Ann", phone="13800000001")
    reply = {"type": "reply", "id": "r1", "from": "+8613800000001", "text": "thanks"}
    assert push(client, reply).json()["replies"] == 1
    again = push(client, [reply])
    assert again.json()["replies"] == 0 and again.json()["duplicates"] == 1
    with crm.transaction() as db:
        rows = connection(db).execute(sa.select(inbound_messages)).all()
    assert [(r.text, r.delivered_by) for r in rows] == [("thanks", "sms")]


def test_an_unsubscribe_reply_through_the_route_withdraws_consent(env):
    crm, client = env
    c = crm.customers.add("Ann", phone="13800000001")
    queued = crm.messages.enqueue("sms", body="sale!", customer=c, purpose="marketing")
    push(client, {"type": "reply", "id": "r2", "from": "13800000001", "text": "退订"})
    assert crm.customers.get(c.id).consent_sms is False
    assert next(m for m in crm.messages.outbox() if m.id == queued.id).status == "cancelled"


def test_a_gateway_cannot_touch_another_channels_messages(env):
    crm, client = env
    _, m = sent_message(crm, channel="ali")
    r = push(
        client,
        {"type": "receipt", "id": "e4", "reference": m.idempotency_key, "status": "delivered"},
    )
    assert r.json()["unmatched"] == 1 and crm.messages.outbox()[0].delivery_status is None


def test_bad_pushes_are_one_line_problems(env):
    crm, client = env
    raw = b"not json"
    r = client.post(
        "/api/v1/hooks/sms/sms", content=raw, headers={"X-Signature": signature(SECRET, raw)}
    )
    assert r.status_code == 422 and r.json()["detail"] == "sms push: the body is not JSON"
    r = push(client, {"type": "receipt", "status": "delivered"})
    assert r.status_code == 422 and "missing 'id'" in r.json()["detail"]
    assert client.post("/api/v1/hooks/sms/nope", content=b"{}").status_code == 404
    assert client.post("/api/v1/hooks/sms/email", content=b"{}").status_code == 404


# -- Alibaba Cloud ----------------------------------------------------------------------


def aliyun_push(client, body, token: str | None = TOKEN):
    url = "/api/v1/hooks/sms/ali" + (f"?token={token}" if token is not None else "")
    return client.post(url, content=json.dumps(body, ensure_ascii=False).encode())


def test_aliyun_report_updates_the_status_and_answers_in_their_format(env):
    crm, client = env
    _, m = sent_message(crm, channel="ali")
    report = [
        {
            "phone_number": "13800000001",
            "send_time": "2026-01-05 09:00:00",
            "report_time": "2026-01-05 09:00:05",
            "success": False,
            "err_code": "IS:0001",
            "err_msg": "用户停机",
            "sms_size": "1",
            "biz_id": "P-1",
            "out_id": m.idempotency_key,
        }
    ]
    r = aliyun_push(client, report)
    assert r.status_code == 200 and r.json() == {"code": 0, "msg": "成功"}
    after = crm.messages.outbox()[0]
    assert (after.delivery_status, after.provider_error) == ("failed", "IS:0001")


def test_aliyun_push_needs_the_token(env):
    crm, client = env
    reply = [
        {
            "phone_number": "13800000001",
            "send_time": "2026-01-05 09:00:00",
            "content": "TD",
            "sign_name": "测试",
            "dest_code": "1",
            "sequence_id": 77,
        }
    ]
    assert aliyun_push(client, reply, token=None).status_code == 401
    assert aliyun_push(client, reply, token="wrong").status_code == 401
    with crm.transaction() as db:
        assert connection(db).execute(sa.select(inbound_messages)).all() == []
    assert aliyun_push(client, reply).json() == {"code": 0, "msg": "成功"}
    assert aliyun_push(client, reply).json() == {"code": 0, "msg": "成功"}  # repeated: once
    with crm.transaction() as db:
        rows = connection(db).execute(sa.select(inbound_messages)).all()
    assert [(r.text, r.delivered_by) for r in rows] == [("TD", "ali")]


def test_a_signed_generic_push_is_not_accepted_on_the_aliyun_route_by_signature(env):
    crm, client = env
    r = push(client, [{"content": "hi", "phone_number": "1", "sequence_id": 1}], channel="ali")
    assert r.status_code == 401  # only the token opens the Aliyun route


def test_a_channel_without_a_receipt_secret_refuses_pushes_without_naming_its_setup(
    env, monkeypatch
):
    crm, client = env
    monkeypatch.delenv("CRM_TEST_RS")
    r = push(client, {"type": "reply", "id": "r9", "from": "13800000001", "text": "hi"})
    assert r.status_code == 503
    assert r.json()["detail"] == "receipts of channel 'sms' are not configured"
    with crm.transaction() as db:
        assert connection(db).execute(sa.select(inbound_messages)).all() == []
