"""Delivering webhook messages: the ``webhook`` channel, signed per Standard Webhooks.

``crm outbox send`` calls :meth:`WebhookSender.send` for each queued webhook message,
after commit and outside any transaction. The request is a POST of the message's
JSON body with three headers:

- ``webhook-id``: the outbox idempotency key, the same on every retry (a receiver
  that has seen it answers 2xx and does nothing);
- ``webhook-timestamp``: seconds since the epoch at this attempt;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, keyed
  with the base64-decoded part of the ``whsec_...`` secret.

A 2xx answer delivers it; any other answer, a refused connection or a timeout
raises, which the outbox counts as a failed attempt and retries on its next run
until ``outbox_max_attempts``. Redirects are not followed (a 3xx is a failure):
the signed body goes only to the subscribed URL. Every attempt is logged on the
logger ``crmcore.webhooks`` with its event, endpoint, outcome and duration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from crmcore.entities import Message
from crmcore.registry import Channel
from crmcore.webhooks import CHANNEL, check_secret

log = logging.getLogger("crmcore.webhooks")
DEFAULT_TIMEOUT = 10.0  # seconds: a slow receiver must not hold the sender up
SIGNATURE_VERSION = "v1"
TOLERANCE = 300  # seconds a receiver should accept between our timestamp and its clock


class DeliveryFailed(Exception):
    """One attempt did not deliver (the outbox records the message and retries)."""


def sign(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value for one request."""
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: int = TOLERANCE
) -> bool:
    """Whether a received request is signed with ``secret`` (``whsec_...``) and recent.

    ``headers`` are the request's (lower-case names); ``now`` the receiver's clock in
    seconds. Any of the space-separated ``v1,`` signatures may match (a secret being
    rotated); comparison is constant-time."""
    key = check_secret(secret, "the secret")
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not webhook_id or not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(key, webhook_id, timestamp, body)
    offered = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as an HTTPError: a failed attempt


class WebhookSender:
    """The ``webhook`` channel's sender.

    :param timeout: seconds to wait for the receiver's answer.
    :param clock: seconds since the epoch, for the ``webhook-timestamp`` header (a
        transport time the receiver checks against its own clock, hence real time).
    :param environ: where the secrets are read (the process environment).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.timeout = timeout
        self.clock = clock
        self.environ = environ
        self._opener = urllib.request.build_opener(_NoRedirect)

    def request(self, message: Message, key: str) -> urllib.request.Request:
        """The signed POST for ``message`` (its body and the secret's variable name
        come from the outbox envelope)."""
        try:
            envelope = json.loads(message.body)
            body = envelope["body"].encode("utf-8")
            env = envelope["secret_env"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DeliveryFailed(f"webhook message {message.id}: not a webhook envelope") from None
        secret = check_secret(self.environ.get(env), env)
        timestamp = str(int(self.clock()))
        return urllib.request.Request(
            message.to_address or "",
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "user-agent": "crmcore-webhooks",
                "webhook-id": key,
                "webhook-timestamp": timestamp,
                "webhook-signature": sign(secret, key, timestamp, body),
            },
        )

    def send(self, message: Message, key: str) -> None:
        """POST ``message``; raise :class:`DeliveryFailed` unless the answer is 2xx."""
        started = time.monotonic()
        outcome = "error"
        try:
            req = self.request(message, key)
            try:
                with self._opener.open(req, timeout=self.timeout) as answer:
                    status = answer.status
            except urllib.error.HTTPError as e:
                status = e.code
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise DeliveryFailed(f"webhook {message.to_address}: {reason}") from None
            outcome = str(status)
            if not 200 <= status < 300:
                raise DeliveryFailed(f"webhook {message.to_address}: answered {status}")
        except Exception as e:
            outcome = f"{outcome}: {e}"
            raise
        finally:
            log.info(
                "webhook attempt: message %s event %s to %s: %s (%.0f ms)",
                message.id,
                message.template,
                message.to_address,
                outcome,
                (time.monotonic() - started) * 1000,
            )

    def channel(self) -> Channel:
        return Channel(name=CHANNEL, send=self.send)
