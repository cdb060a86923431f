"""Ticket hooks: a complaint or service request opened or moved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.entities import Ticket, TicketMove
    from crmcore.service import CRM


@hookspec
def crm_ticket_opened(crm: CRM, ticket: Ticket) -> None:
    """A ticket was opened in its workflow's first state. Inside the transaction;
    a plugin may set deadlines or route it (``crm.move_ticket`` / ``crm.update_ticket``)."""


@hookspec
def crm_ticket_moved(crm: CRM, ticket: Ticket, move: TicketMove) -> None:
    """A ticket moved from ``move.from_state`` to ``move.to_state`` (``ticket`` is
    after the move). Inside the transaction; raise to refuse the move."""
