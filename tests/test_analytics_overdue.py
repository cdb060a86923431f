"""Overdue customers on a hand-computed case."""

from __future__ import annotations

import datetime as dt

from crmcore.analytics import overdue

D0 = dt.datetime(2025, 6, 1, 12)


def _buys(crm, name, days):
    c = crm.customers.add(name)
    for d in days:
        crm.records.add_transaction(c.id, 100, occurred_at=D0 + dt.timedelta(days=d))
    return c.id


def test_overdue_by_own_interval_plus_grace(crm):
    late = _buys(crm, "late", [0, 10, 20])  # every 10 days, last day 20
    fresh = _buys(crm, "fresh", [0, 10, 22])  # every 11 days, last day 22
    two = _buys(crm, "two", [0, 1])  # only 2 purchases: never overdue
    as_of = D0 + dt.timedelta(days=34)  # late: 14 > 10 + 3; fresh: 12 <= 11 + 3
    r = overdue(crm, as_of=as_of, grace_days=3)
    assert [c["customer_id"] for c in r["customers"]] == [late]
    got = r["customers"][0]
    assert (
        got["purchases"],
        got["average_interval_days"],
        got["days_since_last"],
        got["days_overdue"],
    ) == (3, 10.0, 14.0, 1)
    assert got["last_purchase"] == "2025-06-21T12:00:00"
    assert (
        crm.customers.labels(late) == {"overdue": "1"} and crm.customers.labels(fresh) == {} and crm.customers.labels(two) == {}
    )
    # as of later, fresh is overdue too; as of earlier (before late's 3rd purchase) nobody is
    assert {
        c["customer_id"] for c in overdue(crm, as_of=D0 + dt.timedelta(days=60))["customers"]
    } == {late, fresh}
    assert overdue(crm, as_of=D0 + dt.timedelta(days=19))["count"] == 0
    assert crm.customers.labels(late) == {}


def test_cli(crm, crm_cli):
    _buys(crm, "late", [0, 10, 20])
    res = crm_cli("analytics", "overdue", "--as-of", "2025-07-05T12:00", "--json")
    assert res.exit_code == 0 and res.json()["count"] == 1
