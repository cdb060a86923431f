"""E-mail over SMTP (the standard library's smtplib).

``[channels.email] kind = "smtp"`` with ``host``, ``port`` (default 587 for
STARTTLS, 465 for SSL, 25 without encryption), ``security`` (``starttls``,
``ssl`` or ``none``), ``username`` and ``password_env`` (the environment
variable holding the password), ``from``, ``subject`` (and ``subjects``, per
template), ``timeout`` in seconds and ``ca_file`` (a CA bundle to trust instead
of the system's). Each message's ``Message-ID`` is derived from its idempotency
key, so a retried message carries the same id and a receiving system can drop
the second copy. One connection per message.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from crmcore.channels import secret
from crmcore.errors import ConfigError
from crmcore.registry import Channel

if TYPE_CHECKING:
    from crmcore.entities import Message

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def message_id(key: str, domain: str) -> str:
    """The ``Message-ID`` of the message with idempotency key ``key``: the same on every
    attempt, and revealing nothing of the key."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


class SmtpChannel:
    """Delivers each message over its own SMTP connection; raises on any refusal (retried later)."""

    def __init__(self, name: str, table: dict[str, Any], where: str) -> None:
        self.name = name
        self.host: str = table["host"]
        self.security: str = table["security"]
        self.port: int = table.get("port") or DEFAULT_PORTS[self.security]
        self.timeout: float = table["timeout"]
        self.sender: str = table["from"]
        self.subject: str = table["subject"]
        self.subjects: dict[str, str] = table["subjects"]
        self.username: str | None = table.get("username")
        self.password = secret(table, "password_env", where, required=self.username is not None)
        if self.password is not None and self.username is None:
            raise ConfigError(f"{where}.username: a password is configured; name the user too")
        self.ca_file: str | None = table.get("ca_file")
        self.domain: str = table.get("message_id_domain") or self.sender.rpartition("@")[2]
        if not self.domain:
            raise ConfigError(f"{where}.from: expected an e-mail address, got {self.sender!r}")

    def compose(self, message: Message, key: str) -> EmailMessage:
        """The e-mail for ``message``: sender, recipient, subject, Message-ID, text body."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to_address or ""
        mail["Subject"] = self.subjects.get(message.template or "", self.subject)
        mail["Message-ID"] = message_id(key, self.domain)
        mail.set_content(message.body)
        return mail

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, message: Message, key: str) -> str:
        """Deliver ``message``; its Message-ID is returned as the provider's id."""
        if not message.to_address:
            raise ValueError(f"message {message.id}: no e-mail address")
        mail = self.compose(message, key)
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=self._context())
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password)
            smtp.send_message(mail)
        return str(mail["Message-ID"])

    def channel(self) -> Channel:
        return Channel(name=self.name, send=self.send)
