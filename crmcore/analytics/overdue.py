"""Overdue customers: not back within their own average purchase interval plus a grace."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore.analytics import _sql
from crmcore.analytics._columns import ArrayRows
from crmcore.errors import ValidationError


def overdue(
    crm: Any,
    *,
    as_of: dt.datetime | None = None,
    grace_days: float = 3,
    min_purchases: int = 3,
    store: bool = True,
) -> dict[str, Any]:
    """Customers with at least ``min_purchases`` purchases (up to ``as_of``) whose
    time since the last one exceeds their average inter-purchase interval
    ``(last - first) / (n - 1)`` plus ``grace_days``. Stored as label ``overdue``
    (value: days overdue, rounded down) replacing the previous run's.

    Read from the per-customer aggregates (``customer_stats``), not by scanning
    every transaction: the average interval needs only first, last and count.
    """
    import numpy as np

    if grace_days < 0 or min_purchases < 2:
        raise ValidationError("grace_days must be >= 0 and min_purchases >= 2")
    with _sql.run_transaction(crm, "overdue"):
        _sql.require_unrestricted(crm, "overdue detection")
        end = as_of or crm.now()
        ids, first, last, n = _sql.features(
            crm, end, ("first", "last", "count"), min_count=min_purchases
        )
        enough = n >= min_purchases
        ids, first, last, n = ids[enough], first[enough], last[enough], n[enough]
        gap = (last - first) / (n - 1) / _sql.DAY_US
        since = (_sql.to_micros(end) - last) / _sql.DAY_US
        late = since > gap + grace_days
        order = np.argsort(ids[late], kind="stable")
        ids, last, n, gap, since = (x[late][order] for x in (ids, last, n, gap, since))
        days_late = np.floor(since - gap - grace_days).astype(np.int64)
        found = ArrayRows(
            {"last_purchase": _iso_from_micros},
            customer_id=ids,
            purchases=n,
            last_purchase=last,
            average_interval_days=np.round(gap, 3),
            days_since_last=np.round(since, 3),
            days_overdue=days_late,
        )
        summary: dict[str, Any] = {
            "as_of": end.isoformat(),
            "grace_days": grace_days,
            "min_purchases": min_purchases,
            "count": len(found),
        }
        if store:
            summary["labels"] = _sql.store_label_arrays(crm, "overdue", ids, days_late, end)
            _sql.record_run(crm, "overdue", end, summary)
        crm.hook.crm_analytics_computed(crm=crm, name="overdue", as_of=end, summary=summary)
        return summary | {"customers": found}


def _iso_from_micros(us: int) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).isoformat()
