"""The ASGI layer in front of every route: rate limits, the request size limit
and ``Idempotency-Key`` on POST.

- Rate limit: ``rate_limit`` requests per ``rate_window_seconds`` per
  credential (a token, a session; without one, the client address), counted
  in fixed windows of the CRM's clock, **per process** (see docs/api.md).
  Every answer carries ``RateLimit`` and ``RateLimit-Policy``; a refusal is
  429 with ``Retry-After``.
- Size: a body larger than ``max_body_bytes`` is 413, whether it declares its
  length or streams it; nothing of it reaches a route.
- Idempotency: a POST with ``Idempotency-Key`` is recorded in the database
  (``web_idempotency``) under the credential that sent it. The same key with
  the same request answers the first response again, without running the
  operation; the same key with another request is 422; while the first is
  still being answered a retry is 409. Answers that may change on retry
  (401, 403, 408, 429, 5xx) are not kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from crmcore.auth.settings import WebSettings
from crmcore.web import idempotency
from crmcore.web.authn import credential_of
from crmcore.web.problems import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# sign-in answers set cookies: never replayed to whoever sends the same key
NOT_IDEMPOTENT_PREFIX = "/api/v1/auth/"
KEPT_STATUSES = frozenset(range(200, 500)) - {401, 403, 408, 429}
MAX_KEY = 200


class TooLarge(Exception):
    """The request body grew past the limit while it was read."""


class RateLimiter:
    """Fixed-window counters per caller, in this process."""

    MAX_CALLERS = 100_000

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window = window_seconds
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, caller: str, now: dt.datetime) -> tuple[bool, int, int]:
        """Count one request of ``caller``: (allowed, remaining, seconds to reset)."""
        second = int(now.timestamp())
        window = second // self.window
        reset = (window + 1) * self.window - second
        seen, count = self._counts.get(caller, (window, 0))
        if seen != window:
            count = 0
        if len(self._counts) >= self.MAX_CALLERS:  # forget the finished windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        if count >= self.limit:
            return False, 0, reset
        self._counts[caller] = (window, count + 1)
        return True, self.limit - count - 1, reset


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Guard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, *, crm: Any, settings: WebSettings) -> None:
        self.app = app
        self.crm = crm
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_window_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        credential = credential_of(headers, cookies)
        client = scope.get("client") or ("unknown", 0)
        caller = _fingerprint(credential or f"address:{client[0]}")
        allowed, remaining, reset = self.limiter.hit(caller, self.crm.now())
        limit_headers = {
            "RateLimit": f"limit={self.limiter.limit}, remaining={remaining}, reset={reset}",
            "RateLimit-Policy": f"{self.limiter.limit};w={self.limiter.window}",
        }
        if not allowed:
            response = problem(
                429,
                f"rate limit of {self.limiter.limit} requests per {self.limiter.window} s "
                f"reached; retry in {reset} s",
                headers={**limit_headers, "Retry-After": str(reset)},
            )
            await response(scope, receive, send)
            return
        send = _with_headers(send, limit_headers)
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(headers, receive)
        except TooLarge:
            response = problem(
                413, f"request body larger than {self.settings.max_body_bytes} bytes"
            )
            await response(scope, receive, send)
            return
        replay = _replaying(body, receive)
        key = headers.get("idempotency-key")
        if (
            key is None
            or scope["method"] != "POST"
            or credential is None
            or scope["path"].startswith(NOT_IDEMPOTENT_PREFIX)
        ):
            await self.app(scope, replay, send)
            return
        await self._idempotent(scope, replay, send, caller, key, headers, body)

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _idempotent(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: str,
        key: str,
        headers: Headers,
        body: bytes,
    ) -> None:
        if not key.strip() or len(key) > MAX_KEY or not key.isprintable():
            response = problem(
                400, f"Idempotency-Key: expected 1 to {MAX_KEY} printable characters"
            )
            await response(scope, receive, send)
            return
        fingerprint = hashlib.sha256()
        for part in (
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            headers.get("content-type", ""),
        ):
            fingerprint.update(part.encode("utf-8") + b"\0")
        fingerprint.update(body)
        ttl = dt.timedelta(hours=self.settings.idempotency_hours)
        claim = await run_in_threadpool(
            idempotency.claim, self.crm, caller, key, fingerprint.hexdigest(), ttl
        )
        if claim.state == "replay":
            response = claim.response()
            await response(scope, receive, send)
            return
        if claim.state != "new":
            response = problem(claim.status, claim.detail)
            await response(scope, receive, send)
            return
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(idempotency.release, self.crm, caller, key)
            raise
        status = captured["status"]
        if status in KEPT_STATUSES:
            kept = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in captured["headers"]
                if k.lower() in (b"content-type", b"etag", b"location")
            }
            text = b"".join(captured["body"]).decode("utf-8", "replace")
            await run_in_threadpool(idempotency.store, self.crm, caller, key, status, kept, text)
        else:
            await run_in_threadpool(idempotency.release, self.crm, caller, key)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the application, then
    passes on what the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), *encoded]
        await send(message)

    return sending
