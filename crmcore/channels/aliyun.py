"""SMS through Alibaba Cloud SMS (``dysmsapi``, action ``SendSms``, version 2017-05-25).

``[channels.sms] kind = "aliyun"`` with ``access_key_id``,
``access_key_secret_env`` (the environment variable holding the secret),
``sign_name`` (the approved sender signature, 短信签名) and ``templates``
(our template name -> the approved template code, ``SMS_...``). Only messages
of a configured template can be sent: Aliyun sends its approved template with
the values we queued (``TemplateParam``), never free text. ``OutId`` is the
message's idempotency key; the answer's ``BizId`` is kept as its provider id.

Requests are signed with the RPC scheme (signature version 1.0): the
parameters sorted by name, each name and value percent-encoded (RFC 3986:
space ``%20``, ``*`` ``%2A``, ``~`` kept), joined ``k=v&...``; the string to
sign is ``POST&%2F&`` + that string percent-encoded; the signature is the
base64 of its HMAC-SHA1 keyed with the secret followed by ``&``.

Receipts (SmsReport) and replies (SmsUp) are pushed to
``POST /api/v1/hooks/sms/NAME?token=...`` as JSON arrays. Aliyun signs
neither, so the route accepts a push only with the secret token of the
environment variable ``receipt_token_env`` in the URL's query; keep that URL
private and on HTTPS. It answers ``{"code": 0, "msg": "成功"}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from crmcore.channels import secret
from crmcore.channels.receipts import Receipt, Reply, event_time, items_of, text_field
from crmcore.channels.sms_http import post
from crmcore.errors import ValidationError
from crmcore.registry import Channel

if TYPE_CHECKING:
    from crmcore.entities import Message

ACCEPTED = {"code": 0, "msg": "成功"}


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it (only ``A-Za-z0-9-_.~`` kept)."""
    return urllib.parse.quote(text, safe="-_.~")


def sign(params: Mapping[str, str], secret_value: str, method: str = "POST") -> str:
    """The ``Signature`` of a request with ``params`` (signature version 1.0)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret_value}&".encode(), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunSmsChannel:
    """Sends one message per SendSms request."""

    def __init__(
        self,
        name: str,
        table: dict[str, Any],
        where: str,
        *,
        utc_now: Callable[[], dt.datetime],
    ) -> None:
        self.name = name
        self.table = table
        self.secret = secret(table, "access_key_secret_env", where) or ""
        self.utc_now = utc_now

    def params(self, message: Message, key: str, *, nonce: str) -> dict[str, str]:
        """The signed request parameters for ``message``."""
        if not message.to_address:
            raise ValueError(f"message {message.id}: no phone number")
        code = self.table["templates"].get(message.template or "")
        if code is None:
            raise ValueError(
                f"message {message.id}: template {message.template!r} has no code in "
                f"[channels.{self.name}.templates]; Aliyun sends approved templates only"
            )
        values = (message.payload or {}).get("values") or {}
        params = {
            "AccessKeyId": self.table["access_key_id"],
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": key,
            "PhoneNumbers": _national(message.to_address),
            "RegionId": self.table["region"],
            "SignName": self.table["sign_name"],
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "TemplateCode": code,
            "TemplateParam": json.dumps({k: str(v) for k, v in values.items()}, ensure_ascii=False),
            "Timestamp": self.utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = sign(params, self.secret)
        return params

    def send(self, message: Message, key: str) -> str:
        params = self.params(message, key, nonce=uuid.uuid4().hex)
        body = urllib.parse.urlencode(params).encode("utf-8")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        _, raw = post(self.table["endpoint"], body, headers, self.table["timeout"])
        try:
            answer = json.loads(raw)
        except ValueError:
            raise RuntimeError("Aliyun answer is not JSON") from None
        if not isinstance(answer, dict) or answer.get("Code") != "OK":
            code = answer.get("Code") if isinstance(answer, dict) else None
            text = answer.get("Message") if isinstance(answer, dict) else None
            raise RuntimeError(f"Aliyun refused the message: {code}: {text}")
        return str(answer.get("BizId") or "")

    def channel(self) -> Channel:
        return Channel(name=self.name, send=self.send)


def _national(phone: str) -> str:
    """Aliyun takes mainland numbers without ``+86`` and others with their
    country code (``00`` prefix not needed)."""
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")


def verify(table: dict[str, Any], where: str, token: str | None) -> bool:
    """Whether ``token`` (the URL's ``token``) is the configured receipt token."""
    expected = secret(table, "receipt_token_env", where) or ""
    return bool(token) and hmac.compare_digest(expected.encode(), (token or "").encode())


def parse_push(body: bytes, zone: str | None) -> list[Receipt | Reply]:
    """The receipts (SmsReport) and replies (SmsUp) of an Aliyun push."""
    where = "aliyun push"
    try:
        document = json.loads(body)
    except ValueError:
        raise ValidationError(f"{where}: the body is not JSON") from None
    events: list[Receipt | Reply] = []
    for i, item in enumerate(items_of(document, where)):
        at = f"{where}: event {i}"
        if "content" in item:  # SmsUp: a reply
            events.append(
                Reply(
                    gateway_id=text_field(item, "sequence_id", at) or "",
                    from_phone=text_field(item, "phone_number", at) or "",
                    text=text_field(item, "content", at, required=False) or "",
                    at=event_time(text_field(item, "send_time", at, required=False), zone, at),
                )
            )
            continue
        success = item.get("success")
        if not isinstance(success, bool):
            raise ValidationError(f"{at}: 'success': expected true or false")
        biz_id = text_field(item, "biz_id", at) or ""
        events.append(
            Receipt(
                gateway_id=biz_id,
                reference=text_field(item, "out_id", at, required=False),
                provider_id=biz_id,
                delivered=success,
                error=text_field(item, "err_code", at, required=False),
                at=event_time(text_field(item, "report_time", at, required=False), zone, at),
            )
        )
    return events
