"""Message hooks: inbound routing and after-commit events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.entities import InboundMessage, Message
    from crmcore.service import CRM


@hookspec
def crm_route_inbound(crm: CRM, message: InboundMessage) -> str | None:
    """An inbound message (e.g. an SMS reply) arrived; claim it if it is yours.

    :param crm: the CRM bound to the transaction that stores the message.
    :param message: the :class:`InboundMessage` (sender normalised to E.164;
        ``delivered_by`` names the gateway channel or staff key that handed it in).

    Only a principal with ``admin`` (the system, a gateway, an admin) may hand a
    message in. The sender is outside the company, so routing runs with the whole
    customer base in view; writes are audited under the deliverer. All plugins are
    asked. Return a short description of what you did with it
    (``"verified visit 12"``) or ``None`` if it is not for you; every non-None
    answer is stored with the message and shown only to a caller who may see the
    whole base. Raising rolls the receipt back.
    """


@hookspec
def crm_after_commit(event: Message, payload: dict[str, Any]) -> None:
    """An after-commit event (queued with ``crm.messages.emit_after_commit``) is delivered.

    :param event: the outbox row (:class:`Message`; ``body`` is the topic,
        ``idempotency_key`` stable across retries).
    :param payload: the event's JSON payload.

    Runs from ``crm outbox send`` *outside* any transaction, after the change
    committed — the place to notify another system. Raise to have it retried on
    the next run; a retry never sends twice if the receiver dedupes on the key.
    """
