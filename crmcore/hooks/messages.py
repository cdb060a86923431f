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

    Fires inside the transaction that stores the message. Return a short
    description of what you did with it (``"verified visit 12"``) or ``None`` if
    it is not for you. All plugins are asked; every non-None answer is stored.
    """


@hookspec
def crm_after_commit(event: Message, payload: dict[str, Any]) -> None:
    """An after-commit event (queued with ``crm.emit_after_commit``) is delivered.

    Runs from ``crm outbox send`` *outside* any transaction, after the change
    committed — the place to notify another system. It may be retried:
    ``event.idempotency_key`` is stable across retries, so a retry never sends
    twice if the receiver dedupes on it. Raise to have it retried later.
    """
