"""Analytics hooks: react to a finished analytics run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hooks.markers import hookspec

if TYPE_CHECKING:
    from crmcore.service import CRM


@hookspec
def crm_analytics_computed(crm: CRM, name: str, as_of: Any, summary: dict[str, Any]) -> None:
    """An analytics run (``name`` = "abc", "rfm", "overdue", "clv") stored its
    results as of ``as_of``. Inside the run's transaction; labels are in
    ``customer_labels`` (e.g. label "abc"). React set-based (e.g. create
    follow-ups per class)."""
