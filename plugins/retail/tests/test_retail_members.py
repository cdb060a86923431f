"""Membership and tiers: join, upgrades at once, downgrades only at the review date."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail import members
from crm_retail.settings import parse
from crm_retail.tables import members as members_table
from sqlalchemy import select

from crmcore import ConfigError, Conflict, TransactionBatch, ValidationError
from crmcore.schema import timeline_entries, transactions

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


def tier_entries(crm, cid):
    with crm.transaction(write=False):
        rows = crm.db.execute(
            select(timeline_entries)
            .where(timeline_entries.c.customer_id == cid, timeline_entries.c.kind == "retail.tier")
            .order_by(timeline_entries.c.id)
        ).all()
    return [r.summary for r in rows]


@RETAIL
def test_join_gives_a_member_number_and_the_entry_tier(crm):
    c = crm.customers.add("Li Mei", phone="13800000001")
    m = members.join(crm, c, birthday="1990-03-04")
    assert m["member_no"] == f"M{c.id:08d}"
    assert m["tier"] == "standard" and m["points_balance"] == 0
    assert m["birthday"] == dt.date(1990, 3, 4)
    assert crm.customers.labels(c)["retail.tier"] == "standard"
    assert any("joined as member" in e.summary for e in crm.records.timeline(c))


@RETAIL
def test_join_twice_or_with_a_used_number_is_refused(crm):
    a = crm.customers.add("A", phone="13800000001")
    b = crm.customers.add("B", phone="13800000002")
    members.join(crm, a, member_no="CARD-1")
    with pytest.raises(Conflict, match="already member CARD-1"):
        members.join(crm, a)
    with pytest.raises(Conflict, match="CARD-1 is already used"):
        members.join(crm, b, member_no="CARD-1")
    with pytest.raises(ValidationError, match="birthday"):
        members.join(crm, b, birthday="2030-01-01")
    with pytest.raises(ValidationError, match="letters, digits"):
        members.join(crm, b, member_no="bad number!")
    with crm.transaction(write=False):
        assert crm.db.execute(select(members_table.c.customer_id)).scalars().all() == [a.id]


@RETAIL
def test_joining_starts_at_the_tier_past_spend_qualifies_for(crm):
    c = crm.customers.add("Big spender", phone="13800000003")
    crm.records.add_transaction(c, 1_200_000, occurred_at=T0 - dt.timedelta(days=30))
    assert members.join(crm, c)["tier"] == "gold"


@RETAIL
def test_upgrade_is_immediate_with_a_timeline_reason_and_label(crm):
    c = crm.customers.add("Wang", phone="13800000004")
    members.join(crm, c)
    crm.records.add_transaction(c, 250_000)
    assert members.member_info(crm, c)["tier"] == "standard"
    crm.records.add_transaction(c, 60_000)  # 3,100 yuan in 12 months: silver
    info = members.member_info(crm, c)
    assert info["tier"] == "silver"
    assert crm.customers.labels(c)["retail.tier"] == "silver"
    (entry,) = tier_entries(crm, c.id)
    assert "standard -> silver (upgrade)" in entry and "3,100.00" in entry and "3,000.00" in entry


@RETAIL
def test_upgrade_can_skip_tiers(crm):
    c = crm.customers.add("Zhou", phone="13800000005")
    members.join(crm, c)
    crm.records.add_transaction(c, 3_500_000)
    assert members.member_info(crm, c)["tier"] == "platinum"


@RETAIL
def test_spend_outside_the_rolling_window_does_not_count(crm):
    c = crm.customers.add("Old", phone="13800000006")
    members.join(crm, c)
    crm.records.add_transaction(c, 290_000, occurred_at=T0 - dt.timedelta(days=400))
    crm.records.add_transaction(c, 20_000)
    assert members.member_info(crm, c)["tier"] == "standard"


@pytest.mark.crm(
    plugins=["retail"],
    config={"plugins": {"retail": {"tier_window_days": 30, "tier_review_date": "07-01"}}},
)
def test_downgrade_waits_for_the_review_date(crm):
    c = crm.customers.add("Sun", phone="13800000007")
    members.join(crm, c)
    crm.records.add_transaction(c, 1_000_000)
    assert members.member_info(crm, c)["tier"] == "gold"
    # spend has left the 30-day window, but the review date has not come
    for day in (dt.datetime(2026, 3, 1), dt.datetime(2026, 6, 30, 23, 0)):
        crm.jobs.run(["retail.tiers"], at=day)
        assert members.member_info(crm, c)["tier"] == "gold"
    out = crm.jobs.run(["retail.tiers"], at=dt.datetime(2026, 7, 1, 2, 0))[0]["summary"]
    assert out["downgrades"] == 1 and out["review_date"] == "2026-07-01"
    assert members.member_info(crm, c)["tier"] == "standard"
    assert crm.customers.labels(c)["retail.tier"] == "standard"
    entries = tier_entries(crm, c.id)
    assert "gold -> standard (downgrade at the 2026-07-01 review)" in entries[-1]
    # idempotent: same day, next day
    crm.jobs.run(["retail.tiers"], at=dt.datetime(2026, 7, 1, 2, 0))
    crm.jobs.run(["retail.tiers"], at=dt.datetime(2026, 7, 2, 2, 0))
    assert len(tier_entries(crm, c.id)) == 2


@pytest.mark.crm(
    plugins=["retail"],
    config={"plugins": {"retail": {"tier_window_days": 30, "tier_review_date": "07-01"}}},
)
def test_a_transaction_never_downgrades(crm):
    c = crm.customers.add("Qian", phone="13800000008")
    members.join(crm, c)
    crm.records.add_transaction(c, 1_000_000)
    crm.clock.set(dt.datetime(2026, 3, 1))
    crm.records.add_transaction(c, 1_000)
    assert members.member_info(crm, c)["tier"] == "gold"


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"tier_review_date": "07-01"}}})
def test_member_who_joined_after_the_review_is_not_downgraded_until_the_next(crm):
    c = crm.customers.add("Late", phone="13800000009")
    crm.records.add_transaction(c, 400_000, occurred_at=T0 - dt.timedelta(days=300))
    members.join(crm, c)
    assert members.member_info(crm, c)["tier"] == "silver"
    crm.jobs.run(["retail.tiers"], at=dt.datetime(2026, 6, 1))  # spend gone, no review yet
    assert members.member_info(crm, c)["tier"] == "silver"
    crm.jobs.run(["retail.tiers"], at=dt.datetime(2026, 7, 1))
    assert members.member_info(crm, c)["tier"] == "standard"


@RETAIL
def test_nightly_job_upgrades_set_based(crm):
    a = crm.customers.add("A", phone="13800000010")
    b = crm.customers.add("B", phone="13800000011")
    members.join(crm, a)
    members.join(crm, b)
    # spend recorded before joining counts for the tier; set the tier back by hand
    crm.records.add_transaction(a, 1_100_000)
    with crm.transaction():
        crm.db.execute(members_table.update().values(tier="standard"))
    out = crm.jobs.run(["retail.tiers"], at=T0)[0]["summary"]
    assert out["upgrades"] == 1
    assert members.member_info(crm, a)["tier"] == "gold"
    assert members.member_info(crm, b)["tier"] == "standard"


def import_batch(crm, rows):
    """What the core's bulk import does: insert the rows, then one batch hook call."""
    with crm.transaction():
        ids = []
        for cid, at, cents in rows:
            res = crm.db.execute(
                transactions.insert().values(customer_id=cid, occurred_at=at, amount_cents=cents)
            )
            ids.append(res.inserted_primary_key[0])
        batch = TransactionBatch(
            first_id=min(ids),
            last_id=max(ids),
            count=len(ids),
            customer_ids=tuple(sorted({r[0] for r in rows})),
        )
        crm.hook.crm_transaction_recorded_batch(crm=crm, batch=batch)


