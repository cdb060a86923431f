"""Points: accrual by tier multiplier, redemption, expiry, and the ledger invariant."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail import members, points
from crm_retail.tables import members as members_table
from crm_retail.tables import points as points_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import ValidationError

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)  # a Monday; member day is Wednesday


def ledger_state(crm, cid):
    with crm.transaction(write=False):
        total = crm.db.execute(
            select(
                func.coalesce(func.sum(points_table.c.delta), 0),
                func.coalesce(func.sum(points_table.c.remaining), 0),
            ).where(points_table.c.customer_id == cid)
        ).one()
        bal = crm.db.execute(
            select(members_table.c.points_balance).where(members_table.c.customer_id == cid)
        ).scalar()
    return int(bal), int(total[0]), int(total[1])


def member(crm, phone="13800000001"):
    c = crm.customers.add("M " + phone, phone=phone)
    members.join(crm, c, at=T0 - dt.timedelta(days=60))
    return c


@RETAIL
def test_accrual_follows_the_tier_multiplier(crm):
    c = member(crm)
    crm.records.add_transaction(c, 12_345)  # 123.45 yuan at standard x1 -> 123
    assert members.member_info(crm, c)["points_balance"] == 123
    crm.records.add_transaction(c, 300_000)  # reaches silver: earns at x1.2
    assert members.member_info(crm, c)["points_balance"] == 123 + 3600
    led = points.ledger(crm, c)
    assert [e["kind"] for e in led["entries"]] == ["accrual", "accrual"]
    assert "silver x1.2" in led["entries"][1]["reason"]
    assert led["balance"] == led["ledger_sum"]


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"points_per_yuan": 2}}})
def test_points_per_yuan_is_configurable(crm):
    c = member(crm)
    crm.records.add_transaction(c, 10_050)
    assert members.member_info(crm, c)["points_balance"] == 201


@RETAIL
def test_no_points_for_non_members_refunds_or_purchases_before_joining(crm):
    c = crm.customers.add("Not yet", phone="13800000002")
    crm.records.add_transaction(c, 50_000)
    members.join(crm, c)
    crm.records.add_transaction(c, 40_000, occurred_at=T0 - dt.timedelta(days=1))
    crm.records.add_transaction(c, -5_000, kind="refund")
    assert members.member_info(crm, c)["points_balance"] == 0
    with crm.transaction(write=False):
        assert crm.db.execute(select(func.count()).select_from(points_table)).scalar() == 0


@RETAIL
def test_the_same_transaction_never_accrues_twice(crm):
    c = member(crm)
    crm.records.add_transaction(c, 10_000, external_id="till-1")
    crm.records.add_transaction(c, 10_000, external_id="till-1")
    assert members.member_info(crm, c)["points_balance"] == 100


@RETAIL
def test_redeem_consumes_oldest_lots_first(crm):
    c = member(crm)
    crm.records.add_transaction(c, 10_000, occurred_at=T0 - dt.timedelta(hours=2))
    crm.records.add_transaction(c, 20_000, occurred_at=T0 - dt.timedelta(hours=1))
    out = points.redeem(crm, c, 150, reason="voucher")
    assert out["balance"] == 150
    led = points.ledger(crm, c)
    assert [e["remaining"] for e in led["entries"]] == [0, 150, 0]
    assert led["entries"][-1]["delta"] == -150 and led["entries"][-1]["kind"] == "redeem"
    assert ledger_state(crm, c.id) == (150, 150, 150)


@RETAIL
def test_redeeming_more_than_the_balance_is_refused_and_nothing_changes(crm):
    c = member(crm)
    crm.records.add_transaction(c, 10_000)
    with crm.transaction(write=False):
        before = crm.db.execute(select(points_table).order_by(points_table.c.id)).all()
    with pytest.raises(ValidationError, match="has 100 points; cannot redeem 101"):
        points.redeem(crm, c, 101)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValidationError, match="points to redeem"):
            points.redeem(crm, c, bad)
    with crm.transaction(write=False):
        assert crm.db.execute(select(points_table).order_by(points_table.c.id)).all() == before
    assert ledger_state(crm, c.id) == (100, 100, 100)


@RETAIL
def test_redeem_refuses_non_members_and_reused_refs(crm):
    c = crm.customers.add("X", phone="13800000003")
    with pytest.raises(ValidationError, match="not a member"):
        points.redeem(crm, c, 1)
    m = member(crm, "13800000004")
    crm.records.add_transaction(m, 10_000)
    points.redeem(crm, m, 10, ref="R-1")
    with pytest.raises(ValidationError, match="already used"):
        points.redeem(crm, m, 10, ref="R-1")
    assert members.member_info(crm, m)["points_balance"] == 90


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"points_expiry_days": 30}}})
def test_expiry_is_fifo_and_idempotent(crm):
    old = T0 - dt.timedelta(days=41)  # a Tuesday (not member day)
    other = crm.customers.add("Early", phone="13800000005")
    members.join(crm, other, at=old - dt.timedelta(days=1))
    crm.records.add_transaction(other, 10_000, occurred_at=old)  # lot 1: 100, expires T0-11d
    crm.records.add_transaction(other, 5_000, occurred_at=T0 - dt.timedelta(days=6))  # lot 2: 50
    points.redeem(crm, other, 30)  # takes 30 from lot 1
    out = crm.jobs.run(["retail.points_expiry"], at=T0)[0]["summary"]
    assert out == {"expired_lots": 1, "expired_points": 70, "members": 1}
    assert ledger_state(crm, other.id) == (50, 50, 50)
    again = crm.jobs.run(["retail.points_expiry"], at=T0)[0]["summary"]
    assert again["expired_points"] == 0
    later = crm.jobs.run(["retail.points_expiry"], at=T0 + dt.timedelta(days=25))[0]["summary"]
    assert later["expired_points"] == 50
    assert ledger_state(crm, other.id) == (0, 0, 0)
    kinds = [e["kind"] for e in points.ledger(crm, other)["entries"]]
    assert kinds.count("expire") == 2


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"points_expiry_days": 0}}})
def test_expiry_zero_means_points_never_expire(crm):
    c = member(crm)
    crm.records.add_transaction(c, 10_000)
    crm.jobs.run(["retail.points_expiry"], at=T0 + dt.timedelta(days=3650))
    assert members.member_info(crm, c)["points_balance"] == 100


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(min_value=-5_000, max_value=200_000)),
        st.tuples(st.just("redeem"), st.integers(min_value=1, max_value=3_000)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=200)),
        st.tuples(st.just("expire"), st.just(0)),
    ),
    max_size=12,
)


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"points_expiry_days": 90}}})
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_balance_always_equals_the_ledger_sum(crm, ops):
    crm.clock.set(T0)
    c = crm.customers.add("H", phone=None)
    members.join(crm, c)
    bought = False
    for op, n in ops:
        if op == "buy" and n < 0 and not bought:
            with pytest.raises(ValidationError, match="no purchase to refund"):
                crm.records.add_transaction(c, n, kind="refund")
        elif op == "buy":
            crm.records.add_transaction(c, n, kind="refund" if n < 0 else "purchase")
            bought = bought or n >= 0
        elif op == "redeem":
            bal = ledger_state(crm, c.id)[0]
            if n > bal:
                with pytest.raises(ValidationError):
                    points.redeem(crm, c, n)
            else:
                points.redeem(crm, c, n)
        elif op == "wait":
            crm.clock.advance(days=n)
        else:
            crm.jobs.run(["retail.points_expiry"], at=crm.now())
        bal, total, remaining = ledger_state(crm, c.id)
        assert bal == total == remaining >= 0
