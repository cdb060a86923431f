"""Outbound webhooks: subscriptions, events queued in the change's transaction,
signed delivery (Standard Webhooks) to a local receiver that checks the
signature, and retries of a failed or timed-out attempt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crmcore import AccessDenied, ValidationError
from crmcore.webhooks import deliveries, new_secret, publish, subscribe, subscriptions, unsubscribe
from crmcore.webhooks.delivery import DeliveryFailed, WebhookSender, sign, verify

SECRET = new_secret()
OTHER_SECRET = new_secret()


class Receiver:
    """A local endpoint: verifies each request's signature with ``secret``, counts
    the deliveries it accepted, and answers 500 to the first ``fail_first``."""

    def __init__(self, secret: str, *, fail_first: int = 0, delay: float = 0.0) -> None:
        self.secret, self.fail_first, self.delay = secret, fail_first, delay
        self.attempts = 0
        self.accepted: list[dict[str, Any]] = []
        self.forged = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.attempts += 1
                time.sleep(receiver.delay)
                if not verify(receiver.secret, headers, body, now=time.time()):
                    receiver.forged += 1
                    status = 401
                elif receiver.attempts <= receiver.fail_first:
                    status = 500
                else:
                    receiver.accepted.append({"id": headers["webhook-id"], **json.loads(body)})
                    status = 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", SECRET)
    with Receiver(SECRET, fail_first=1) as r:
        yield r


@pytest.fixture
def staffed(crm: Any) -> Any:
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("chen", "Chen", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    return crm


def test_an_event_is_delivered_signed_after_commit_and_a_failed_attempt_retried(
    staffed: Any, receiver: Receiver
) -> None:
    crm = staffed
    sub = subscribe(crm, receiver.url, ["customer.created", "transaction.recorded"])
    c = crm.as_("chen").customers.add("Wu Fang", phone="13800000001", owner="chen")
    crm.as_("chen").records.add_transaction(c, 1250)
    queued = deliveries(crm)
    assert [d["event"] for d in queued] == ["customer.created", "transaction.recorded"]
    assert receiver.attempts == 0  # nothing is sent inside the transaction
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 1, "held": 0, "cancelled": 0}
    crm.clock.advance(seconds=30)  # the first attempt got a 500: retried after its backoff
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 0}
    assert receiver.attempts == 3 and receiver.forged == 0
    got = {d["type"]: d for d in receiver.accepted}
    assert got["customer.created"]["data"]["customer_id"] == c.id
    assert got["transaction.recorded"]["data"]["amount_cents"] == 1250
    assert "Wu Fang" not in json.dumps(receiver.accepted) and "13800000001" not in json.dumps(
        receiver.accepted
    )  # ids and amounts, never personal data
    sent = deliveries(crm, event="customer.created")
    assert len(sent) == 1 and sent[0]["status"] == "sent" and sent[0]["attempts"] == 2
    assert got["customer.created"]["id"] == sent[0]["webhook_id"]  # the idempotency key
    assert sub["secret_env"] == "CRM_WEBHOOK_SECRET"


def test_a_receiver_refuses_a_forged_signature_and_the_attempt_fails(
    crm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", OTHER_SECRET)  # not the receiver's secret
    with Receiver(SECRET) as r:
        subscribe(crm, r.url, ["*"])
        crm.customers.add("Wu Fang")
        assert crm.messages.send_outbox() == {"sent": 0, "failed": 1, "held": 0, "cancelled": 0}
        assert r.forged == 1 and r.accepted == []
    [d] = deliveries(crm)
    assert d["status"] == "queued" and "answered 401" in d["last_error"]


def test_verify_checks_signature_and_age() -> None:
    body = b'{"type": "customer.created"}'
    from crmcore.webhooks import check_secret

    key = check_secret(SECRET, "test")
    headers = {"webhook-id": "whk_1_a", "webhook-timestamp": "1000000000"}
    headers["webhook-signature"] = sign(key, "whk_1_a", "1000000000", body)
    assert verify(SECRET, headers, body, now=1_000_000_010)
    assert not verify(SECRET, headers, body + b" ", now=1_000_000_010)  # body changed
    assert not verify(OTHER_SECRET, headers, body, now=1_000_000_010)  # another secret
    assert not verify(SECRET, headers, body, now=1_000_000_000 + 3600)  # replayed an hour later
    assert not verify(SECRET, headers | {"webhook-id": "whk_1_b"}, body, now=1_000_000_010)


def test_a_timeout_is_a_failed_attempt(crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", SECRET)
    with Receiver(SECRET, delay=1.0) as r:
        subscribe(crm, r.url, ["customer.created"])
        crm.customers.add("Wu Fang")
        [message] = crm.messages.outbox()
        with pytest.raises(DeliveryFailed, match="timed out"):
            WebhookSender(timeout=0.2).send(message, message.idempotency_key)


def test_a_rolled_back_change_queues_nothing(staffed: Any, receiver: Receiver) -> None:
    crm = staffed
    subscribe(crm, receiver.url, ["customer.created"])
    with pytest.raises(RuntimeError), crm.transaction():
        crm.customers.add("Never")
        assert len(deliveries(crm)) == 1  # queued in the same transaction...
        raise RuntimeError("the operation fails later")
    assert deliveries(crm) == []  # ...and gone with it


def test_subscribing_needs_configure_and_a_valid_secret_url_and_events(
    staffed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = staffed
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", SECRET)
    with pytest.raises(AccessDenied, match="configure"):
        subscribe(crm.as_("chen"), "https://example.test/h", ["customer.created"])
    with pytest.raises(AccessDenied, match="configure"):
        subscribe(crm.as_("li"), "https://example.test/h", ["customer.created"])
    with pytest.raises(ValidationError, match="expected http"):
        subscribe(crm, "ftp://example.test/h", ["customer.created"])
    with pytest.raises(ValidationError, match="event 'customer.deleted'"):
        subscribe(crm, "https://example.test/h", ["customer.deleted"])
    with pytest.raises(ValidationError, match="event 'retail.member_joined'"):
        subscribe(crm, "https://example.test/h", ["retail.member_joined"])  # not enabled
    with pytest.raises(ValidationError, match="MISSING_VAR is not set"):
        subscribe(crm, "https://example.test/h", ["ticket.moved"], secret_env="MISSING_VAR")
    monkeypatch.setenv("BAD_SECRET", "hunter2")
    with pytest.raises(ValidationError, match="expected 'whsec_"):
        subscribe(crm, "https://example.test/h", ["ticket.moved"], secret_env="BAD_SECRET")
    assert subscriptions(crm) == []


def test_a_reps_change_queues_the_event_and_the_log_shows_only_what_they_may_see(
    staffed: Any, receiver: Receiver
) -> None:
    crm = staffed
    subscribe(crm, receiver.url, ["customer.created", "customer.stage_changed"])
    mine = crm.as_("chen").customers.add("Mine", phone="13800000001", owner="chen")
    crm.as_("zhang").customers.add("Theirs", phone="13800000002", owner="zhang")
    crm.as_("chen").customers.change_stage(mine, "new", reason="first purchase")
    seen = deliveries(crm.as_("chen"))
    assert {d["customer_id"] for d in seen} == {mine.id}
    assert [d["event"] for d in seen] == ["customer.created", "customer.stage_changed"]
    assert len(deliveries(crm.as_("li"))) == 3  # the supervisor sees the team's
    assert [d["event"] for d in deliveries(crm, event="customer.stage_changed")] == [
        "customer.stage_changed"
    ]


def test_removing_a_subscription_gives_up_its_queued_messages(crm: Any, receiver: Receiver) -> None:
    sub = subscribe(crm, receiver.url, ["customer.created"])
    crm.customers.add("Wu Fang")
    removed = unsubscribe(crm, sub["id"])
    assert removed["cancelled"] == 1 and subscriptions(crm) == []
    assert (
        crm.messages.send_outbox() == {"sent": 0, "failed": 0, "held": 0, "cancelled": 0}
        and receiver.attempts == 0
    )
    crm.customers.add("Wu Lei")
    assert len(deliveries(crm)) == 1  # no subscriber: nothing new queued


def test_a_plugin_event_reaches_its_subscribers_only(crm: Any, receiver: Receiver) -> None:
    subscribe(crm, receiver.url, ["customer.created"])
    with crm.transaction():
        assert publish(crm, "probe.thing_happened", {"n": 1}) == 0
    with pytest.raises(ValidationError, match="expected 'area.name'"), crm.transaction():
        publish(crm, "Bad Name", {})


def test_a_ticket_move_is_an_event(crm: Any, receiver: Receiver) -> None:
    subscribe(crm, receiver.url, ["ticket.moved"])
    c = crm.customers.add("Wu Fang")
    t = crm.tickets.open(c, "late delivery", kind="complaint")
    crm.tickets.move(t.id, "review")
    assert crm.messages.send_outbox() == {"sent": 0, "failed": 1, "held": 0, "cancelled": 0}
    crm.clock.advance(seconds=30)  # the receiver failed the first: retried after its backoff
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 0}
    [event] = receiver.accepted
    assert event["type"] == "ticket.moved"
    assert event["data"] | {"at": None} == {
        "ticket_id": t.id,
        "customer_id": c.id,
        "workflow": "default",
        "kind": "complaint",
        "from": "verify",
        "to": "review",
        "at": None,
        "owner_id": None,
    }


def test_the_documented_ten_line_verifier_accepts_ours_and_refuses_a_forgery() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    section = doc.split("## Verifying a signature", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 10
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    from crmcore.webhooks import check_secret

    body, stamp = b'{"type": "ticket.moved"}', str(int(time.time()))
    signature = sign(check_secret(SECRET, "test"), "whk_1_x", stamp, body)
    headers = {"webhook-id": "whk_1_x", "webhook-timestamp": stamp, "webhook-signature": signature}
    assert namespace["verify"](SECRET, headers, body)
    assert not namespace["verify"](OTHER_SECRET, headers, body)
    assert not namespace["verify"](SECRET, headers, body.replace(b"moved", b"moves"))


def test_an_import_queues_one_event_per_batch_not_one_per_row(
    crm: Any, receiver: Receiver, tmp_path: Any
) -> None:
    from crmcore.importer import import_customers, import_transactions

    subscribe(crm, receiver.url, ["*"])
    people = tmp_path / "c.csv"
    people.write_text(
        "external_id,name,phone\n" + "".join(f"C{i},P {i},1380000{i:04d}\n" for i in range(30)),
        encoding="utf-8",
    )
    import_customers(crm, str(people))
    sales = tmp_path / "t.csv"
    sales.write_text(
        "customer_external_id,occurred_at,amount,external_id,channel\n"
        + "".join(f"C{i},2026-01-04T10:00,12.50,T{i},shop\n" for i in range(30)),
        encoding="utf-8",
    )
    import_transactions(crm, str(sales))
    events = [d["event"] for d in deliveries(crm)]
    assert events == ["customers.imported", "transactions.imported"]
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 1, "held": 0, "cancelled": 0}
    crm.clock.advance(seconds=30)  # the failed attempt's backoff
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 0}
    counts = {e["type"]: e["data"]["count"] for e in receiver.accepted}
    assert counts == {"customers.imported": 30, "transactions.imported": 30}
