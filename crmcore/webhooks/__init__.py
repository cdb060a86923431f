"""Outbound webhooks: integrators are told of events over HTTP, signed.

A subscription (``crm webhook add URL --events a,b``) names an endpoint, the events
it wants and the environment variable holding its signing secret. When an event
happens, the change's own transaction writes one outbox message per matching
subscription (the outbox pattern: the event is sent if and only if the change
commits); ``crm outbox send`` delivers it after commit through the channel
``webhook`` (:mod:`crmcore.webhooks.delivery`), retrying a failed attempt.

Events: the core's (:data:`CORE_EVENTS`) and a plugin's own, named
``<plugin>.<event>`` and published with :func:`publish`. A payload carries ids and
amounts, never personal data: the receiver reads the rest through the API.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select, update

from crmcore.errors import NotFound, ValidationError
from crmcore.schema import messages, webhook_subscriptions
from crmcore.storage._driver import connection

CHANNEL = "webhook"
CORE_EVENTS = (
    "customer.created",
    "customers.imported",
    "customer.stage_changed",
    "transaction.recorded",
    "transactions.imported",
    "ticket.moved",
)
ALL_EVENTS = "*"
DEFAULT_SECRET_ENV = "CRM_WEBHOOK_SECRET"
SECRET_PREFIX = "whsec_"
_EVENT = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
KEY_PREFIX = "whk"


def message_key(subscription_id: int) -> str:
    """A new message's idempotency key (the ``webhook-id`` header): unique, stable
    across retries, and naming its subscription (so removing it cancels what waits)."""
    return f"{KEY_PREFIX}_{subscription_id}_{uuid.uuid4().hex}"


def check_url(url: str) -> str:
    """An http(s) endpoint of at most 254 characters, or a one-line error."""
    text = (url or "").strip()
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", text):
        raise ValidationError(f"webhook URL {url!r}: expected http:// or https:// and a host")
    if len(text) > 254:
        raise ValidationError(f"webhook URL: {len(text)} characters; at most 254")
    return text


def check_events(crm: Any, events: Iterable[str]) -> list[str]:
    """Event names a subscription may ask for: a core event, ``<plugin>.<event>`` of
    an enabled plugin, or ``*`` (every event)."""
    names = [e.strip() for e in events if e and e.strip()]
    if not names:
        raise ValidationError(f"--events: name at least one event ({', '.join(CORE_EVENTS)})")
    enabled = set(crm.plugins.order)
    for name in names:
        if name == ALL_EVENTS or name in CORE_EVENTS:
            continue
        if not _EVENT.fullmatch(name) or name.split(".", 1)[0] not in enabled:
            raise ValidationError(
                f"event {name!r}: expected one of {', '.join(CORE_EVENTS)}, "
                "'<plugin>.<event>' of an enabled plugin, or '*'"
            )
    return sorted(set(names))


def check_secret(value: str | None, env: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret read from ``env``, or a one-line error."""
    if not value:
        raise ValidationError(
            f"webhook secret: environment variable {env} is not set "
            "(make one with: crm webhook secret)"
        )
    if not value.startswith(SECRET_PREFIX):
        raise ValidationError(f"webhook secret in {env}: expected '{SECRET_PREFIX}<base64>'")
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            f"webhook secret in {env}: not base64 after '{SECRET_PREFIX}'"
        ) from None
    if len(key) < 24:
        raise ValidationError(f"webhook secret in {env}: {len(key)} bytes; at least 24")
    return key


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "url": r.url,
        "events": list(r.events),
        "secret_env": r.secret_env,
        "created_at": r.created_at,
        "created_by": r.created_by,
    }


def subscribe(
    crm: Any, url: str, events: Iterable[str], *, secret_env: str | None = None
) -> dict[str, Any]:
    """Add a subscription (needs the ``configure`` permission). The secret is read
    from ``secret_env`` now, to refuse a missing or malformed one early, and again
    by the sender at each delivery; it is never stored."""
    env = (secret_env or DEFAULT_SECRET_ENV).strip()
    if not _ENV.fullmatch(env):
        raise ValidationError(f"--secret-from-env {secret_env!r}: expected an upper-case name")
    with crm.transaction(command="webhook add"):
        target = check_url(url)
        names = check_events(crm, events)
        check_secret(os.environ.get(env), env)
        res = crm.db.execute(
            webhook_subscriptions.insert().values(
                url=target,
                events=names,
                secret_env=env,
                created_at=crm.now(),
                created_by=crm.db.principal.key,
            )
        )
        sid = res.inserted_primary_key[0]
        row = crm.db.execute(
            select(webhook_subscriptions).where(webhook_subscriptions.c.id == sid)
        ).one()
        return _row(row)


