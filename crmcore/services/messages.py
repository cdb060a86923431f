"""``crm.messages``: the outbox (outbound messages and after-commit events) and inbound SMS."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, true, update

from crmcore import contacts
from crmcore.channels import build_channels, rules
from crmcore.entities import Message
from crmcore.errors import AccessDenied, ValidationError
from crmcore.parse import clean_key, clean_text, parse_int
from crmcore.registry import Channel
from crmcore.schema import contact_points, customers, messages
from crmcore.services import rows as make
from crmcore.services.base import operation
from crmcore.services.inbound import InboundOps
from crmcore.services.logsink import LogSink
from crmcore.services.refs import customer_row, staff_row
from crmcore.storage._driver import connection

MAX_BODY = 10_000
# where each channel finds a customer's address, and the consent that governs it
_ADDRESS = {"sms": ("phone", "consent_sms"), "email": ("email", "consent_email")}


class MessageService(InboundOps):
    """The outbox (enqueue, list, send), after-commit events and inbound SMS."""

    area = "messages"

    @operation()
    def enqueue(
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
        purpose: str | None = None,
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

        The consent is the one of the channel's medium: a configured
        ``[channels.NAME]`` of an SMS kind needs ``consent_sms`` whatever its
        name. A ``purpose="marketing"`` message (``purpose`` defaults to the
        template's) obeys the ``[messages]`` rules (:mod:`crmcore.channels.rules`):
        inside quiet hours it is held until they end; over a frequency cap it
        is not queued and None is returned.

        With ``key``, a second call with the same key returns the first
        message: a job run twice never sends twice.
        """
        if key is not None:
            key = clean_text(key, field="message key", max_len=200) or ""
            seen = connection(self.db).execute(
                select(messages).where(messages.c.idempotency_key == key)
            ).first()
            if seen is not None:
                return make.message(seen)
        channel = clean_key(channel, field="message channel", max_len=32)
        medium = rules.medium_of(self.config, channel)
        address = self._address(medium, to)
        cid: int | None = None
        if staff is not None:
            member = staff_row(self.db, staff)
            if not member.active:
                raise ValidationError(f"staff member {member.key!r} has departed")
            if address is None:
                raise ValidationError(
                    f"message to staff member {member.key!r}: give their address with to="
                )
        else:
            row = None if customer is None else customer_row(self.db, customer, write=True)
            if row is not None:
                cid = row.id
                if not self._consents(row, medium):
                    return None
                if address is None and medium in _ADDRESS:
                    address = getattr(row, _ADDRESS[medium][0])
                    if address is None:
                        return None
            elif address is None:
                raise ValidationError("message: give a customer, a member of staff or an address")
            if address is not None:
                owners = self._address_owners(medium, address)
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
        tpl = None
        if template is not None:
            tpl = self.plugins.declared.get("template", {}).get(template)
            if tpl is None:
                raise ValidationError(
                    f"message template {template!r} is not declared by any enabled plugin"
                )
            owner = self.plugins.owners.get(("template", template), "")
            locale = self.config.core["message_locale"]
            try:
                body = tpl.render(locale=locale, domain=owner, **dict(values or {}))
            except (KeyError, IndexError, ValueError) as e:
                raise ValidationError(f"template {template!r}: missing or bad value {e}") from None
        if not body:
            raise ValidationError("message: a body or a template is required")
        body = clean_text(body, field="message body", max_len=MAX_BODY, multiline=True)
        purpose = rules.purpose_of(tpl, purpose)
        admitted, not_before = rules.admit(self.crm, customer_id=cid, purpose=purpose)
        if not admitted:
            return None
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
                purpose=purpose,
                not_before=not_before,
                payload=None if tpl is None else {"values": _jsonable_values(values)},
            )
        )
        return make.message(
            connection(self.db).execute(
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
            seen = connection(self.db).execute(
                select(messages).where(messages.c.idempotency_key == key)
            ).first()
            if seen is not None:
                return make.message(seen)
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
        return make.message(
            connection(self.db).execute(
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
        conn = connection(self.db)
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
        """The messages in the outbox, oldest first; ``status`` (queued, sending, sent, failed,
        cancelled) keeps one state."""
        stmt = select(messages).order_by(messages.c.id)
        if status is not None:
            stmt = stmt.where(messages.c.status == status)
        return [make.message(r) for r in self.db.execute(stmt)]

    def send_outbox(self, *, limit: int | None = None) -> dict[str, int]:
        """Deliver queued messages through their channels, after commit.

        Each message moves queued -> sending -> sent | failed. The attempt is
        counted and committed (``sending``) *before* the channel is called, the
        result after, each in its own transaction; the channel gets the
        message's idempotency key, the same on every attempt. A failed attempt
        goes back to ``queued`` until ``outbox_max_attempts``, then ``failed``.
        A message a crash left in ``sending`` is retried, with its key, by the
        next run, so a channel that dedupes on the key delivers it once. Run
        one sender at a time: a second one would retry what the first is still
        delivering.

        Before each attempt the messaging rules are checked again
        (:func:`crmcore.channels.rules.recheck`): a message is held when quiet
        hours began since it was queued, cancelled when consent was withdrawn
        or a frequency cap filled up. Held messages wait in ``queued`` until
        their ``not_before``. Channels come from ``[channels.NAME]`` in
        crm.toml, each replaced by a plugin's channel of the same name."""
        if limit is not None:
            limit = parse_int(limit, field="--limit", min=1)
        with self.crm.transaction(write=False, command="outbox send"):
            if not self.db.principal.can("admin"):
                raise AccessDenied(
                    f"{self.db.principal.key} may not send the outbox: needs 'admin'"
                )
            stmt = (
                select(messages)
                .where(messages.c.status.in_(("queued", "sending")), rules.due(self.now()))
                .order_by(messages.c.id)
            )
            if limit:
                stmt = stmt.limit(limit)
            pending = [(make.message(r), r.payload) for r in self.db.execute(stmt)]
        declared: dict[str, Channel] = dict(self.plugins.declared.get("channel", {}))
        configured = build_channels(self.config, self.crm.clock, replaced=declared)
        channels = {**configured.by_name, **declared}
        fallback = LogSink(self.config.core["outbox_path"]).channel()
        max_attempts = self.config.core["outbox_max_attempts"]
        sent = failed = held = cancelled = 0
        for msg, payload in pending:
            if msg.channel != "event" and msg.status == "queued":
                with self.crm.transaction(command="outbox send"):
                    verdict = rules.recheck(self.crm, msg)
                if verdict is not None:
                    held += verdict == "held"
                    cancelled += verdict == "cancelled"
                    continue
            if msg.status == "sending" and msg.attempts >= max_attempts:
                # its last allowed attempt was interrupted: the outcome is unknown
                self._finish(msg, msg.attempts, "failed", "delivery interrupted")
                failed += 1
                continue
            attempt = self._claim(msg)
            if attempt is None:
                continue  # another sender took it
            provider_id: str | None = None
            try:
                if msg.channel == "event":
                    self.hook.crm_after_commit(event=msg, payload=dict(payload or {}))
                    for stream in configured.event_streams:
                        stream.send(msg, msg.idempotency_key)
                else:
                    answer = channels.get(msg.channel, fallback).send(msg, msg.idempotency_key)
                    provider_id = answer[:128] if isinstance(answer, str) else None
            except Exception as e:  # a channel failure must not stop the others
                status = "failed" if attempt >= max_attempts else "queued"
                self._finish(msg, attempt, status, f"{type(e).__name__}: {e}"[:500])
                failed += 1
                continue
            self._finish(msg, attempt, "sent", None, provider_id=provider_id)
            sent += 1
        return {"sent": sent, "failed": failed, "held": held, "cancelled": cancelled}

    def _claim(self, msg: Message) -> int | None:
        """Mark ``msg`` sending and count the attempt, committed before the
        channel call; the attempt's number, or None if its row moved on (taken
        by another sender) since it was read."""
        attempt = msg.attempts + 1
        with self.crm.transaction(command="outbox send"):
            claimed = self.db.execute(
                update(messages)
                .where(
                    messages.c.id == msg.id,
                    messages.c.status == msg.status,
                    messages.c.attempts == msg.attempts,
                )
                .values(status="sending", attempts=attempt, attempted_at=self.now())
            ).rowcount
        return attempt if claimed else None

    def _finish(
        self,
        msg: Message,
        attempt: int,
        status: str,
        error: str | None,
        *,
        provider_id: str | None = None,
    ) -> None:
        """Record the outcome of attempt number ``attempt`` of ``msg`` (and the
        gateway's id for it, when its channel returned one)."""
        values: dict[str, Any] = {"status": status, "attempts": attempt, "last_error": error}
        if status == "sent":
            values["sent_at"] = self.now()
        if provider_id is not None:
            values["provider_id"] = provider_id
        with self.crm.transaction(command="outbox send"):
            self.db.execute(
                update(messages)
                .where(messages.c.id == msg.id, messages.c.attempts == attempt)
                .values(**values)
            )


def _jsonable_values(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """A template's values as JSON keeps them (a gateway that sends a template by
    its id needs them again): numbers, text and booleans as they are, anything
    else as its text."""
    return {
        str(k): v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
        for k, v in (values or {}).items()
    }
