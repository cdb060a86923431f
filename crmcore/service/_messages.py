"""The outbox (outbound messages and after-commit events) and inbound SMS."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import select, update

from crmcore import contacts
from crmcore.entities import InboundMessage, Message
from crmcore.errors import AccessDenied, ValidationError
from crmcore.files import append_private_line
from crmcore.registry import Channel
from crmcore.schema import customers, inbound_messages, messages
from crmcore.service import _rows
from crmcore.service._base import CRMBase, operation
from crmcore.service._records import check_time

MAX_SMS = 2000


def _log_channel(path: str) -> Channel:
    """The default channel: append each message as a JSON line to a private file."""

    def send(message: Message) -> None:
        line = json.dumps(
            {
                "id": message.id,
                "channel": message.channel,
                "to": message.to_address,
                "body": message.body,
                "key": message.idempotency_key,
            },
            ensure_ascii=False,
        )
        append_private_line(path, line)  # mode 0600; a forget's redaction loses no line

    return Channel(name="log", send=send)


class MessagesMixin(CRMBase):
    @operation()
    def enqueue_message(
        self,
        channel: str,
        *,
        body: str | None = None,
        template: str | None = None,
        values: Mapping[str, Any] | None = None,
        customer: Any = None,
        to: str | None = None,
        key: str | None = None,
        source: str = "core",
    ) -> Message | None:
        """Put a message in the outbox (sent after commit by ``crm outbox send``).

        Returns None, queuing nothing, when the customer withheld consent for the
        channel or has no address for it. With ``key``, a second call with the
        same key returns the first message: a job run twice never sends twice.
        """
        if key is not None:
            seen = self.db.conn.execute(
                select(messages).where(messages.c.idempotency_key == key)
            ).first()
            if seen is not None:
                return _rows.message(seen)
        cid = None
        if customer is not None:
            row = self._customer_row(customer, write=True)
            cid = row.id
            if (
                channel == "sms"
                and not row.consent_sms
                or channel == "email"
                and not row.consent_email
            ):
                return None
            if to is None:
                to = row.phone if channel == "sms" else row.email if channel == "email" else None
            if to is None and channel in ("sms", "email"):
                return None
        if template is not None:
            tpl = self.plugins.declared.get("template", {}).get(template)
            if tpl is None:
                raise ValidationError(
                    f"message template {template!r} is not declared by any enabled plugin"
                )
            try:
                body = tpl.render(**dict(values or {}))
            except (KeyError, IndexError, ValueError) as e:
                raise ValidationError(f"template {template!r}: missing or bad value {e}") from None
        if not body:
            raise ValidationError("message: a body or a template is required")
        res = self.db.execute(
            messages.insert().values(
                customer_id=cid,
                channel=channel,
                to_address=to,
                template=template,
                body=body,
                idempotency_key=key or f"msg:{uuid.uuid4().hex}",
                status="queued",
                attempts=0,
                created_at=self.now(),
                source=source,
            )
        )
        return _rows.message(
            self.db.conn.execute(
                select(messages).where(messages.c.id == res.inserted_primary_key[0])
            ).one()
        )

    @operation()
    def emit_after_commit(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        source: str = "core",
    ) -> Message:
        """Queue an after-commit event: ``crm_after_commit`` hooks receive it from
        ``crm outbox send``, outside any transaction, retried until they succeed."""
        if key is not None:
            seen = self.db.conn.execute(
                select(messages).where(messages.c.idempotency_key == key)
            ).first()
            if seen is not None:
                return _rows.message(seen)
        res = self.db.execute(
            messages.insert().values(
                channel="event",
                body=topic,
                payload=dict(payload),
                idempotency_key=key or f"evt:{uuid.uuid4().hex}",
                status="queued",
                attempts=0,
                created_at=self.now(),
                source=source,
            )
        )
        return _rows.message(
            self.db.conn.execute(
                select(messages).where(messages.c.id == res.inserted_primary_key[0])
            ).one()
        )

    @operation(write=False)
    def outbox(self, *, status: str | None = None) -> list[Message]:
        stmt = select(messages).order_by(messages.c.id)
        if status is not None:
            stmt = stmt.where(messages.c.status == status)
        return [_rows.message(r) for r in self.db.execute(stmt)]

    def send_outbox(self, *, limit: int | None = None) -> dict[str, int]:
        """Deliver queued messages through their channels, after commit, one
        transaction per delivery status; failures are retried on the next run
        up to ``outbox_max_attempts``."""
        with self.transaction(write=False, command="outbox send"):
            if not self.db.principal.can("admin"):
                raise AccessDenied(
                    f"{self.db.principal.key} may not send the outbox: needs 'admin'"
                )
            stmt = select(messages).where(messages.c.status == "queued").order_by(messages.c.id)
            if limit:
                stmt = stmt.limit(limit)
            queued = [(_rows.message(r), r.payload) for r in self.db.execute(stmt)]
        channels: dict[str, Channel] = dict(self.plugins.declared.get("channel", {}))
        fallback = _log_channel(self.config.core["outbox_path"])
        max_attempts = self.config.core["outbox_max_attempts"]
        sent = failed = 0
        for msg, payload in queued:
            try:
                if msg.channel == "event":
                    self.hook.crm_after_commit(event=msg, payload=dict(payload or {}))
                else:
                    channels.get(msg.channel, fallback).send(msg)
            except Exception as e:  # a channel failure must not stop the others
                attempts = msg.attempts + 1
                with self.transaction(command="outbox send"):
                    self.db.execute(
                        update(messages)
                        .where(messages.c.id == msg.id)
                        .values(
                            attempts=attempts,
                            last_error=f"{type(e).__name__}: {e}"[:500],
                            status="failed" if attempts >= max_attempts else "queued",
                        )
                    )
                failed += 1
                continue
            with self.transaction(command="outbox send"):
                self.db.execute(
                    update(messages)
                    .where(messages.c.id == msg.id)
                    .values(status="sent", attempts=msg.attempts + 1, sent_at=self.now())
                )
            sent += 1
        return {"sent": sent, "failed": failed}

    # -- inbound -----------------------------------------------------------------
    @operation()
    def receive_sms(
        self,
        from_phone: str,
        text: str,
        *,
        at: dt.datetime | None = None,
        delivered_by: str | None = None,
    ) -> dict[str, Any]:
        """Store an inbound SMS and offer it to every plugin (``crm_route_inbound``).

        Inbound messages are the gateway's to report: only a principal with the
        ``admin`` permission (the system, a gateway, an admin at the CLI) may
        hand one in, since a reply can verify a visit or change a record.
        ``delivered_by`` names who or what delivered it (a gateway's channel
        name; default: the acting principal's key); it is stored with the
        message and in the audit trail. Plugins route the message with the whole
        base in view, their changes audited under the deliverer; what they
        report back (``routed``) is returned only to a caller who may see the
        whole base, and ``customer_id`` only when the caller may see that customer.
        """
        acting = self.db.principal
        if not acting.can("admin"):
            raise AccessDenied(
                f"{acting.key} may not hand in inbound messages: needs the 'admin' permission "
                "(they are the SMS gateway's to report)"
            )
        deliverer = _deliverer(delivered_by, acting.key)
        phone = contacts.normalise_phone(from_phone, self.config.core["country_code"])
        if not isinstance(text, str):
            raise ValidationError(f"sms text: expected text, got {type(text).__name__}")
        if len(text) > MAX_SMS:
            raise ValidationError(f"sms text: {len(text)} characters; at most {MAX_SMS}")
        if "\x00" in text:
            raise ValidationError("sms text: contains a NUL character")
        when = check_time(at or self.now(), "at")
        with self.db._as_service():  # raw input, an internal table; 'admin' checked above
            res = self.db.execute(
                inbound_messages.insert().values(
                    channel="sms",
                    from_address=phone,
                    text=text,
                    received_at=when,
                    routed=[],
                    delivered_by=deliverer,
                )
            )
        mid = res.inserted_primary_key[0]
        message = InboundMessage(
            id=mid,
            channel="sms",
            from_address=phone,
            text=text,
            received_at=when,
            delivered_by=deliverer,
        )
        # The sender is outside the company: plugins route it with the whole base in
        # view; their writes are audited under whoever delivered it.
        db = self.db
        db.principal = attrs.evolve(acting, scope="all")
        try:
            routed = [r for r in self.hook.crm_route_inbound(crm=self, message=message) if r]
            sender = db.conn.execute(
                select(customers.c.id).where(
                    customers.c.phone == phone, customers.c.merged_into_id.is_(None)
                )
            ).first()
        finally:
            db.principal = acting
        db.conn.execute(
            update(inbound_messages).where(inbound_messages.c.id == mid).values(routed=list(routed))
        )
        db.audit(
            "inbound_messages",
            str(mid),
            "receive",
            None,
            {
                "channel": "sms",
                "from_address": phone,
                "received_at": when,
                "delivered_by": deliverer,
                "routed": routed,
            },
            customer_id=sender.id if sender is not None else None,
        )
        known = sender is not None and db.can_see(sender.id)
        return {
            "id": mid,
            "from": phone,
            "delivered_by": deliverer,
            "claimed": len(routed),
            "routed": routed if acting.unrestricted else [],
            "customer_id": sender.id if known else None,
        }


def _deliverer(delivered_by: str | None, default: str) -> str:
    """The checked name of who or what delivered an inbound message."""
    if delivered_by is None:
        return default
    if not isinstance(delivered_by, str) or not delivered_by.strip():
        raise ValidationError("delivered_by: give the gateway's channel name or a staff key")
    name = delivered_by.strip()
    if len(name) > 64:
        raise ValidationError(f"delivered_by: {len(name)} characters; at most 64")
    if not name.isprintable():
        raise ValidationError("delivered_by: contains control characters")
    return name
