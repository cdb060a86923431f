"""Lifecycle monitoring and follow-up hooks: stage moves made in bulk by the
lifecycle rules, and the follow-up playbooks a plugin contributes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.followups import Playbook
    from crmcore.lifecycle_rules import StageChangeBatch
    from crmcore.service import CRM


@hookspec
def crm_stage_changed_batch(crm: CRM, batch: StageChangeBatch) -> None:
    """Many customers moved stage at once (one lifecycle rule of ``core.lifecycle``).

    :param crm: the CRM bound to the job's transaction.
    :param batch: the rule, the move (``from_stages`` -> ``to_stage``), the id range
        of the ``crmcore.schema.stage_changes`` rows written and the customers moved
        (:class:`~crmcore.lifecycle_rules.StageChangeBatch`); react in SQL by
        selecting ``stage_changes`` with ``id`` in the range.

    Fires inside the job's transaction, once per rule that moved anyone; raising
    rolls the whole run back. A plugin that implements ``crm_stage_changed`` but
    not this hook is called with ``crm_stage_changed`` once per moved customer
    instead, so a reaction written for single moves still happens.
    """


@hookspec
def crm_playbooks() -> Iterable[Playbook]:
    """Return the follow-up playbooks (:class:`~crmcore.followups.Playbook`) the plugin
    adds: a named sequence of steps, each an action on a day after the start.

    Called once at start-up. ``crm playbook start NAME CUSTOMER`` (or entering a
    stage named in ``[crm.followups] start_on_stage``) creates one reminder per
    step for the customer's owner; a response of the customer cancels the
    steps still open. A name also defined in ``[crm.followups.playbooks]`` is an
    error naming both.
    """