@RETAIL
def test_import_batch_upgrades_and_accrues(crm):
    a = crm.customers.add("A", phone="13800000012")
    b = crm.customers.add("B", phone="13800000013")
    n = crm.customers.add("N", phone="13800000014")
    members.join(crm, a)
    members.join(crm, b)
    import_batch(
        crm,
        [
            (a.id, T0 + dt.timedelta(hours=1), 200_000),
            (a.id, T0 + dt.timedelta(hours=2), 150_000),
            (b.id, T0 + dt.timedelta(hours=3), 1_000),
            (n.id, T0 + dt.timedelta(hours=3), 9_900),
            (b.id, T0 - dt.timedelta(days=30), 5_000),  # before joining: no points
        ],
    )
    info_a = members.member_info(crm, a)
    assert info_a["tier"] == "silver"
    assert info_a["points_balance"] == 4200  # 3,500 yuan at silver x1.2
    assert members.member_info(crm, b)["points_balance"] == 10
    assert len(tier_entries(crm, a.id)) == 1
    with pytest.raises(ValidationError, match="not a member"):
        members.member_info(crm, n)


@RETAIL
def test_rep_lists_only_their_own_members(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    mine = crm.customers.add("Mine", phone="13800000015", owner="zhang")
    other = crm.customers.add("Other", phone="13800000016", owner="chen")
    members.join(crm, mine)
    members.join(crm, other)
    listed = members.list_members(crm.as_("zhang"))
    assert [m["customer_id"] for m in listed] == [mine.id]


def test_tier_config_is_checked():
    base = {"tier_review_date": "01-01", "abc": {"a_share": 0.7, "b_share": 0.2}}
    tiers = [
        {"name": "a", "min_spend_cents": 0, "multiplier": 1, "benefits": []},
        {"name": "b", "min_spend_cents": 0, "multiplier": 1, "benefits": []},
    ]
    with pytest.raises(ConfigError, match="tiers.1.min_spend_cents: thresholds must increase"):
        parse(base | {"tiers": tiers})
    with pytest.raises(ConfigError, match="tiers.0.min_spend_cents"):
        parse(base | {"tiers": [tiers[0] | {"min_spend_cents": 5}]})
    with pytest.raises(ConfigError, match="defined twice"):
        parse(base | {"tiers": [tiers[0], tiers[0] | {"min_spend_cents": 9}]})
    with pytest.raises(ConfigError, match="tier_review_date"):
        parse(base | {"tiers": [tiers[0]], "tier_review_date": "02-29"})


def test_config_schema_errors_name_the_key(crm_factory):
    with pytest.raises(ConfigError, match="plugins.retail.tiers"):
        crm_factory(plugins=["retail"], config={"plugins": {"retail": {"tiers": []}}})
    with pytest.raises(ConfigError, match="plugins.retail.member_day.day"):
        crm_factory(
            plugins=["retail"], config={"plugins": {"retail": {"member_day": {"day": "funday"}}}}
        )


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"tier_review_date": "01-10"}}})
def test_many_changes_are_written_set_based_with_the_same_result(crm, monkeypatch):
    monkeypatch.setattr(members, "BULK_AT", 1)
    cs = [crm.customers.add(f"Bulk {i}", phone=f"1390000000{i}") for i in range(3)]
    for c in cs:
        members.join(crm, c, at=T0 - dt.timedelta(days=400))
    import_batch(crm, [(cs[0].id, T0, 300_000), (cs[1].id, T0, 1_000_000), (cs[2].id, T0, 100)])
    assert [members.member_info(crm, c)["tier"] for c in cs] == ["silver", "gold", "standard"]
    assert [crm.customers.labels(c)["retail.tier"] for c in cs] == ["silver", "gold", "standard"]
    assert "standard -> gold (upgrade)" in tier_entries(crm, cs[1].id)[0]
    # the review day downgrades both, set-based, with reasons
    out = crm.jobs.run(["retail.tiers"], at=dt.datetime(2027, 1, 10, 1))[0]["summary"]
    assert out["downgrades"] == 2
    assert [crm.customers.labels(c)["retail.tier"] for c in cs] == ["standard"] * 3
    assert "(downgrade at the 2027-01-10 review)" in tier_entries(crm, cs[0].id)[-1]


