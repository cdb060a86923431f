"""The driver fast paths of the point operations (the till's lookup, record_transaction):
the same results, checks and audit as the SQLAlchemy path that restricted principals take."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crmcore import Conflict, NotFound
from crmcore.db import Prepared
from crmcore.schema import audit_log, customer_stats, transactions


# -- the card -------------------------------------------------------------------------------
def _customer_with_history(crm, **kw):
    c = crm.customers.add("Ann", phone="13800000001", **kw)
    for i in range(3):
        crm.records.add_transaction(c, 1000 + i, occurred_at=dt.datetime(2025, 6, 1 + i, 9, 30))
    crm.customers.set_label(c, "abc", "A")
    return c


def test_the_fast_card_equals_the_checked_card(crm):
    crm.staff.add("rep", "Rep", roles=["rep"])
    c = _customer_with_history(crm, owner="rep")
    fast = crm.records.till_lookup("13800000001")  # outside an operation: on a driver connection
    checked = crm.as_("rep").records.card(phone="13800000001")  # the card, in an operation
    assert fast == checked
    assert fast["stats"] == {
        "customer_id": c.id,
        "first_at": dt.datetime(2025, 6, 1, 9, 30),
        "last_at": dt.datetime(2025, 6, 3, 9, 30),
        "tx_count": 3,
        "spend_cents": 3003,
    }
    assert [t["amount_cents"] for t in fast["transactions"]] == [1002, 1001, 1000]
    assert fast["transactions"][0]["occurred_at"] == dt.datetime(2025, 6, 3, 9, 30)
    assert fast["labels"] == {"abc": "A"}
    assert crm.records.card(c) == fast


def test_the_fast_card_without_purchases_has_no_stats(crm):
    crm.customers.add("Bo", phone="13800000002")
    card = crm.records.till_lookup("13800000002")
    assert card["stats"] is None and card["transactions"] == [] and card["labels"] == {}


def test_a_rep_still_may_not_see_another_reps_card(crm):
    crm.staff.add("a", "A", roles=["rep"])
    crm.staff.add("b", "B", roles=["rep"])
    crm.customers.add("Ann", phone="13800000001", owner="a")
    assert crm.as_("a").records.card(phone="13800000001")["customer"].name == "Ann"
    with pytest.raises(NotFound, match="^no customer with phone '13800000001'$"):
        crm.as_("b").records.card(phone="13800000001")


def test_the_till_lookup_reads_on_the_driver_and_falls_back_when_it_must(crm, monkeypatch):
    """Outside an operation: one read transaction on a pooled driver connection, the
    same card; a merged or unknown phone, or a call inside an open operation, takes
    the card's checked path."""
    from crmcore.access import SYSTEM

    system = crm.as_(SYSTEM)
    c = _customer_with_history(system)
    full = system.records.card(c)
    calls: list[str] = []
    real = type(system.records)._till_checked

    def spy(self, phone, limit):
        calls.append(phone)
        return real(self, phone, limit)

    monkeypatch.setattr(type(system.records), "_till_checked", spy)
    assert system.records.till_lookup("138 0000 0001") == full
    assert calls == []  # the driver read answered
    other = system.customers.add("Ann2", phone="13800000009")
    system.customers.merge(c, other)
    assert system.records.till_lookup("13800000009")["customer"].id == c.id
    assert calls == ["13800000009"]  # merged away: the checked path follows the merge
    with pytest.raises(NotFound):
        system.records.till_lookup("13900000000")
    with system.transaction():
        system.records.add_transaction(c, 5, occurred_at=dt.datetime(2025, 7, 1))
        inside = system.records.till_lookup("13800000001")  # sees its own write
    assert inside["transactions"][0]["amount_cents"] == 5


# -- record_transaction -------------------------------------------------------------------------
def test_fast_and_checked_writes_store_and_audit_the_same(crm):
    crm.staff.add("rep", "Rep", roles=["rep"])
    c = crm.customers.add("Ann", owner="rep")
    at = dt.datetime(2025, 6, 1, 9, 30)
    a = crm.records.add_transaction(c.id, 1234, occurred_at=at, channel="till")  # driver path
    b = crm.as_("rep").records.add_transaction(c.id, 1234, occurred_at=at, channel="till")
    assert (a.customer_id, a.amount_cents, a.occurred_at) == (c.id, 1234, at)
    assert b.id == a.id + 1
    with crm.transaction(write=False):
        rows = crm.db.all(sa.select(transactions).order_by(transactions.c.id))
        audits = crm.db.all(
            sa.select(audit_log)
            .where(audit_log.c.entity == "transactions")
            .order_by(audit_log.c.id)
        )
        stats = crm.db.first(sa.select(customer_stats))
    assert [tuple(r)[1:] for r in rows] == [(None, c.id, at, 1234, "till", "purchase")] * 2
    assert [(r.entity_id, r.action, r.customer_id) for r in audits] == [
        (str(a.id), "insert", c.id),
        (str(b.id), "insert", c.id),
    ]
    assert audits[0].after == audits[1].after
    assert list(audits[0].after) == [
        "customer_id",
        "amount_cents",
        "occurred_at",
        "channel",
        "external_id",
        "kind",
    ]
    assert audits[0].before == audits[1].before
    assert (stats.tx_count, stats.spend_cents) == (2, 2468)


def test_a_write_to_a_merged_customer_lands_on_the_survivor(crm):
    keep = crm.customers.add("Ann")
    other = crm.customers.add("Ann B")
    crm.customers.merge(keep, other)
    t = crm.records.add_transaction(other.id, 500, occurred_at=dt.datetime(2025, 1, 1))
    assert t.customer_id == keep.id


def test_a_write_to_an_unknown_customer_is_not_found(crm):
    with pytest.raises(NotFound, match="customer 4242 not found"):
        crm.records.add_transaction(4242, 500)


def test_a_write_without_write_permission_is_refused_on_the_fast_path_too(crm):
    c = crm.customers.add("Ann")
    crm.staff.add("aud", "Auditor", roles=["auditor"])  # scope all, no write
    with pytest.raises(Exception, match="lacks the 'write' permission"):
        crm.as_("aud").records.add_transaction(c.id, 500)


def test_driver_errors_become_the_usual_crm_errors(crm):
    c = crm.customers.add("Ann")
    crm.records.add_transaction(c, 500, external_id="T1", occurred_at=dt.datetime(2025, 1, 1))
    keys = ("customer_id", "amount_cents", "occurred_at", "channel", "external_id", "kind")
    dup = Prepared(transactions.insert().returning(transactions.c.id), keys=keys)
    values = dict(
        zip(keys, (c.id, 1, dt.datetime(2025, 1, 2), None, "T1", "purchase"), strict=True)
    )
    with pytest.raises(Conflict), crm.transaction():
        crm.db.insert_one(transactions, dup, values)
    assert len(crm.records.transactions(c)) == 1  # and nothing else of that transaction stayed
