"""``crm.messages``: the outbox (outbound messages and after-commit events) and inbound SMS."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, true

from crmcore import contacts
from crmcore.channels import rules
from crmcore.entities import Message
from crmcore.errors import ValidationError
from crmcore.parse import clean_key, clean_text, parse_int
from crmcore.schema import contact_points, customers, messages
from crmcore.services import rows as make
from crmcore.services.base import operation
from crmcore.services.inbound import InboundOps
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
        address = self.address_for(medium, to)
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
                owners = self.address_owners(medium, address)
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

    def address_for(self, channel: str, to: Any) -> str | None:
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

    def address_owners(self, channel: str, address: str) -> list[tuple[int, bool]]:
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
        """The messages in the outbox, oldest first; ``status`` (queued, sending, sent, dead,
        cancelled) keeps one state."""
        stmt = select(messages).order_by(messages.c.id)
        if status is not None:
            stmt = stmt.where(messages.c.status == status)
        return [make.message(r) for r in self.db.execute(stmt)]

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
        how many were sent, how many attempts failed, and how many the
        messaging rules held (quiet hours began since it was queued: back to
        ``queued`` until they end) or cancelled (consent withdrawn, a frequency
        cap filled) just before delivery. Channels come from ``[channels.NAME]``
        in crm.toml, each replaced by a plugin's channel of the same name."""
        from crmcore.ops.worker import Worker, require_sender

        if limit is not None:
            limit = parse_int(limit, field="--limit", min=1)
        require_sender(self.crm)
        done = Worker(self.crm).drain(limit)
        return {
            "sent": done.sent,
            "failed": done.failed + done.interrupted,
            "held": done.held,
            "cancelled": done.cancelled,
        }


def _jsonable_values(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """A template's values as JSON keeps them (a gateway that sends a template by
    its id needs them again): numbers, text and booleans as they are, anything
    else as its text."""
    return {
        str(k): v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
        for k, v in (values or {}).items()
    }
