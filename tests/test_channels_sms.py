"""SMS channels against local HTTP servers the tests start: a generic JSON/form
gateway and one speaking Alibaba Cloud's SendSms format (checking its signature)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crmcore import Template, hookimpl
from crmcore.channels.aliyun import sign


class Gateway:
    """A local HTTP server recording each request and answering with ``answer(request)``."""

    def __init__(self, answer):
        self.requests = []
        self.answer = answer
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = {"path": self.path, "headers": dict(self.headers), "body": body}
                gateway.requests.append(request)
                status, reply = gateway.answer(request)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    started = []

    def start(answer):
        g = Gateway(answer)
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


class Shop:
    @hookimpl
    def crm_message_templates(self):
        return [Template(name="shop.code", text="Your code is {code}")]


def sms_crm(crm_factory, table):
    return crm_factory(
        plugins=["shop"], extra_plugins={"shop": Shop()}, config={"channels": {"sms": table}}
    )


# -- the generic gateway --------------------------------------------------------------


def test_json_gateway_gets_the_mapped_fields_the_auth_header_and_gives_its_id(
    crm_factory, gateway, monkeypatch
):
    g = gateway(lambda r: (200, {"result": "ok", "msg_id": f"G-{len(g.requests)}"}))
    monkeypatch.setenv("CRM_TEST_GATEWAY_TOKEN", "Bearer t0ken")
    crm = sms_crm(
        crm_factory,
        {
            "kind": "sms_http",
            "url": g.url,
            "fields": {"to": "mobile", "body": "content", "key": "msgid", "template": "tpl"},
            "auth_env": "CRM_TEST_GATEWAY_TOKEN",
            "id_field": "msg_id",
            "sign_name": "测试商城",
            "templates": {"shop.code": "T-77"},
        },
    )
    c = crm.customers.add("Ann", phone="13800000001")
    m = crm.messages.enqueue("sms", template="shop.code", values={"code": 1234}, customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    (request,) = g.requests
    assert request["headers"]["Authorization"] == "Bearer t0ken"
    assert json.loads(request["body"]) == {
        "mobile": "+8613800000001",
        "content": "Your code is 1234",
        "msgid": m.idempotency_key,
        "sign_name": "测试商城",
        "tpl": "T-77",
    }
    assert crm.messages.outbox()[0].provider_id == "G-1"


def test_form_gateway(crm_factory, gateway):
    g = gateway(lambda r: (200, {}))
    crm = sms_crm(crm_factory, {"kind": "sms_http", "url": g.url, "format": "form"})
    c = crm.customers.add("Ann", phone="13800000001")
    m = crm.messages.enqueue("sms", body="hello & bye", customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    (request,) = g.requests
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(request["body"].decode()) == {
        "to": ["+8613800000001"],
        "text": ["hello & bye"],
        "id": [m.idempotency_key],
    }


def test_a_gateway_error_is_retried_with_the_same_key(crm_factory, gateway):
    answers = iter([(503, {"error": "busy"}), (200, {})])
    g = gateway(lambda r: next(answers))
    crm = sms_crm(crm_factory, {"kind": "sms_http", "url": g.url})
    c = crm.customers.add("Ann", phone="13800000001")
    crm.messages.enqueue("sms", body="hi", customer=c)
    assert crm.messages.send_outbox()["failed"] == 1
    assert "gateway answered 503" in crm.messages.outbox(status="queued")[0].last_error
    crm.clock.advance(seconds=30)  # retried after its backoff
    assert crm.messages.send_outbox()["sent"] == 1
    keys = [json.loads(r["body"])["id"] for r in g.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_plugin_channel_of_the_same_name_replaces_the_configured_one(crm_factory, gateway):
    from crmcore import Channel

    g = gateway(lambda r: (200, {}))
    delivered = []

    class Own:
        @hookimpl
        def crm_delivery_channels(self):
            return [Channel(name="sms", send=lambda m, k: delivered.append(k))]

    crm = crm_factory(
        plugins=["own"],
        extra_plugins={"own": Own()},
        config={"channels": {"sms": {"kind": "sms_http", "url": g.url}}},
    )
    c = crm.customers.add("Ann", phone="13800000001")
    crm.messages.enqueue("sms", body="hi", customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    assert len(delivered) == 1 and g.requests == []


# -- Alibaba Cloud SMS ------------------------------------------------------------------


def test_the_signature_matches_alibaba_clouds_documented_example():
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert sign(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


ALIYUN_SECRET = "aliyun-test-secret"


def aliyun_answer(request):
    """What dysmsapi answers: OK with a BizId for a correctly signed SendSms."""
    params = {k: v[0] for k, v in urllib.parse.parse_qs(request["body"].decode()).items()}
    given = params.pop("Signature")
    if given != sign(params, ALIYUN_SECRET):
        return 400, {
            "Code": "SignatureDoesNotMatch",
            "Message": "Specified signature is not matched",
        }
    if params["Action"] != "SendSms":
        return 400, {"Code": "InvalidAction"}
    return 200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "R1"}


def aliyun_table(url, **more):
    return {
        "kind": "aliyun",
        "endpoint": url,
        "access_key_id": "LTAI-test",
        "access_key_secret_env": "CRM_TEST_ALIYUN_SECRET",
        "sign_name": "测试商城",
        "templates": {"shop.code": "SMS_153055065"},
        **more,
    }


def test_aliyun_sendsms_is_signed_and_carries_template_sign_name_and_out_id(
    crm_factory, gateway, monkeypatch
):
    monkeypatch.setenv("CRM_TEST_ALIYUN_SECRET", ALIYUN_SECRET)
    g = gateway(aliyun_answer)
    crm = sms_crm(crm_factory, aliyun_table(g.url))
    c = crm.customers.add("Ann", phone="13800000001")
    m = crm.messages.enqueue("sms", template="shop.code", values={"code": 1234}, customer=c)
    assert crm.messages.send_outbox()["sent"] == 1
    params = {k: v[0] for k, v in urllib.parse.parse_qs(g.requests[0]["body"].decode()).items()}
    assert params["PhoneNumbers"] == "13800000001"
    assert params["SignName"] == "测试商城" and params["TemplateCode"] == "SMS_153055065"
    assert json.loads(params["TemplateParam"]) == {"code": "1234"}
    assert params["OutId"] == m.idempotency_key
    # the crm's clock (2026-01-05 09:00 local) in UTC: the zone is the machine's by default
    assert params["Timestamp"].endswith("Z") and params["Timestamp"].startswith("2026-01-0")
    assert crm.messages.outbox()[0].provider_id == "900619746936498440^0"


def test_aliyun_refusal_and_a_template_without_a_code_fail_with_the_reason(
    crm_factory, gateway, monkeypatch
):
    monkeypatch.setenv("CRM_TEST_ALIYUN_SECRET", "not the secret")
    g = gateway(aliyun_answer)
    crm = sms_crm(crm_factory, aliyun_table(g.url))
    c = crm.customers.add("Ann", phone="13800000001")
    crm.messages.enqueue("sms", template="shop.code", values={"code": 1}, customer=c)
    crm.messages.enqueue("sms", body="free text", customer=c)
    assert crm.messages.send_outbox()["failed"] == 2
    signed, free = crm.messages.outbox()
    assert "SignatureDoesNotMatch" in signed.last_error
    assert "Aliyun sends approved templates only" in free.last_error
    assert len(g.requests) == 1  # the free text never left


def test_aliyun_timestamp_is_utc_from_the_configured_zone(crm_factory, gateway, monkeypatch):
    monkeypatch.setenv("CRM_TEST_ALIYUN_SECRET", ALIYUN_SECRET)
    g = gateway(aliyun_answer)
    crm = crm_factory(
        plugins=["shop"],
        extra_plugins={"shop": Shop()},
        config={"crm": {"timezone": "Asia/Shanghai"}, "channels": {"sms": aliyun_table(g.url)}},
    )
    c = crm.customers.add("Ann", phone="13800000001")
    crm.messages.enqueue("sms", template="shop.code", values={"code": 1}, customer=c)
    crm.messages.send_outbox()
    params = urllib.parse.parse_qs(g.requests[0]["body"].decode())
    assert params["Timestamp"] == ["2026-01-05T01:00:00Z"]  # 09:00 in Shanghai
