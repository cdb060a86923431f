"""RFM: recency, frequency and monetary quintile scores per customer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore.analytics import _sql
from crmcore.analytics._columns import ArrayMapping


def quintile(values: Any, bins: int = 5) -> Any:
    """Score 1..bins by rank: ``1 + floor(bins * (rank - 1) / n)`` where rank is the
    1-based position in ascending order with ties sharing the lowest rank (SQL
    ``RANK()``): equal values always get equal scores, larger is better."""
    import numpy as np

    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.empty(n, dtype=bool)  # where a run of equal values begins
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    below_sorted = np.maximum.accumulate(np.where(starts, np.arange(n), 0))  # rank - 1
    below = np.empty(n, dtype=np.int64)
    below[order] = below_sorted
    return 1 + (bins * below) // n


def rfm(crm: Any, *, as_of: dt.datetime | None = None, store: bool = True) -> dict[str, Any]:
    """Score every customer with a purchase up to ``as_of`` (default now):

    - R: how recent the last purchase is (more recent scores higher),
    - F: number of purchases, M: total spend (more scores higher),

    each 1..5 by quintile of rank (ties share a score). Label ``rfm`` holds
    e.g. ``"545"``. Returns the score distribution and per customer
    ``{"r", "f", "m", "recency_days", "frequency", "monetary_cents"}`` (a
    read-only mapping by customer id that builds each entry when asked).
    """
    import numpy as np

    with _sql.run_transaction(crm, "rfm"):
        _sql.require_unrestricted(crm, "RFM scoring")
        end = as_of or crm.now()
        ids, last, n, spend = _sql.features(crm, end, ("last", "count", "spend"))
        r, f, m = quintile(last), quintile(n), quintile(spend)
        recency = np.round((_sql.to_micros(end) - last) / _sql.DAY_US, 3)
        codes = r * 100 + f * 10 + m  # the label is its decimal text, e.g. "545"
        dist = {
            k: {str(s): int((v == s).sum()) for s in range(1, 6)}
            for k, v in (("r", r), ("f", f), ("m", m))
        }
        summary: dict[str, Any] = {
            "as_of": end.isoformat(),
            "customers_scored": len(ids),
            "scores": dist,
        }
        if store:
            summary["labels"] = _sql.store_label_arrays(crm, "rfm", ids, codes, end)
            _sql.record_run(crm, "rfm", end, summary)
        crm.hook.crm_analytics_computed(crm=crm, name="rfm", as_of=end, summary=summary)
        per = ArrayMapping(
            ids, r=r, f=f, m=m, recency_days=recency, frequency=n, monetary_cents=spend
        )
        return summary | {"customers": per}
