"""The analytics' label store: only changes written, any stored value handled."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from crmcore.analytics import _sql

AS_OF = dt.datetime(2026, 1, 1)


@pytest.fixture
def three(crm):
    return [crm.customers.add(f"L{i}").id for i in range(3)]


def _store(crm, name, ids, values, **kw):
    with crm.transaction():
        return _sql.store_label_arrays(crm, name, np.array(ids), values, AS_OF, **kw)


@pytest.mark.parametrize(
    ("values", "kw", "stored"),
    [
        (np.array([0, 2, 1]), {"categories": ("A", "B", "C")}, ["A", "C", "B"]),
        (np.array([545, -3, 0]), {}, ["545", "-3", "0"]),
        (np.array(["x", "y,z", "ü"], dtype=object), {}, ["x", "y,z", "ü"]),
    ],
)
def test_values_of_each_form_are_written_once(crm, three, values, kw, stored):
    first = _store(crm, "k", three, values, **kw)
    assert first == {"labels": 3, "changed": 3, "removed": 0}
    assert [crm.customers.labels(c)["k"] for c in three] == stored
    assert _store(crm, "k", three, values, **kw)["changed"] == 0


def test_foreign_values_are_replaced_not_misread(crm, three):
    """A value this analysis would not write (several characters for a
    one-letter category, text where a number belongs) is rewritten, whatever
    the fast parse makes of it."""
    for cid, cat, num in ((three[0], "AB", "5x"), (three[1], "A", "7")):
        crm.customers.set_label(cid, "cat", cat)
        crm.customers.set_label(cid, "num", num)
    cats = _store(crm, "cat", three[:2], np.array([0, 0]), categories=("A", "B", "C"))
    nums = _store(crm, "num", three[:2], np.array([5, 7]))
    assert cats["changed"] == 1 and nums["changed"] == 1
    assert crm.customers.labels(three[0])["cat"] == "A" and crm.customers.labels(three[0])["num"] == "5"


def test_labels_no_longer_given_are_removed(crm, three):
    _store(crm, "k", three, np.array([1, 2, 3]))
    assert _store(crm, "k", three[:1], np.array([1])) == {"labels": 1, "changed": 0, "removed": 2}
    assert "k" not in crm.customers.labels(three[2])


def test_timestamps_parse_in_every_stored_width():
    from crmcore.analytics._columns import iso_micros

    second = 1_000_000
    base = 1_735_689_600 * second  # 2025-01-01 00:00 UTC-naive
    assert iso_micros("2025-01-01 00:00:00.000001,2025-01-01 00:00:01.000000", 2).tolist() == [
        base + 1,
        base + second,
    ]
    assert iso_micros("2025-01-01 00:00:00,2025-01-01 00:00:01", 2).tolist() == [
        base,
        base + second,
    ]
    mixed = "2025-01-01 00:00:00,2025-01-01 00:00:01.5"  # as PostgreSQL prints them
    assert iso_micros(mixed, 2).tolist() == [base, base + second + second // 2]


def test_comparison_by_dense_table_and_by_sorting_agree():
    """Dense customer ids use a lookup table, sparse ones a sort: same answer."""
    from crmcore.analytics._sql import _compare

    rng = np.random.default_rng(3)
    for scale in (1, 10**9):  # dense, then far too sparse for a table
        ids = np.unique(rng.integers(1, 500, 200)) * scale
        old_ids = np.unique(rng.integers(1, 500, 200)) * scale
        values = rng.integers(0, 3, len(ids))
        old_vals = rng.integers(0, 3, len(old_ids))
        same, gone = _compare(ids, values, old_ids, old_vals)
        old = dict(zip(old_ids.tolist(), old_vals.tolist(), strict=True))
        want = [old.get(i) == v for i, v in zip(ids.tolist(), values.tolist(), strict=True)]
        assert same.tolist() == want
        assert sorted(gone.tolist()) == sorted(set(old_ids.tolist()) - set(ids.tolist()))


def _live(crm):
    with crm.transaction():
        return _sql.live_customer_ids(crm).tolist()


def test_live_customer_ids_without_and_with_gaps(crm):
    """Merged and forgotten customers are left out whether ids run without gaps
    (built from the range and the gone ids) or not (read); none at all is an
    empty array."""
    assert _live(crm) == []
    ids = [crm.customers.add(f"G{i}", phone=f"+86138000000{i:02d}").id for i in range(6)]
    assert _live(crm) == ids
    crm.customers.merge(ids[1], ids[4])
    crm.customers.forget(ids[2])
    gone = {ids[4], ids[2]}
    assert _live(crm) == [i for i in ids if i not in gone]
    far = ids[-1] + 5
    with crm.engine.begin() as conn:  # a gap: a row written outside the service
        conn.exec_driver_sql(
            "INSERT INTO customers (id, name, kind, stage, attributes, consent_sms, "
            f"consent_email, created_at, updated_at) VALUES ({far}, 'Far', 'person', 'lead', "
            "'{}', true, true, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    assert _live(crm) == [i for i in ids if i not in gone] + [far]


def test_a_forgotten_customer_gets_no_analytics_label(crm):
    """Their purchases stay (anonymous) in the totals, but nobody is classed, found
    overdue or scored for a person who was erased."""
    from crmcore import analytics

    at = dt.datetime(2025, 6, 1, 10, 0)
    kept, erased = (crm.customers.add(n, phone=f"+8613900000{k:03d}") for k, n in enumerate("AB"))
    for c in (kept, erased):
        for day in range(4):
            crm.records.add_transaction(c.id, 100_00, occurred_at=at + dt.timedelta(days=7 * day))
    crm.customers.forget(erased.id)
    as_of = at + dt.timedelta(days=120)
    abc = analytics.abc(crm, as_of=as_of)
    assert set(abc["customers"]) == {kept.id}
    overdue = analytics.overdue(crm, as_of=as_of)
    assert [r["customer_id"] for r in overdue["customers"]] == [kept.id]
    rfm = analytics.rfm(crm, as_of=as_of)
    assert set(rfm["customers"]) == {kept.id}
    assert crm.customers.labels(erased.id) == {}
