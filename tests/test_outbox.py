"""The outbox: consent, idempotency keys, delivery after commit, retries, events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from crmcore import Channel, Template, ValidationError, hookimpl
from crmcore.schema import messages


def test_queued_then_sent_through_the_log_channel(crm, crm_outbox):
    c = crm.customers.add("Ann", phone="13800000001")
    crm.messages.enqueue("sms", body="hello", customer=c)
    assert [m.to_address for m in crm_outbox.queued()] == ["+8613800000001"]
    sent = crm_outbox.send()
    assert [(m["to"], m["body"]) for m in sent] == [("+8613800000001", "hello")]
    assert crm_outbox.queued() == [] and crm.messages.outbox(status="sent")[0].attempts == 1
    assert crm_outbox.send() == sent  # nothing sent twice


def test_consent_is_respected(crm):
    c = crm.customers.add("Ann", phone="13800000001", consent_sms=False)
    assert crm.messages.enqueue("sms", body="promo", customer=c) is None
    assert crm.messages.outbox() == []


def test_same_key_never_queues_twice(crm):
    c = crm.customers.add("Ann", phone="13800000001")
    a = crm.messages.enqueue("sms", body="hi", customer=c, key="greet:2026")
    b = crm.messages.enqueue("sms", body="hi", customer=c, key="greet:2026")
    assert a.id == b.id and len(crm.messages.outbox()) == 1


class Flaky:
    def __init__(self):
        self.tries = 0
        self.delivered = []

    @hookimpl
    def crm_delivery_channels(self):
        def send(message, key):
            self.tries += 1
            if self.tries == 1:
                raise ConnectionError("gateway down")
            self.delivered.append(key)

        return [Channel(name="sms", send=send)]

    @hookimpl
    def crm_message_templates(self):
        return [Template(name="flaky.hello", text="Hello {name}")]


def test_failed_delivery_is_retried_and_recorded(crm_factory):
    flaky = Flaky()
    crm = crm_factory(plugins=["flaky"], extra_plugins={"flaky": flaky})
    c = crm.customers.add("Ann", phone="13800000001")
    m = crm.messages.enqueue("sms", template="flaky.hello", values={"name": "Ann"}, customer=c)
    assert m.body == "Hello Ann"
    assert crm.messages.send_outbox() == {"sent": 0, "failed": 1, "held": 0, "cancelled": 0}
    assert crm.messages.outbox(status="queued")[0].attempts == 1
    assert crm.messages.send_outbox() == {
        "sent": 0,
        "failed": 0,
        "held": 0,
        "cancelled": 0,
    }  # it waits for its backoff
    crm.clock.advance(seconds=30)
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 0}
    assert flaky.delivered == [m.idempotency_key]


def test_unknown_template_and_missing_value(crm_factory):
    crm = crm_factory(plugins=["flaky"], extra_plugins={"flaky": Flaky()})
    c = crm.customers.add("Ann", phone="13800000001")
    with pytest.raises(ValidationError, match="template 'nope' is not declared"):
        crm.messages.enqueue("sms", template="nope", customer=c)
    with pytest.raises(ValidationError, match="missing or bad value"):
        crm.messages.enqueue("sms", template="flaky.hello", customer=c)


def test_after_commit_events_run_outside_the_transaction_with_a_stable_key(crm_factory):
    seen = []

    class Notify:
        @hookimpl
        def crm_customer_created(self, crm, customer):
            crm.messages.emit_after_commit(
                "customer.created", {"id": customer.id}, key=f"created:{customer.id}"
            )

        @hookimpl
        def crm_after_commit(self, event, payload):
            seen.append((event.body, payload, event.idempotency_key))
            if len(seen) == 1:
                raise TimeoutError("other system slow")

    crm = crm_factory(plugins=["notify"], extra_plugins={"notify": Notify()})
    c = crm.customers.add("Ann")
    assert seen == []  # nothing inside the transaction
    crm.messages.send_outbox()
    crm.clock.advance(seconds=30)  # the failed attempt's backoff
    crm.messages.send_outbox()
    assert seen == [("customer.created", {"id": c.id}, f"created:{c.id}")] * 2
    assert crm.messages.outbox(status="sent")[0].channel == "event"
    crm.messages.send_outbox()
    assert len(seen) == 2


def test_message_given_up_after_max_attempts(crm_factory):
    class Down:
        @hookimpl
        def crm_delivery_channels(self):
            def send(message, key):
                raise ConnectionError("down")

            return [Channel(name="sms", send=send)]

    crm = crm_factory(
        plugins=["down"], extra_plugins={"down": Down()}, config={"crm": {"outbox_max_attempts": 2}}
    )
    crm.messages.enqueue("sms", body="x", to="+8613800000001", transactional=True)
    crm.messages.send_outbox()
    crm.clock.advance(seconds=30)
    crm.messages.send_outbox()
    failed = crm.messages.outbox(status="dead")
    assert len(failed) == 1 and failed[0].attempts == 2
    assert crm.messages.send_outbox() == {"sent": 0, "failed": 0, "held": 0, "cancelled": 0}


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
    r = crm.messages.receive_sms("138 0000 0001", "yes please")
    assert r["routed"] == ["got 'yes please' from +8613800000001"]
    assert crm.messages.receive_sms("13800000001", "no")["routed"] == []
    with pytest.raises(ValidationError, match="phone"):
        crm.messages.receive_sms("not a phone", "x")


# -- the state machine and effectively-once delivery ----------------------------------
def test_the_attempt_is_committed_before_the_channel_is_called(crm_factory):
    seen_during_send = []

    class Inspect:
        @hookimpl
        def crm_delivery_channels(self):
            def send(message, key):
                # another connection sees the attempt recorded and committed
                with crm.engine.connect() as conn:
                    row = conn.execute(
                        sa.select(messages.c.status, messages.c.attempts, messages.c.attempted_at)
                    ).one()
                seen_during_send.append((tuple(row), key))

            return [Channel(name="sms", send=send)]

    crm = crm_factory(plugins=["inspect"], extra_plugins={"inspect": Inspect()})
    m = crm.messages.enqueue("sms", body="x", customer=crm.customers.add("A", phone="13800000001"))
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 0}
    assert seen_during_send == [(("sending", 1, crm.now()), m.idempotency_key)]
    done = crm.messages.outbox(status="sent")[0]
    assert (done.attempts, done.last_error, done.attempted_at) == (1, None, crm.now())


def test_a_message_left_sending_by_a_crash_is_retried_with_its_key(crm_factory):
    flaky = Flaky()
    flaky.tries = 1  # deliver at once
    crm = crm_factory(plugins=["flaky"], extra_plugins={"flaky": flaky})
    m = crm.messages.enqueue("sms", body="x", customer=crm.customers.add("A", phone="13800000001"))
    with crm.engine.begin() as conn:  # what a sender stopped mid-delivery leaves
        conn.execute(sa.update(messages).values(status="sending", attempts=1))
    assert crm.messages.send_outbox() == {"sent": 1, "failed": 0, "held": 0, "cancelled": 0}
    assert flaky.delivered == [m.idempotency_key]
    assert crm.messages.outbox(status="sent")[0].attempts == 2


def test_an_interrupted_last_attempt_is_given_up_not_repeated(crm_factory):
    flaky = Flaky()
    crm = crm_factory(
        plugins=["flaky"],
        extra_plugins={"flaky": flaky},
        config={"crm": {"outbox_max_attempts": 2}},
    )
    crm.messages.enqueue("sms", body="x", customer=crm.customers.add("A", phone="13800000001"))
    with crm.engine.begin() as conn:
        conn.execute(sa.update(messages).values(status="sending", attempts=2))
    assert crm.messages.send_outbox() == {"sent": 0, "failed": 1, "held": 0, "cancelled": 0}
    failed = crm.messages.outbox(status="dead")[0]
    assert (failed.attempts, failed.last_error) == (2, "delivery interrupted")
    assert flaky.delivered == [] and flaky.tries == 0


def test_the_log_channel_writes_one_line_per_key(crm, crm_outbox):
    c = crm.customers.add("Ann", phone="13800000001")
    m = crm.messages.enqueue("sms", body="hello", customer=c)
    crm_outbox.path.write_text(
        json.dumps({"id": m.id, "key": m.idempotency_key, "body": "hello"})
        + "\n"
        + "not json, a torn line"  # no newline at the end
    )
    with crm.engine.begin() as conn:  # delivered, then the sender was stopped
        conn.execute(sa.update(messages).values(status="sending", attempts=1))
    other = crm.messages.enqueue("sms", body="second", customer=c)
    assert crm.messages.send_outbox() == {"sent": 2, "failed": 0, "held": 0, "cancelled": 0}
    lines = crm_outbox.path.read_text().splitlines()
    assert lines[1] == "not json, a torn line"
    assert [json.loads(line)["key"] for line in (lines[0], lines[2])] == [
        m.idempotency_key,
        other.idempotency_key,
    ]
    assert len(lines) == 3


SLOW_SINK = """
import time
from crmcore import Channel, hookimpl
from crmcore.services.logsink import LogSink

