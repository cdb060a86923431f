"""After-commit events to NATS JetStream: published to ``<prefix>.<topic>`` with
``Nats-Msg-Id`` = the idempotency key, so a retried publish is stored once."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest

nats = pytest.importorskip("nats", reason="nats-py (the nats extra) is not installed")

from crmcore.channels.nats import NatsEventChannel, subject  # noqa: E402
from crmcore.schema import messages  # noqa: E402

SERVER = ("127.0.0.1", 4222)


def _server_up() -> bool:
    try:
        with socket.create_connection(SERVER, timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _server_up(), reason="no NATS server with JetStream on 127.0.0.1:4222"
)


async def _stream(prefix: str, action: str):
    connection = await nats.connect(f"nats://{SERVER[0]}:{SERVER[1]}", connect_timeout=2)
    try:
        js = connection.jetstream()
        if action == "create":
            await js.add_stream(name=prefix, subjects=[f"{prefix}.>"], storage="memory")
            return None
        if action == "info":
            info = await js.stream_info(prefix)
            last = await js.get_last_msg(prefix, f"{prefix}.>")
            return info.state.messages, last
        await js.delete_stream(prefix)
        return None
    finally:
        await connection.close()


@pytest.fixture
def stream():
    prefix = f"crmtest{uuid.uuid4().hex[:12]}"
    asyncio.run(_stream(prefix, "create"))
    yield prefix
    asyncio.run(_stream(prefix, "delete"))


def events_crm(crm_factory, prefix):
    return crm_factory(
        config={"channels": {"events": {"kind": "nats", "subject_prefix": prefix, "timeout": 3}}}
    )


def test_an_event_published_twice_is_stored_once(crm_factory, stream):
    crm = events_crm(crm_factory, stream)
    event = crm.messages.emit_after_commit("customer.created", {"id": 7, "name": "Ann"}, key="evt:c7")
    assert crm.messages.send_outbox()["sent"] == 1
    # a sender stopped before recording the outcome retries with the same key
    with crm.transaction() as db:
        db.execute(messages.update().where(messages.c.id == event.id).values(status="queued"))
    assert crm.messages.send_outbox()["sent"] == 1
    count, last = asyncio.run(_stream(stream, "info"))
    assert count == 1
    assert last.subject == f"{stream}.customer.created"
    assert last.headers["Nats-Msg-Id"] == "evt:c7"
    assert last.data == b'{"id": 7, "name": "Ann"}'


def test_without_a_stream_the_publish_fails_and_is_retried(crm_factory):
    crm = events_crm(crm_factory, f"crmnostream{uuid.uuid4().hex[:8]}")
    crm.messages.emit_after_commit("ticket.opened", {"id": 1})
    assert crm.messages.send_outbox()["failed"] == 1
    assert crm.messages.outbox(status="queued")[0].attempts == 1


def test_a_topic_becomes_valid_subject_tokens():
    assert subject("crm", "customer.created") == "crm.customer.created"
    assert subject("crm", "odd topic.*.>") == "crm.odd_topic._._"
    channel = NatsEventChannel(
        "events", {"servers": ["nats://x:1"], "subject_prefix": "crm", "timeout": 1}
    )
    assert channel.channel().name == "events"
