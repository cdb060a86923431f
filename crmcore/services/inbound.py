"""Inbound messages: an SMS handed in by the gateway, offered to every plugin."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from sqlalchemy import select, update

from crmcore import contacts
from crmcore.entities import InboundMessage
from crmcore.errors import AccessDenied, ValidationError
from crmcore.parse import clean_text
from crmcore.schema import customers, inbound_messages
from crmcore.services.base import Service, operation
from crmcore.services.checks import check_time
from crmcore.storage._driver import connection

MAX_SMS = 2000


class InboundOps(Service):
    """``crm.messages.receive_sms``."""

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
            routed = [r for r in self.hook.crm_route_inbound(crm=self.crm, message=message) if r]
            sender = connection(db).execute(
                select(customers.c.id).where(
                    customers.c.phone == phone, customers.c.merged_into_id.is_(None)
                )
            ).first()
        finally:
            db.principal = acting
        connection(db).execute(
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
