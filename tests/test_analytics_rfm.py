"""RFM quintile scores on a hand-computed case."""

from __future__ import annotations

import datetime as dt

from crmcore.analytics import rfm
from crmcore.analytics.rfm import quintile

AS_OF = dt.datetime(2026, 1, 1)


def test_quintile_by_rank_ties_share_a_score():
    assert quintile([10, 20, 30, 40, 50]).tolist() == [1, 2, 3, 4, 5]
    # ranks 1,1,3,4,5,6,7,8,9,10 of 10 -> 1 + floor(5 * (rank - 1) / 10)
    assert quintile([1, 1, 2, 3, 4, 5, 6, 7, 8, 9]).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile([7, 7, 7]).tolist() == [1, 1, 1]


def test_rfm_scores_and_labels(crm):
    ids = []
    for i in range(5):  # customer i: i + 1 purchases of (i + 1) * 100, last one 50 - 10 i days ago
        c = crm.customers.add(f"R{i}")
        ids.append(c.id)
        for k in range(i + 1):
            crm.records.add_transaction(
                c.id, (i + 1) * 100, occurred_at=AS_OF - dt.timedelta(days=50 - 10 * i + k)
            )
    crm.customers.add("never bought")
    r = rfm(crm, as_of=AS_OF)
    assert r["customers_scored"] == 5
    assert [r["customers"][c]["r"] for c in ids] == [1, 2, 3, 4, 5]
    assert [r["customers"][c]["f"] for c in ids] == [1, 2, 3, 4, 5]
    assert [r["customers"][c]["m"] for c in ids] == [1, 2, 3, 4, 5]
    first = r["customers"][ids[0]]
    assert (first["recency_days"], first["frequency"], first["monetary_cents"]) == (50.0, 1, 100)
    assert crm.customers.labels(ids[4]) == {"rfm": "555"} and crm.customers.labels(ids[0]) == {"rfm": "111"}
    # as of an earlier date: only what had happened by then counts (R4's purchases are later)
    early = rfm(crm, as_of=AS_OF - dt.timedelta(days=15))
    assert ids[4] not in early["customers"] and early["customers_scored"] == 4
    assert early["customers"][ids[3]]["frequency"] == 4
    assert crm.customers.labels(ids[4]) == {}
