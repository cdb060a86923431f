"""ABC classification on hand-computed cases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from crmcore.analytics import abc

AS_OF = dt.datetime(2026, 1, 1)


def _base(crm, spends):
    ids = []
    for i, cents in enumerate(spends):
        c = crm.add_customer(f"K{i}", external_id=f"K{i}")
        ids.append(c.id)
        for part in cents:
            crm.record_transaction(c.id, part, occurred_at=AS_OF - dt.timedelta(days=10 + i))
    return ids


def test_classes_by_cumulative_share(crm):
    # spend 50, 30, 15, 5 of 100: spend ranked above is 0, 50, 80, 95
    # -> A (0 < 70), A (50 < 70), B (80 < 90), C (95 >= 90)
    a1, a2, b, c = _base(crm, [[5000], [2000, 1000], [1500], [500]])
    idle = crm.add_customer("idle").id
    old = crm.add_customer("old").id
    crm.record_transaction(old, 99_999, occurred_at=AS_OF - dt.timedelta(days=400))
    r = abc(crm, as_of=AS_OF)
    assert r["customers"] == {a1: "A", a2: "A", b: "B", c: "C", idle: "C", old: "C"}
    assert r["classes"]["A"] == {"customers": 2, "spend_cents": 8000, "spend_share": 0.8}
    assert r["classes"]["B"] == {"customers": 1, "spend_cents": 1500, "spend_share": 0.15}
    assert r["classes"]["C"] == {"customers": 3, "spend_cents": 500, "spend_share": 0.05}
    assert crm.labels(a1) == {"abc": "A"} and crm.labels(idle) == {"abc": "C"}
    again = abc(crm, as_of=AS_OF)
    assert again["labels"]["changed"] == 0 and again["customers"] == r["customers"]


def test_window_edges_and_history_straddling_the_window(crm):
    x = crm.add_customer("x").id
    y = crm.add_customer("y").id
    start = AS_OF - dt.timedelta(days=365)
    crm.record_transaction(x, 10_000, occurred_at=start)  # on the start edge: outside
    crm.record_transaction(x, 100, occurred_at=start + dt.timedelta(seconds=1))
    crm.record_transaction(y, 300, occurred_at=AS_OF)  # on the end edge: inside
    crm.record_transaction(y, 50_000, occurred_at=AS_OF + dt.timedelta(days=1))  # after as_of
    r = abc(crm, as_of=AS_OF)
    assert r["customers"] == {x: "B", y: "A"}  # 300 then 100: 0 < 70 %, 75 % < 90 %
    assert r["classes"]["A"]["spend_cents"] == 300 and r["classes"]["B"]["spend_cents"] == 100


def test_cutoffs_ties_and_no_store(crm):
    ids = _base(crm, [[100], [100], [100], [100]])
    r = abc(crm, as_of=AS_OF, cutoffs=(0.5, 0.25), store=False)
    assert [r["customers"][i] for i in ids] == ["A", "A", "B", "C"]  # ties ranked by id
    assert crm.labels(ids[0]) == {}


def test_cli(crm, crm_cli):
    _base(crm, [[100]])
    res = crm_cli("analytics", "abc", "--as-of", "2026-01-01", "--json")
    assert res.exit_code == 0, res
    assert res.json()["classes"]["A"]["customers"] == 1
