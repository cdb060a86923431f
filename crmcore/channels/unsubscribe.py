"""Unsubscribe by reply: an SMS that is one of ``[messages] unsubscribe_words``
(default 退订, TD, STOP; compared case-insensitively, surrounding spaces and
punctuation ignored) withdraws the sender's consent to SMS at once.

Every customer holding the number (their phone or a phone contact point)
loses ``consent_sms`` (and that contact point its consent), each change with
its audit row under whoever delivered the reply, and their queued marketing
SMS are cancelled. It runs as the core's ``crm_route_inbound``, so the
gateway's route, ``crm sms receive`` and any caller of ``crm.messages.receive_sms``
honour it alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from crmcore.channels import rules
from crmcore.schema import contact_points, customers, messages

if TYPE_CHECKING:
    from crmcore.entities import InboundMessage

_TRIM = " \t\r\n.!。！,，;；:：\"'“”‘’()（）[]【】"


def is_unsubscribe(text: str, words: list[str]) -> bool:
    """Whether ``text`` is one of the unsubscribe ``words``."""
    said = text.strip(_TRIM).casefold()
    return bool(said) and any(said == word.strip(_TRIM).casefold() for word in words)


def sms_channels(crm: Any) -> list[str]:
    """The channel names that deliver SMS: ``sms`` and every configured SMS channel."""
    names = {"sms"}
    names.update(n for n in crm.config.channels if rules.medium_of(crm.config, n) == "sms")
    return sorted(names)


def withdraw_by_reply(crm: Any, message: InboundMessage) -> str | None:
    """Withdraw SMS consent of the customers at ``message``'s number when it says an
    unsubscribe word; what was done, or None when it is not an unsubscribe."""
    if message.channel != "sms" or not is_unsubscribe(
        message.text, crm.config.messages["unsubscribe_words"]
    ):
        return None
    db = crm.db
    phone = message.from_address
    holders = select(contact_points.c.customer_id).where(
        contact_points.c.kind == "phone", contact_points.c.value == phone
    )
    ids = [
        r.id
        for r in db.execute(
            select(customers.c.id).where(
                customers.c.merged_into_id.is_(None),
                (customers.c.phone == phone) | customers.c.id.in_(holders),
            )
        )
    ]
    if not ids:
        return None
    db.execute(
        update(customers)
        .where(customers.c.id.in_(ids), customers.c.consent_sms.is_(True))
        .values(consent_sms=False, updated_at=crm.now())
    )
    db.execute(
        update(contact_points)
        .where(
            contact_points.c.kind == "phone",
            contact_points.c.value == phone,
            contact_points.c.consent.is_(True),
        )
        .values(consent=False)
    )
    cancelled = rules.cancel(
        db,
        messages.c.customer_id.in_(ids)
        & (messages.c.purpose == rules.MARKETING)
        & messages.c.channel.in_(sms_channels(crm)),
        "the customer unsubscribed by reply",
    )
    who = ", ".join(str(i) for i in ids)
    return (
        f"unsubscribed customer {who} from sms; {cancelled} queued marketing message(s) cancelled"
    )
