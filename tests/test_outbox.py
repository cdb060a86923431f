"""The outbox: consent, idempotency keys, delivery after commit, retries, events."""

from __future__ import annotations

import pytest

from crmcore import Channel, Template, ValidationError, hookimpl


def test_queued_then_sent_through_the_log_channel(crm, crm_outbox):
    c = crm.add_customer("Ann", phone="13800000001")
    crm.enqueue_message("sms", body="hello", customer=c)
    assert [m.to_address for m in crm_outbox.queued()] == ["+8613800000001"]
    sent = crm_outbox.send()
    assert [(m["to"], m["body"]) for m in sent] == [("+8613800000001", "hello")]
    assert crm_outbox.queued() == [] and crm.outbox(status="sent")[0].attempts == 1
    assert crm_outbox.send() == sent  # nothing sent twice


def test_consent_is_respected(crm):
    c = crm.add_customer("Ann", phone="13800000001", consent_sms=False)
    assert crm.enqueue_message("sms", body="promo", customer=c) is None
    assert crm.outbox() == []


def test_same_key_never_queues_twice(crm):
    c = crm.add_customer("Ann", phone="13800000001")
    a = crm.enqueue_message("sms", body="hi", customer=c, key="greet:2026")
    b = crm.enqueue_message("sms", body="hi", customer=c, key="greet:2026")
    assert a.id == b.id and len(crm.outbox()) == 1


class Flaky:
    def __init__(self):
        self.tries = 0
        self.delivered = []

    @hookimpl
    def crm_delivery_channels(self):
        def send(message):
            self.tries += 1
            if self.tries == 1:
                raise ConnectionError("gateway down")
            self.delivered.append(message.idempotency_key)

        return [Channel(name="sms", send=send)]

    @hookimpl
    def crm_message_templates(self):
        return [Template(name="flaky.hello", text="Hello {name}")]


def test_failed_delivery_is_retried_and_recorded(crm_factory):
    flaky = Flaky()
    crm = crm_factory(plugins=["flaky"], extra_plugins={"flaky": flaky})
    c = crm.add_customer("Ann", phone="13800000001")
    m = crm.enqueue_message("sms", template="flaky.hello", values={"name": "Ann"}, customer=c)
    assert m.body == "Hello Ann"
    assert crm.send_outbox() == {"sent": 0, "failed": 1}
    assert crm.outbox(status="queued")[0].attempts == 1
    assert crm.send_outbox() == {"sent": 1, "failed": 0}
    assert flaky.delivered == [m.idempotency_key]


def test_unknown_template_and_missing_value(crm_factory):
    crm = crm_factory(plugins=["flaky"], extra_plugins={"flaky": Flaky()})
    c = crm.add_customer("Ann", phone="13800000001")
    with pytest.raises(ValidationError, match="template 'nope' is not declared"):
        crm.enqueue_message("sms", template="nope", customer=c)
    with pytest.raises(ValidationError, match="missing or bad value"):
        crm.enqueue_message("sms", template="flaky.hello", customer=c)


def test_after_commit_events_run_outside_the_transaction_with_a_stable_key(crm_factory):
    seen = []

    class Notify:
        @hookimpl
        def crm_customer_created(self, crm, customer):
            crm.emit_after_commit(
                "customer.created", {"id": customer.id}, key=f"created:{customer.id}"
            )

        @hookimpl
        def crm_after_commit(self, event, payload):
            seen.append((event.body, payload, event.idempotency_key))
            if len(seen) == 1:
                raise TimeoutError("other system slow")

    crm = crm_factory(plugins=["notify"], extra_plugins={"notify": Notify()})
    c = crm.add_customer("Ann")
    assert seen == []  # nothing inside the transaction
    crm.send_outbox()
    crm.send_outbox()
    assert seen == [("customer.created", {"id": c.id}, f"created:{c.id}")] * 2
    assert crm.outbox(status="sent")[0].channel == "event"
    crm.send_outbox()
    assert len(seen) == 2


def test_message_given_up_after_max_attempts(crm_factory):
    class Down:
        @hookimpl
        def crm_delivery_channels(self):
            def send(message):
                raise ConnectionError("down")

            return [Channel(name="sms", send=send)]

    crm = crm_factory(
        plugins=["down"], extra_plugins={"down": Down()}, config={"crm": {"outbox_max_attempts": 2}}
    )
    crm.enqueue_message("sms", body="x", to="+8613800000001")
    crm.send_outbox()
    crm.send_outbox()
    failed = crm.outbox(status="failed")
    assert len(failed) == 1 and failed[0].attempts == 2
    assert crm.send_outbox() == {"sent": 0, "failed": 0}


def test_inbound_sms_is_stored_and_routed(crm_factory):
    class Router:
        @hookimpl
        def crm_route_inbound(self, crm, message):
            return (
                f"got {message.text!r} from {message.from_address}"
                if "yes" in message.text
                else None
            )

    crm = crm_factory(plugins=["router"], extra_plugins={"router": Router()})
    r = crm.receive_sms("138 0000 0001", "yes please")
    assert r["routed"] == ["got 'yes please' from +8613800000001"]
    assert crm.receive_sms("13800000001", "no")["routed"] == []
    with pytest.raises(ValidationError, match="phone"):
        crm.receive_sms("not a phone", "x")
