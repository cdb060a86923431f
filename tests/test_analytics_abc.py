"""ABC classification on hand-computed cases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from crmcore.analytics import abc

AS_OF = dt.datetime(2026, 1, 1)


def _base(crm, spends):
    ids = []
    for i, cents in enumerate(spends):
        c = crm.customers.add(f"K{i}", external_id=f"K{i}")
        ids.append(c.id)
        for part in cents:
            crm.records.add_transaction(c.id, part, occurred_at=AS_OF - dt.timedelta(days=10 + i))
    return ids


def test_classes_by_cumulative_share(crm):
    # spend 50, 30, 15, 5 of 100: spend ranked above is 0, 50, 80, 95
    # -> A (0 < 70), A (50 < 70), B (80 < 90), C (95 >= 90)
    a1, a2, b, c = _base(crm, [[5000], [2000, 1000], [1500], [500]])
    idle = crm.customers.add("idle").id
    old = crm.customers.add("old").id
    crm.records.add_transaction(old, 99_999, occurred_at=AS_OF - dt.timedelta(days=400))
    r = abc(crm, as_of=AS_OF)
    assert r["customers"] == {a1: "A", a2: "A", b: "B", c: "C", idle: "C", old: "C"}
    assert r["classes"]["A"] == {"customers": 2, "spend_cents": 8000, "spend_share": 0.8}
    assert r["classes"]["B"] == {"customers": 1, "spend_cents": 1500, "spend_share": 0.15}
    assert r["classes"]["C"] == {"customers": 3, "spend_cents": 500, "spend_share": 0.05}
    assert crm.customers.labels(a1) == {"abc": "A"} and crm.customers.labels(idle) == {"abc": "C"}
    again = abc(crm, as_of=AS_OF)
    assert again["labels"]["changed"] == 0 and again["customers"] == r["customers"]


def test_window_edges_and_history_straddling_the_window(crm):
    x = crm.customers.add("x").id
    y = crm.customers.add("y").id
    start = AS_OF - dt.timedelta(days=365)
    crm.records.add_transaction(x, 10_000, occurred_at=start)  # on the start edge: outside
    crm.records.add_transaction(x, 100, occurred_at=start + dt.timedelta(seconds=1))
    crm.records.add_transaction(y, 300, occurred_at=AS_OF)  # on the end edge: inside
    crm.records.add_transaction(y, 50_000, occurred_at=AS_OF + dt.timedelta(days=1))  # after as_of
    r = abc(crm, as_of=AS_OF)
    assert r["customers"] == {x: "B", y: "A"}  # 300 then 100: 0 < 70 %, 75 % < 90 %
    assert r["classes"]["A"]["spend_cents"] == 300 and r["classes"]["B"]["spend_cents"] == 100


def test_cutoffs_ties_and_no_store(crm):
    ids = _base(crm, [[100], [100], [100], [100]])
    r = abc(crm, as_of=AS_OF, cutoffs=(0.5, 0.25), store=False)
    assert [r["customers"][i] for i in ids] == ["A", "A", "B", "C"]  # ties ranked by id
    assert crm.customers.labels(ids[0]) == {}


def test_cli(crm, crm_cli):
    _base(crm, [[100]])
    res = crm_cli("analytics", "abc", "--as-of", "2026-01-01", "--json")
    assert res.exit_code == 0, res
    assert res.json()["classes"]["A"]["customers"] == 1
    per = res.json()["customers"]
    assert list(per.values()) == ["A"]


def test_full_recomputes_what_a_write_around_the_service_changed(crm, crm_cli):
    """A direct SQL edit that keeps a customer's count and total (here: moving a
    purchase out of the window) is not seen by the kept window spend; --full is."""
    a, b = _base(crm, [[1000], [3000]])
    assert abc(crm, as_of=AS_OF)["customers"][b] == "A"
    with crm.engine.begin() as conn:
        conn.execute(
            text("UPDATE transactions SET occurred_at = :at WHERE customer_id = :cid"),
            {"at": AS_OF - dt.timedelta(days=900), "cid": b},
        )
    assert abc(crm, as_of=AS_OF)["customers"][b] == "A"  # kept figure, as documented
    res = crm_cli("analytics", "abc", "--as-of", "2026-01-01", "--full", "--json")
    assert res.exit_code == 0, res
    assert res.json()["customers"] == {str(a): "A", str(b): "C"}


def _full_spend(crm, ids, start, end):
    """The window spend the slow way: every transaction, in Python."""
    spend: dict[int, int] = {}
    for cid in ids:
        for t in crm.records.transactions(cid):
            if start < t.occurred_at <= end:
                spend[cid] = spend.get(cid, 0) + t.amount_cents
    return {k: v for k, v in spend.items() if v > 0}


def test_kept_window_spend_follows_writes_moved_windows_and_merges(crm):
    """The incremental window (kept spend, shifted edges, recomputed changed
    customers) always equals a recomputation from every transaction."""
    import random

    from crmcore.analytics.abc import window_spend

    rng = random.Random(7)
    people = [crm.customers.add(f"P{i}").id for i in range(12)]
    live = list(people)
    day = dt.timedelta(days=1)

    def buy(n):
        for _ in range(n):
            crm.records.add_transaction(
                rng.choice(people),
                rng.randrange(100, 5000),
                occurred_at=AS_OF - rng.randrange(0, 60) * day + rng.randrange(86400) * day / 86400,
            )

    def check(start, end):
        with crm.transaction():
            ids, spend = window_spend(crm, start, end)
        got = dict(zip(ids.tolist(), spend.tolist(), strict=True))
        assert got == _full_spend(crm, live, start, end)

    buy(80)
    end = AS_OF - 20 * day
    check(end - 15 * day, end)  # first run: everyone computed
    check(end - 15 * day, end)  # unchanged: kept figures only
    buy(10)  # some customers change, inside and outside the window
    check(end - 15 * day, end)
    for step in (1, 3, -2, 0.5, 7):  # the window moves forwards and back, by parts of days
        end += step * day
        check(end - 15 * day, end)
        buy(3)
    check(end - 30 * day, end)  # another length, overlapping
    check(end - 200 * day, end - 150 * day)  # no overlap: everyone again
    crm.customers.merge(people[0], people[1])
    live.remove(people[1])
    check(end - 30 * day, end)
    r = abc(crm, as_of=end, window_days=30)
    assert people[1] not in r["customers"]  # merged away: no class
    assert abc(crm, as_of=end, window_days=30, full=True)["customers"] == r["customers"]


def test_a_purchase_that_entered_at_the_end_leaves_at_the_start(crm):
    """A purchase the end edge brought into the kept window must drop out when
    the start edge passes it (its first purchase in the window is kept)."""
    from crmcore.analytics.abc import window_spend

    day = dt.timedelta(days=1)
    x = crm.customers.add("x").id
    y = crm.customers.add("y").id
    end0 = AS_OF - 30 * day
    crm.records.add_transaction(x, 700, occurred_at=end0 + 2 * day)
    crm.records.add_transaction(y, 100, occurred_at=end0 - 5 * day)
    crm.records.add_transaction(y, 100, occurred_at=end0 + 20 * day)

    def spend(end):
        with crm.transaction():
            ids, cents = window_spend(crm, end - 10 * day, end)
        return dict(zip(ids.tolist(), cents.tolist(), strict=True))

    assert spend(end0) == {y: 100}
    assert spend(end0 + 5 * day) == {x: 700}  # y's first purchase is on the (open) start
    assert spend(end0 + 13 * day) == {}  # x's purchase and y's first one have left
    assert spend(end0 + 25 * day) == {y: 100}


def _classify_by_ranking(ids, spend, a_share, b_share):
    """The definition, spelled out: rank by spend (ties by id), class by the
    spend ranked above each customer."""
    order = sorted(range(len(ids)), key=lambda i: (-int(spend[i]), int(ids[i])))
    total, above, out = int(sum(spend)), 0, [2] * len(ids)
    for i in order:
        share = above * 10_000
        out[i] = (
            0
            if share < total * round(a_share * 10_000)
            else (1 if share < total * round((a_share + b_share) * 10_000) else 2)
        )
        above += int(spend[i])
    return out


@given(
    spend=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    cuts=st.sampled_from([(0.7, 0.2), (0.5, 0.25), (0.1, 0.0), (0.34, 0.33), (0.99, 0.01)]),
    shuffle=st.randoms(use_true_random=False),
)
def test_classify_equals_the_ranking_definition(spend, cuts, shuffle):
    """Few distinct values: boundaries fall inside groups of ties, ids unsorted."""
    import numpy as np

    from crmcore.analytics.abc import classify

    ids = list(range(1, len(spend) + 1))
    shuffle.shuffle(ids)
    got = classify(np.array(ids), np.array(spend, dtype=np.int64), *cuts)
    assert got.tolist() == _classify_by_ranking(ids, spend, *cuts)


def test_recomputing_everyone_keeps_the_edge_indexes(crm):
    """A full recomputation rebuilds the kept table's indexes after its rows."""
    import sqlalchemy as sa

    _base(crm, [[100], [200]])
    for full in (False, True):
        abc(crm, as_of=AS_OF, full=full)
        names = {i["name"] for i in sa.inspect(crm.engine).get_indexes("customer_window_spend")}
        assert names == {
            "ix_customer_window_spend_first_in_window",
            "ix_customer_window_spend_next_after_window",
        }