def subscriptions(crm: Any) -> list[dict[str, Any]]:
    """Every subscription, oldest first."""
    with crm.transaction(write=False):
        stmt = select(webhook_subscriptions).order_by(webhook_subscriptions.c.id)
        return [_row(r) for r in crm.db.execute(stmt)]


def unsubscribe(crm: Any, subscription_id: int) -> dict[str, Any]:
    """Remove a subscription (needs ``configure``); its messages still waiting in the
    outbox are given up (``failed``, "subscription removed"), in the same transaction."""
    with crm.transaction(command="webhook remove"):
        row = crm.db.execute(
            select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
        ).first()
        if row is None:
            raise NotFound(f"webhook subscription {subscription_id} not found")
        crm.db.execute(
            delete(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
        )
        cancelled = crm.db.execute(
            update(messages)
            .where(
                messages.c.channel == CHANNEL,
                messages.c.status == "queued",
                messages.c.idempotency_key.like(f"{KEY_PREFIX}\\_{subscription_id}\\_%", "\\"),
            )
            .values(status="failed", last_error="subscription removed")
        ).rowcount
        return _row(row) | {"cancelled": int(cancelled)}


_SUBSCRIPTIONS = select(webhook_subscriptions).order_by(webhook_subscriptions.c.id)


def envelope(secret_env: str, body: str) -> str:
    """The outbox body of a webhook message: the JSON to POST (signed as is) and the
    name of the variable holding the secret, which the sender reads at delivery."""
    return json.dumps({"secret_env": secret_env, "body": body}, ensure_ascii=False)


def publish(
    crm: Any,
    event: str,
    data: Mapping[str, Any],
    *,
    customer_id: int | None = None,
    source: str = "core",
) -> int:
    """Queue ``event`` with ``data`` for every subscription that wants it, inside the
    caller's transaction; the number of messages queued (0 without subscribers).

    A plugin publishes its own events as ``<plugin>.<event>`` (e.g.
    ``retail.member_joined``) with ids and amounts in ``data``, no personal data;
    ``customer_id`` ties the message to the customer (a forget redacts it)."""
    if not _EVENT.fullmatch(event):
        raise ValidationError(f"webhook event {event!r}: expected 'area.name' in lower case")
    # every write of a customer, a purchase or a ticket asks this: the subscriptions
    # (configuration, no customer data, never shown to the caller) are read on the
    # transaction's own connection in one cached statement, without the filter's cost
    subs = [
        s
        for s in connection(crm.db).execute(_SUBSCRIPTIONS)
        if event in s.events or ALL_EVENTS in s.events
    ]
    if not subs:
        return 0
    now = crm.now()
    body = json.dumps(
        {"type": event, "timestamp": now.isoformat(), "data": dict(data)},
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )
    rows = [
        {
            "customer_id": customer_id,
            "channel": CHANNEL,
            "to_address": s.url,
            "template": event[:64],
            "body": envelope(s.secret_env, body),
            "payload": {"subscription_id": s.id, "event": event},
            "idempotency_key": message_key(s.id),
            "status": "queued",
            "attempts": 0,
            "created_at": now,
            "source": source,
        }
        for s in subs
    ]
    for row in rows:
        crm.db.execute(messages.insert().values(**row))
    return len(rows)


def deliveries(
    crm: Any, *, event: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Webhook messages (those of customers the caller may see), oldest first: each
    with its event, endpoint, attempts, outcome and last error."""
    with crm.transaction(write=False):
        stmt = select(messages).where(messages.c.channel == CHANNEL).order_by(messages.c.id)
        if event is not None:
            stmt = stmt.where(messages.c.template == event)
        if status is not None:
            stmt = stmt.where(messages.c.status == status)
        return [
            {
                "id": r.id,
                "event": r.template,
                "url": r.to_address,
                "webhook_id": r.idempotency_key,
                "customer_id": r.customer_id,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "created_at": r.created_at,
                "attempted_at": r.attempted_at,
                "sent_at": r.sent_at,
            }
            for r in crm.db.execute(stmt)
        ]
