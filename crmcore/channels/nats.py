"""After-commit events to NATS JetStream (nats-py, the ``nats`` extra).

``[channels.events] kind = "nats"`` with ``servers`` (default
``["nats://127.0.0.1:4222"]``), ``subject_prefix`` (default ``crm``) and
``timeout``. Every event queued with ``crm.messages.emit_after_commit(topic, payload)``
is published, after its ``crm_after_commit`` hooks, to ``<prefix>.<topic>``
with its JSON payload and the header ``Nats-Msg-Id`` set to the event's
idempotency key: JetStream drops a retried publish within the stream's
duplicate window, so a retry is delivered once. A stream must capture the
subjects (``crm.>``); the publish waits for its acknowledgement and fails
(to be retried) without one.

nats-py is asynchronous: each ``send`` runs its own event loop
(``asyncio.run``) and opens one connection, publishes and closes it. That costs
a connection per event; a sender that publishes many events at once would keep
one open instead.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from crmcore.errors import MissingExtra
from crmcore.registry import Channel

if TYPE_CHECKING:
    from crmcore.entities import Message

NATS_EXTRA = "the nats channel needs nats-py, which is not installed: install crmcore[nats]"
_TOKEN = re.compile(r"[^A-Za-z0-9_-]+")


def subject(prefix: str, topic: str) -> str:
    """``prefix.topic``, each dot-separated part of the topic made a valid subject token."""
    parts = [_TOKEN.sub("_", part) or "_" for part in topic.split(".")]
    return ".".join([prefix, *parts])


class NatsEventChannel:
    """Publishes one event per connection, de-duplicated by its idempotency key."""

    def __init__(self, name: str, table: dict[str, Any]) -> None:
        self.name = name
        self.servers: list[str] = list(table["servers"])
        self.prefix: str = table["subject_prefix"]
        self.timeout: float = table["timeout"]

    async def _publish(self, subject_name: str, data: bytes, key: str) -> None:
        try:
            import nats
        except ImportError:
            raise MissingExtra(NATS_EXTRA) from None
        connection = await nats.connect(
            servers=self.servers,
            connect_timeout=self.timeout,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
        try:
            stream = connection.jetstream(timeout=self.timeout)
            await stream.publish(subject_name, data, headers={"Nats-Msg-Id": key})
        finally:
            await connection.close()

    def send(self, message: Message, key: str) -> None:
        data = json.dumps(message.payload or {}, ensure_ascii=False, default=str).encode("utf-8")
        asyncio.run(self._publish(subject(self.prefix, message.body), data, key))

    def channel(self) -> Channel:
        return Channel(name=self.name, send=self.send)
