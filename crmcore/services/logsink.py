"""The default channel: the outbox log file, one JSON line per message."""

from __future__ import annotations

import json
from pathlib import Path

from crmcore.entities import Message
from crmcore.files import append_private_line
from crmcore.registry import Channel


class LogSink:
    """The default channel's file sink: one JSON line per message, written once.

    It remembers the idempotency keys already in the file (read on first use),
    so a message retried after an interrupted ``crm outbox send`` never gets a
    second line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._written: set[str] | None = None
        self._ends_open = False  # the file's last line lacks its newline

    def _keys(self) -> set[str]:
        if self._written is None:
            self._written = set()
            if self.path.exists():
                data = self.path.read_text(encoding="utf-8", errors="replace")
                self._ends_open = bool(data) and not data.endswith("\n")
                for line in data.splitlines():
                    try:
                        key = json.loads(line).get("key")
                    except (ValueError, AttributeError):
                        continue  # a torn or foreign line: its message is written again
                    if isinstance(key, str):
                        self._written.add(key)
        return self._written

    def send(self, message: Message, key: str) -> None:
        written = self._keys()
        if key in written:
            return
        line = json.dumps(
            {
                "id": message.id,
                "channel": message.channel,
                "to": message.to_address,
                "body": message.body,
                "key": key,
            },
            ensure_ascii=False,
        )
        # mode 0600, under the lock a forget's redaction takes: no line is lost
        append_private_line(self.path, ("\n" if self._ends_open else "") + line)
        self._ends_open = False
        written.add(key)

    def channel(self) -> Channel:
        return Channel(name="log", send=self.send)
