"""Analytics hooks: react to a finished analytics run."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.service import CRM


@hookspec
def crm_analytics_computed(
    crm: CRM, name: str, as_of: dt.datetime, summary: dict[str, Any]
) -> None:
    """An analytics run stored its results.

    :param crm: the CRM bound to the run's transaction.
    :param name: ``"abc"``, ``"rfm"``, ``"overdue"`` or ``"clv"``.
    :param as_of: the time the run was computed as of.
    :param summary: the run's JSON-able summary.

    Fires inside the run's transaction; per-customer results are in
    ``customer_labels`` (e.g. label ``abc``). React set-based, e.g. create
    follow-ups per class. Raising rolls the run back. A run nobody reacts to
    writes only what a re-run recomputes and commits without a disk sync;
    with an implementation of this hook enabled, runs commit as durably as
    any other operation, so what the hook writes is kept.
    """
