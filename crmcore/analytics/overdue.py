"""Overdue customers: not back within their own average purchase interval plus a grace."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text

from crmcore.analytics._sql import days_between, require_unrestricted
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
    (value: days overdue, rounded down) replacing the previous run's."""
    if grace_days < 0 or min_purchases < 2:
        raise ValidationError("grace_days must be >= 0 and min_purchases >= 2")
    with crm.transaction(command="analytics overdue"):
        require_unrestricted(crm, "overdue detection")
        end = as_of or crm.now()
        d = crm.db.conn.dialect.name
        span = days_between(d, "MAX(occurred_at)", "MIN(occurred_at)")
        since = days_between(d, ":end", "MAX(occurred_at)")
        query = f"""
            SELECT customer_id, COUNT(*) AS n, MAX(occurred_at) AS last_at,
                   {span} / (COUNT(*) - 1) AS avg_gap, {since} AS since_last
            FROM transactions WHERE occurred_at <= :end
            GROUP BY customer_id
            HAVING COUNT(*) >= :min_n AND {since} > {span} / (COUNT(*) - 1) + :grace"""
        params = {"end": end, "min_n": min_purchases, "grace": grace_days}
        rows = crm.db.all(text(query + " ORDER BY customer_id"), params)
        if store:
            crm.db.execute(text("DELETE FROM customer_labels WHERE name = 'overdue'"))
            crm.db.execute(text(f"""
                INSERT INTO customer_labels (customer_id, name, value, source, as_of)
                SELECT customer_id, 'overdue',
                       CAST(CAST(since_last - avg_gap - :grace AS INTEGER) AS VARCHAR(16)), 'core', :end
                FROM ({query}) AS o"""), params)
        found = [{"customer_id": int(r.customer_id), "purchases": int(r.n),
                  "last_purchase": r.last_at if isinstance(r.last_at, str) else r.last_at.isoformat(),
                  "average_interval_days": round(float(r.avg_gap), 3),
                  "days_since_last": round(float(r.since_last), 3)} for r in rows]
        summary = {"as_of": end.isoformat(), "grace_days": grace_days, "count": len(found)}
        crm.hook.crm_analytics_computed(crm=crm, name="overdue", as_of=end, summary=summary)
        return summary | {"customers": found}