def _channel():
    import os
    sink = LogSink(os.environ["SLOW_SINK_LOG"])

    def send(message, key):
        sink.send(message, key)
        # written, not yet recorded as sent: the window the test's kill hits
        time.sleep(float(os.environ.get("SLOW_SINK_PAUSE", "0")))

    return Channel(name="sms", send=send)

@hookimpl
def crm_delivery_channels():
    return [_channel()]
"""


def test_sigkilled_senders_deliver_each_message_exactly_once(crm, tmp_path):
    """A real ``crm outbox send`` killed mid-batch (just after the sink wrote a
    message, before the sent status committed), again and again, then let
    finish: every message is in the sink once."""
    site = tmp_path / "site"
    dist = site / "slowsink-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "slowsink.py").write_text(SLOW_SINK)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slowsink\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[crmcore.plugins]\nslowsink = slowsink\n")
    log = tmp_path / "sink.log"
    toml = tmp_path / "crm.toml"
    toml.write_text(
        f'[crm]\ndatabase = "{crm.config.database}"\nplugins = ["slowsink"]\n'
        "outbox_max_attempts = 20\n"
        # one message per claim, and a lease a killed sender's message outlives quickly
        "[outbox]\nbatch_size = 1\nlease_seconds = 1\n"
    )
    ids = [
        crm.messages.enqueue(
            "sms", body=f"m{i}", customer=crm.customers.add(f"C{i}", phone=f"1380000{i:04d}")
        ).id
        for i in range(10)
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    env["SLOW_SINK_LOG"] = str(log)
    send = [sys.executable, "-m", "crmcore", "--config", str(toml), "outbox", "send", "--json"]

    def written() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    kills = 0
    for _ in range(4):
        before = written()
        proc = subprocess.Popen(
            send,
            env={**env, "SLOW_SINK_PAUSE": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while written() == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    sending = crm.messages.outbox(status="sending")
    # the last kill caught one mid-delivery; a sender that started before an earlier
    # kill's lease ran out took the next message instead, leaving that one in sending too
    assert 1 <= len(sending) <= kills
    time.sleep(2.1)  # its lease (1 s) runs out; the clock counts whole seconds
    done = subprocess.run(send, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    delivered = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert sorted(delivered) == ids  # each exactly once
    assert [m.status for m in crm.messages.outbox()] == ["sent"] * len(ids)
    retried = [m for m in crm.messages.outbox() if m.attempts == 2]
    assert len(retried) == kills  # every kill left one message to retry, with its key


# -- who may be messaged --------------------------------------------------------------
def test_an_address_of_a_customer_needs_that_customers_consent(crm):
    no = crm.customers.add("No", phone="13800000001", email="no@example.com", consent_sms=False)
    yes = crm.customers.add("Yes", phone="13800000002", consent_email=False, email="y@example.com")
    crm.customers.add_contact_point(yes, "phone", "13800000003", consent=False)
    assert crm.messages.enqueue("sms", body="x", to="138 0000 0001") is None
    assert crm.messages.enqueue("sms", body="x", to="13800000003") is None  # that point said no
    assert crm.messages.enqueue("email", body="x", customer=yes) is None
    assert crm.messages.enqueue("sms", body="x", customer=yes, to="13800000001") is None
    m = crm.messages.enqueue("sms", body="x", to="+86 138 0000 0002")
    assert (m.customer_id, m.to_address) == (yes.id, "+8613800000002")
    assert crm.messages.enqueue("email", body="x", to="NO@example.com").customer_id == no.id
    assert [m.to_address for m in crm.messages.outbox()] == ["+8613800000002", "no@example.com"]


def test_an_arbitrary_address_is_refused_unless_transactional_or_staff(crm):
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"])
    c = crm.customers.add("Ann", phone="13800000001", owner="zhang")
    with pytest.raises(ValidationError, match="not a contact point of any customer"):
        crm.messages.enqueue("sms", body="buy now", to="13900000009")
    with pytest.raises(ValidationError, match="not a contact point of customer"):
        crm.messages.enqueue("sms", body="buy now", customer=c, to="13900000009")
    with pytest.raises(ValidationError, match="only an unrestricted caller"):
        crm.as_("zhang").messages.enqueue(
            "sms", body="x", customer=c, to="13900000009", transactional=True
        )
    assert crm.messages.outbox() == []
    sent = crm.messages.enqueue("sms", body="restocked", to="13900000009", transactional=True)
    assert sent.customer_id is None
    staff_msg = crm.as_("zhang").messages.enqueue(
        "sms", body="call Ann", staff="zhang", to="13900000008"
    )
    assert staff_msg.to_address == "+8613900000008"
    with pytest.raises(ValidationError, match="give their address"):
        crm.messages.enqueue("sms", body="x", staff="zhang")
    with pytest.raises(ValidationError, match="give a customer"):
        crm.messages.enqueue("sms", body="x")
    with pytest.raises(ValidationError, match="phone"):
        crm.messages.enqueue("sms", body="x", to="not a phone", transactional=True)
    assert len(crm.messages.outbox()) == 2


def test_a_database_at_crmcore_0004_gets_the_attempt_column(tmp_path):
    from crmcore import CRM
    from crmcore.access import SYSTEM
    from crmcore.config import from_dict
    from crmcore.migrate import current_heads
    from crmcore.testing import migrate_to

    new = CRM(from_dict({"crm": {"database": f"sqlite:///{tmp_path}/new.db"}}), principal=SYSTEM)
    new.admin.upgrade()
    newest = current_heads(new.engine)
    crm = CRM(from_dict({"crm": {"database": f"sqlite:///{tmp_path}/old.db"}}), principal=SYSTEM)
    migrate_to(crm, "crmcore_0004")
    assert "attempted_at" not in {c["name"] for c in sa.inspect(crm.engine).get_columns("messages")}
    crm.admin.upgrade()
    assert "attempted_at" in {c["name"] for c in sa.inspect(crm.engine).get_columns("messages")}
    assert current_heads(crm.engine) == newest
