"""Ticket hooks: a complaint or service request opened or moved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.entities import Ticket, TicketMove
    from crmcore.service import CRM


@hookspec
def crm_ticket_opened(crm: CRM, ticket: Ticket) -> None:
    """A ticket was opened in its workflow's first state.

    :param crm: the CRM bound to the open transaction.
    :param ticket: the new ticket.

    Fires inside the transaction; a plugin may set deadlines or route it
    (``crm.tickets.update``). Raising rolls the opening back.
    """


@hookspec
def crm_ticket_moved(crm: CRM, ticket: Ticket, move: TicketMove) -> None:
    """A ticket moved to another state.

    :param crm: the CRM bound to the open transaction.
    :param ticket: the ticket after the move.
    :param move: the :class:`TicketMove` (from, to, owner, due time, note).

    Fires inside the transaction; raise to refuse the move.
    """
