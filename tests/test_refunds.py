"""Refunds are explicit (kind "refund", a negative amount), reduce spend and are
no purchase: frequency and recency stay, in the stats and the analytics."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crmcore.analytics import abc, overdue, rfm
from crmcore.errors import ValidationError
from crmcore.importer import ImportFailed, import_transactions
from crmcore.schema import customer_stats, customer_window_spend, transactions
from crmcore.storage._driver import connection

D0 = dt.datetime(2025, 6, 1, 12)


def _stats(crm, cid):
    with crm.transaction(write=False):
        row = connection(crm.db).execute(
            select(customer_stats).where(customer_stats.c.customer_id == cid)
        ).first()
    return row.first_at, row.last_at, row.tx_count, row.spend_cents


def _count(crm):
    with crm.transaction(write=False):
        return connection(crm.db).execute(select(func.count()).select_from(transactions)).scalar()


def test_a_negative_amount_must_be_a_refund(crm):
    c = crm.customers.add("a").id
    crm.records.add_transaction(c, 1000, occurred_at=D0)
    with pytest.raises(ValidationError, match="negative: a refund must be recorded as kind"):
        crm.records.add_transaction(c, -300, occurred_at=D0 + dt.timedelta(days=1))
    with pytest.raises(ValidationError, match="a refund's amount is negative"):
        crm.records.add_transaction(c, 300, kind="refund")
    with pytest.raises(ValidationError, match="transaction kind 'gift'"):
        crm.records.add_transaction(c, 300, kind="gift")
    assert _count(crm) == 1


def test_a_refund_needs_a_purchase(crm):
    c = crm.customers.add("never bought").id
    with pytest.raises(ValidationError, match="no purchase to refund"):
        crm.records.add_transaction(c, -300, kind="refund")
    assert _count(crm) == 0


def test_a_refund_reduces_spend_but_is_no_visit(crm):
    c = crm.customers.add("a").id
    crm.records.add_transaction(c, 1000, occurred_at=D0)
    crm.records.add_transaction(c, 2000, occurred_at=D0 + dt.timedelta(days=10))
    t = crm.records.add_transaction(c, -500, occurred_at=D0 + dt.timedelta(days=20), kind="refund")
    assert t.kind == "refund" and crm.records.transactions(c)[0].kind == "refund"
    expected = (D0, D0 + dt.timedelta(days=10), 2, 2500)
    assert _stats(crm, c) == expected
    with crm.transaction():
        crm.customers.refresh_stats()  # the rebuild from the transactions agrees
    assert _stats(crm, c) == expected
    entries = [e.summary for e in crm.records.timeline(c) if e.kind == "transaction"]
    assert entries[-1] == "refund -5.00"


def test_the_import_takes_refunds_only_when_marked(crm, tmp_path):
    crm.customers.add("a", external_id="C1")
    crm.customers.add("b", external_id="C2")
    header = "customer_external_id,occurred_at,amount,external_id,kind\n"
    unmarked = tmp_path / "unmarked.csv"
    unmarked.write_text(header + "C1,2025-06-01,10.00,T1,\nC1,2025-06-05,-2.00,T2,\n")
    with pytest.raises(ImportFailed, match="line 3: amount -2.00 is negative"):
        import_transactions(crm, str(unmarked))
    assert _count(crm) == 0
    marked = tmp_path / "marked.csv"
    marked.write_text(
        header
        + "C1,2025-06-01,10.00,T1,purchase\n"
        + "C1,2025-06-11,20.00,T2,\n"
        + "C1,2025-06-21,-5.00,T3,refund\n"
        + "C2,2025-06-02,-1.00,T4,refund\n"
        + "C2,2025-06-03,3.00,T5,REFUND\n"
    )
    s = import_transactions(crm, str(marked), skip_invalid=True)
    assert s["imported"] == 3
    assert sorted((e["line"], e["message"]) for e in s["errors"]) == [
        (5, "refund: the customer has no purchase to refund"),
        (6, "refund amount 3.00: a refund's amount is negative (e.g. -12.34)"),
    ]
    cid = crm.customers.get("C1").id
    assert _stats(crm, cid) == (dt.datetime(2025, 6, 1), dt.datetime(2025, 6, 11), 2, 2500)


def test_a_refund_in_a_later_import_batch_keeps_the_purchase_times(crm, tmp_path):
    crm.customers.add("a", external_id="C1")
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_external_id,occurred_at,amount,kind\n"
        "C1,2025-06-01,10.00,\nC1,2025-06-11,20.00,\nC1,2025-06-30,-5.00,refund\n"
    )
    import_transactions(crm, str(path), batch_size=2)  # the refund alone in batch 2
    cid = crm.customers.get("C1").id
    assert _stats(crm, cid) == (dt.datetime(2025, 6, 1), dt.datetime(2025, 6, 11), 2, 2500)


def _buys(crm, name, days, amount=1000):
    c = crm.customers.add(name).id
    for d in days:
        crm.records.add_transaction(c, amount, occurred_at=D0 + dt.timedelta(days=d))
    return c


def test_the_analytics_see_a_refund_as_less_spend_not_as_a_visit(crm):
    refunded = _buys(crm, "refunded", [0, 10, 20])
    plain = _buys(crm, "plain", [0, 10, 20])
    crm.records.add_transaction(refunded, -2500, occurred_at=D0 + dt.timedelta(days=33), kind="refund")
    as_of = D0 + dt.timedelta(days=34)
    r = rfm(crm, as_of=as_of)["customers"]
    assert (r[refunded]["frequency"], r[refunded]["recency_days"]) == (3, 14.0)
    assert (r[plain]["frequency"], r[plain]["recency_days"]) == (3, 14.0)
    assert (r[refunded]["monetary_cents"], r[plain]["monetary_cents"]) == (500, 3000)
    # recency unchanged: the refund on day 33 does not make the customer "back"
    late = {c["customer_id"] for c in overdue(crm, as_of=as_of, grace_days=3)["customers"]}
    assert late == {refunded, plain}
    # as of a date before the refund's own purchases end, it is recomputed the same way
    early = rfm(crm, as_of=D0 + dt.timedelta(days=15))["customers"]
    assert early[refunded]["frequency"] == 2 and early[refunded]["monetary_cents"] == 2000
    # as of after the last purchase but before the refund: the refund has not happened yet
    before = rfm(crm, as_of=D0 + dt.timedelta(days=25))["customers"]
    assert before[refunded]["monetary_cents"] == 3000 and before[refunded]["frequency"] == 3
    classes = abc(crm, as_of=as_of, window_days=365)["customers"]
    assert classes[plain] == "A" and classes[refunded] != "A"
    with crm.transaction(write=False):
        spend = dict(
            connection(crm.db).execute(
                select(customer_window_spend.c.customer_id, customer_window_spend.c.spend_cents)
            ).all()
        )
    assert spend == {plain: 3000, refunded: 500}
