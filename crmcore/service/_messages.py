"""The outbox (outbound messages and after-commit events) and inbound SMS."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import select, true, update

from crmcore import contacts
from crmcore.entities import InboundMessage, Message
from crmcore.errors import AccessDenied, ValidationError
from crmcore.files import append_private_line
from crmcore.parse import clean_key, clean_text, parse_int
from crmcore.registry import Channel
from crmcore.schema import contact_points, customers, inbound_messages, messages
from crmcore.service import _rows
from crmcore.service._base import CRMBase, operation
from crmcore.service._records import check_time

MAX_SMS = 2000
MAX_BODY = 10_000
# where each channel finds a customer's address, and the consent that governs it
_ADDRESS = {"sms": ("phone", "consent_sms"), "email": ("email", "consent_email")}


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
        staff: Any = None,
        transactional: bool = False,
        key: str | None = None,
        source: str = "core",
    ) -> Message | None:
        """Put a message in the outbox (sent after commit by ``crm outbox send``).

        Placeholders of ``template`` are filled now, from ``values``: the stored
        body is what is sent, however late.

        Who may be messaged:

        - a customer (``customer``, or a ``to`` that is a customer's phone,
          e-mail or contact point) only with their consent for the channel
          (``consent_sms`` / ``consent_email``, and the contact point's own
          consent): without it, or without an address, nothing is queued and
          None is returned;
        - a member of staff (``staff``, with ``to`` their address);
        - any other address only when the caller is unrestricted and says the
          message is ``transactional`` (one the recipient asked for, e.g. a
          restock notice to the phone they left); otherwise it is refused.

        With ``key``, a second call with the same key returns the first
        message: a job run twice never sends twice.
        """
        if key is not None:
            key = clean_text(key, field="message key", max_len=200) or ""
            seen = self.db.conn.execute(
                select(messages).where(messages.c.idempotency_key == key)
            ).first()
            if seen is not None:
                return _rows.message(seen)
        channel = clean_key(channel, field="message channel", max_len=32)
        address = self._address(channel, to)
        cid: int | None = None
        if staff is not None:
            member = self._staff_row(staff)
            if not member.active:
                raise ValidationError(f"staff member {member.key!r} has departed")
            if address is None:
                raise ValidationError(
                    f"message to staff member {member.key!r}: give their address with to="
                )
        else:
            row = None if customer is None else self._customer_row(customer, write=True)
            if row is not None:
                cid = row.id
                if not self._consents(row, channel):
                    return None
                if address is None and channel in _ADDRESS:
                    address = getattr(row, _ADDRESS[channel][0])
                    if address is None:
                        return None
            elif address is None:
                raise ValidationError("message: give a customer, a member of staff or an address")
            if address is not None:
                owners = self._address_owners(channel, address)
                if owners:
                    if not all(consent for _, consent in owners):
                        return None  # a customer behind this address said no
                    if cid is None:
                        cid = owners[0][0]
                elif not (transactional and self.db.principal.unrestricted):
                    whose = f"customer {cid}" if cid is not None else "any customer"
                    raise ValidationError(
                        f"message to {address}: not a contact point of {whose}; only an "
                        "unrestricted caller may send a transactional message to another address"
                    )
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
        body = clean_text(body, field="message body", max_len=MAX_BODY, multiline=True)
        res = self.db.execute(
            messages.insert().values(
                customer_id=cid,
                channel=channel,
                to_address=address,
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

    def _address(self, channel: str, to: Any) -> str | None:
        """``to`` normalised for the channel (E.164 phone, lower-case e-mail)."""
        if to is None:
            return None
        if channel == "sms":
            return contacts.normalise_phone(to, self.config.core["country_code"])
        if channel == "email":
            return contacts.normalise_email(to)
        return clean_text(to, field=f"{channel} address", max_len=254)

    @staticmethod
    def _consents(row: Any, channel: str) -> bool:
        return bool(getattr(row, _ADDRESS[channel][1])) if channel in _ADDRESS else True

    def _address_owners(self, channel: str, address: str) -> list[tuple[int, bool]]:
        """The customers holding ``address`` for ``channel`` (their own field or a
        contact point), each with whether they consent to messages there. Read
        over the whole base: consent belongs to whoever holds the address, seen
        by the caller or not."""
        conn = self.db.conn
        found: list[tuple[int, bool]] = []
        kind = _ADDRESS[channel][0] if channel in _ADDRESS else channel
        consent: Any = customers.c[_ADDRESS[channel][1]] if channel in _ADDRESS else true()
        if channel in _ADDRESS:
            found += [
                (r[0], bool(r[1]))
                for r in conn.execute(
                    select(customers.c.id, consent).where(
                        customers.c[kind] == address, customers.c.merged_into_id.is_(None)
                    )
                )
            ]
        found += [
            (r[0], bool(r[1]) and bool(r[2]))
            for r in conn.execute(
                select(contact_points.c.customer_id, contact_points.c.consent, consent)
                .join(customers, customers.c.id == contact_points.c.customer_id)
                .where(contact_points.c.kind == kind, contact_points.c.value == address)
            )
        ]
        return found

    @operation(write=False)
    def outbox(self, *, status: str | None = None) -> list[Message]:
        """The messages in the outbox, oldest first; ``status`` (queued, sending, sent, dead)
        keeps one state."""
        stmt = select(messages).order_by(messages.c.id)
        if status is not None:
            stmt = stmt.where(messages.c.status == status)
        return [_rows.message(r) for r in self.db.execute(stmt)]

    def send_outbox(self, *, limit: int | None = None) -> dict[str, int]:
        """Deliver the due messages through their channels, after commit: one
        pass of the outbox worker (:mod:`crmcore.ops.worker`, ``crm worker``).

        Each message is claimed (``sending``, its attempt counted, a lease
        taken) in a short committed transaction before its channel is called,
        and its result recorded after, in a transaction of its own; the channel
        gets the message's idempotency key, the same on every attempt. A failed
        attempt goes back to ``queued`` until ``[outbox] max_attempts`` (default
        ``outbox_max_attempts``), after a backoff, then ``dead``. A message a
        crash left in ``sending`` is claimed again once its lease expires, with
        its key, so a channel that dedupes on the key delivers it once. Returns
        how many were sent and how many attempts failed."""
        from crmcore.ops.worker import Worker, require_sender

        if limit is not None:
            limit = parse_int(limit, field="--limit", min=1)
        require_sender(self)
        done = Worker(self).drain(limit)
        return {"sent": done.sent, "failed": done.failed + done.interrupted}

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
        text = clean_text(text, field="sms text", max_len=MAX_SMS, multiline=True) or ""
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
        shown = sender.id if sender is not None and db.can_see(sender.id) else None
        return {
            "id": mid,
            "from": phone,
            "delivered_by": deliverer,
            "claimed": len(routed),
            "routed": routed if acting.unrestricted else [],
            "customer_id": shown,
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