@pytest.mark.crm(plugins=["retail"], config={"plugins": {"retail": {"tier_window_days": 30}}})
def test_the_rolling_window_is_exact_at_both_ends(crm):
    """A purchase's upgrade counts spend in (at - window, at], at = max(now, purchase)."""
    a = crm.customers.add("Edge", phone="13800000011")
    members.join(crm, a)
    crm.records.add_transaction(a, 290_000, occurred_at=T0 - dt.timedelta(days=30))  # just outside
    crm.records.add_transaction(a, 20_000)
    assert members.member_info(crm, a)["tier"] == "standard"
    b = crm.customers.add("Inside", phone="13800000012")
    members.join(crm, b)
    crm.records.add_transaction(b, 290_000, occurred_at=T0 - dt.timedelta(days=30, seconds=-1))
    crm.records.add_transaction(b, 20_000)
    assert members.member_info(crm, b)["tier"] == "silver"
    c = crm.customers.add("Till ahead", phone="13800000013")
    members.join(crm, c)
    crm.records.add_transaction(c, 290_000, occurred_at=T0 + dt.timedelta(days=2))  # future-dated
    assert members.member_info(crm, c)["tier"] == "standard"
    crm.records.add_transaction(c, 20_000, occurred_at=T0 + dt.timedelta(days=3))  # counts both
    assert crm.customers.labels(c)["retail.tier"] == "silver"


@RETAIL
def test_a_top_tier_member_stays_and_earns_at_the_top_multiplier(crm):
    c = crm.customers.add("Top", phone="13800000014")
    members.join(crm, c)
    crm.records.add_transaction(c, 3_500_000)  # platinum x2.0
    crm.records.add_transaction(c, 10_000, occurred_at=T0 + dt.timedelta(hours=1))
    info = members.member_info(crm, c)
    assert info["tier"] == "platinum"
    assert len(tier_entries(crm, c.id)) == 1
    assert info["points_balance"] == 35_000 * 2 + 100 * 2
