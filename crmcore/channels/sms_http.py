"""SMS through a generic HTTP gateway (urllib.request).

``[channels.sms] kind = "sms_http"``: each message is one POST to ``url``,
JSON (``format = "json"``) or a form (``"form"``), with the recipient, the
text and the idempotency key under the gateway's field names (``fields``,
defaults ``to``, ``text``, ``id``), plus the sender signature (``sign_name``)
and the template's id at that gateway (``templates``) when configured. The
header ``auth_header`` carries the value of the environment variable
``auth_env``. A 2xx answer is success; ``id_field`` names the answer's field
holding the gateway's id for the message.

Receipts and replies come back to ``POST /api/v1/hooks/sms/NAME`` signed with
HMAC-SHA256 over the raw body, hex, in ``signature_header`` (``X-Signature``,
optionally prefixed ``sha256=``), keyed with the environment variable
``receipt_secret_env``. The body is one JSON object or an array of them::

    {"type": "receipt", "id": "evt-1", "reference": "<idempotency key>",
     "message_id": "<gateway id>", "status": "delivered", "error": null,
     "at": "2026-01-05T09:00:00+08:00"}
    {"type": "reply", "id": "evt-2", "from": "+8613800000001", "text": "TD"}

``status`` among ``delivered_values`` means delivered; anything else failed,
with ``error`` as the provider's code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from crmcore.channels import secret
from crmcore.channels.receipts import Receipt, Reply, event_time, items_of, text_field
from crmcore.errors import ValidationError
from crmcore.registry import Channel

if TYPE_CHECKING:
    from crmcore.entities import Message

DEFAULT_FIELDS = {
    "to": "to",
    "body": "text",
    "key": "id",
    "sign_name": "sign_name",
    "template": "template",
}


def post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``data``; the status and body of a 2xx answer, else an error naming the status."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (config URL)
            return answer.status, answer.read(1_000_000)
    except urllib.error.HTTPError as e:
        detail = e.read(300).decode("utf-8", "replace").strip()
        raise RuntimeError(f"gateway answered {e.code}: {detail}") from None


def signature(secret_value: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` keyed with ``secret_value``."""
    return hmac.new(secret_value.encode("utf-8"), body, hashlib.sha256).hexdigest()


class HttpSmsChannel:
    """Sends one message per request to a generic HTTP gateway."""

    def __init__(self, name: str, table: dict[str, Any], where: str) -> None:
        self.name = name
        self.table = table
        self.fields = {**DEFAULT_FIELDS, **table["fields"]}
        self.auth = secret(table, "auth_env", where, required=False)

    def request(self, message: Message, key: str) -> tuple[bytes, dict[str, str]]:
        """The request body and headers for ``message``."""
        if not message.to_address:
            raise ValueError(f"message {message.id}: no phone number")
        fields = {
            self.fields["to"]: message.to_address,
            self.fields["body"]: message.body,
            self.fields["key"]: key,
        }
        if self.table.get("sign_name"):
            fields[self.fields["sign_name"]] = self.table["sign_name"]
        template_id = self.table["templates"].get(message.template or "")
        if template_id:
            fields[self.fields["template"]] = template_id
        headers: dict[str, str] = {}
        if self.auth is not None:
            headers[self.table["auth_header"]] = self.auth
        if self.table["format"] == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return urllib.parse.urlencode(fields).encode("utf-8"), headers
        headers["Content-Type"] = "application/json; charset=utf-8"
        return json.dumps(fields, ensure_ascii=False).encode("utf-8"), headers

    def send(self, message: Message, key: str) -> str | None:
        body, headers = self.request(message, key)
        _, answer = post(self.table["url"], body, headers, self.table["timeout"])
        id_field = self.table.get("id_field")
        if not id_field:
            return None
        try:
            found = json.loads(answer).get(id_field)
        except (ValueError, AttributeError):
            raise RuntimeError(f"gateway answer is not a JSON object with {id_field!r}") from None
        return None if found is None else str(found)

    def channel(self) -> Channel:
        return Channel(name=self.name, send=self.send)


def verify(table: dict[str, Any], where: str, body: bytes, given: str | None) -> bool:
    """Whether ``given`` (the signature header) is the HMAC-SHA256 of ``body``."""
    key = secret(table, "receipt_secret_env", where)
    assert key is not None  # required: secret() raised otherwise
    if not given:
        return False
    given = given.strip()
    if given.lower().startswith("sha256="):
        given = given[7:]
    return hmac.compare_digest(signature(key, body), given.lower())


def parse_push(table: dict[str, Any], body: bytes, zone: str | None) -> list[Receipt | Reply]:
    """The receipts and replies of a generic gateway's push."""
    where = "sms push"
    try:
        document = json.loads(body)
    except ValueError:
        raise ValidationError(f"{where}: the body is not JSON") from None
    events: list[Receipt | Reply] = []
    for i, item in enumerate(items_of(document, where)):
        at = f"{where}: event {i}"
        kind = item.get("type")
        gateway_id = text_field(item, "id", at) or ""
        when = event_time(text_field(item, "at", at, required=False), zone, at)
        if kind == "reply":
            events.append(
                Reply(
                    gateway_id=gateway_id,
                    from_phone=text_field(item, "from", at) or "",
                    text=text_field(item, "text", at, required=False) or "",
                    at=when,
                )
            )
        elif kind == "receipt":
            status = text_field(item, "status", at) or ""
            events.append(
                Receipt(
                    gateway_id=gateway_id,
                    reference=text_field(item, "reference", at, required=False),
                    provider_id=text_field(item, "message_id", at, required=False),
                    delivered=status in table["delivered_values"],
                    error=text_field(item, "error", at, required=False) or status,
                    at=when,
                )
            )
        else:
            raise ValidationError(f"{at}: 'type': expected 'receipt' or 'reply', got {kind!r}")
    return events
