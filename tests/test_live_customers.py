"""``crmcore.schema.live_customers``: the customers a listing shows. A customer
merged into another and a forgotten customer appear in no listing of the core
or of the bundled plugins."""

from __future__ import annotations

import ast
import csv
import datetime as dt
from pathlib import Path

import pytest
from crm_insurance import orphans, policies, vip
from crm_real_estate import places
from crm_retail import callbacks as retail_callbacks
from crm_retail import members as retail_members
from crm_retail.tables import service_plans
from sqlalchemy import select

from crmcore.cli.export import export_customers
from crmcore.schema import live_customers

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ["retail", "real_estate"]


def _cast(crm):
    """Four customers of the rep zhang: ``kept`` with ``twin`` merged into it,
    ``gone`` forgotten, ``plain`` untouched. Returns their ids."""
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"])
    kept = crm.customers.add("Wu Fang", phone="13800000001", owner="zhang")
    twin = crm.customers.add("Wu Fang (old card)", phone="13800000002", owner="zhang")
    gone = crm.customers.add("Qian Hui", phone="13800000003", owner="zhang")
    plain = crm.customers.add("Li Ming", phone="13800000004", owner="zhang")
    return kept.id, twin.id, gone.id, plain.id


def _merge_and_forget(crm, kept, twin, gone):
    crm.customers.merge(kept, twin)
    crm.customers.forget(gone)


@pytest.mark.parametrize("who", ["system", "zhang"])
def test_the_selectable_holds_only_live_customers_for_every_principal(crm, who):
    kept, twin, gone, plain = _cast(crm)
    _merge_and_forget(crm, kept, twin, gone)
    actor = crm if who == "system" else crm.as_(who)
    with actor.transaction(write=False):
        ids = [
            r.id
            for r in actor.db.execute(select(live_customers.c.id).order_by(live_customers.c.id))
        ]
    assert ids == [kept, plain]


def test_core_listings_leave_out_merged_and_forgotten_customers(crm, crm_cli, tmp_path):
    kept, twin, gone, plain = _cast(crm)
    before = [c.id for c in crm.customers.list()]
    assert before == [kept, twin, gone, plain]
    _merge_and_forget(crm, kept, twin, gone)

    assert [c.id for c in crm.customers.list()] == [kept, plain]
    assert [c.id for c in crm.as_("zhang").customers.list()] == [kept, plain]
    assert crm.customers.count() == 2
    assert crm.as_("zhang").customers.count(owner="zhang") == 2
    assert [c.id for c in crm.customers.list(limit=1, offset=1)] == [plain]

    page = crm_cli("customer", "list", "--json").json()
    assert [c["id"] for c in page["customers"]] == [kept, plain] and page["total"] == 2

    out = tmp_path / "customers.csv"
    export_customers(crm, str(out))
    with out.open(encoding="utf-8", newline="") as f:
        assert [int(r["id"]) for r in csv.DictReader(f)] == [kept, plain]


@pytest.mark.crm(plugins=PLUGINS)
def test_plugin_listings_leave_out_merged_and_forgotten_customers(crm):
    kept, twin, gone, plain = _cast(crm)
    # retail members: the twin and the forgotten customer are members
    for cid in (twin, gone, plain):
        retail_members.join(crm, cid)
    # real estate: each customer owns a unit
    places.add_project(crm, "JD", "Jade Garden")
    places.add_building(crm, "JD", "A1")
    since = dt.datetime(2024, 6, 1)
    for n, cid in enumerate((twin, gone, plain), start=1):
        places.add_unit(crm, "JD/A1", f"10{n}")
        places.add_owner(crm, f"JD/A1/10{n}", cid, since=since)
    _merge_and_forget(crm, kept, twin, gone)

    # the twin's membership and unit moved to the kept customer; the forgotten one is gone
    listed = [m["customer_id"] for m in retail_members.list_members(crm)]
    assert sorted(listed) == [kept, plain]
    owners = [o["customer_id"] for o in places.list_owners(crm)]
    assert sorted(owners) == [kept, plain]
    assert [o["customer_id"] for o in places.list_owners(crm, unit="JD/A1/102")] == []


def _regular(crm, customer, *, spend_cents, last_days_ago):
    """Four purchases a week apart, the last ``last_days_ago`` days before now."""
    now = crm.now()
    for week in range(4):
        at = now - dt.timedelta(days=last_days_ago + 7 * (3 - week))
        crm.records.add_transaction(customer, spend_cents, occurred_at=at)


@pytest.mark.crm(plugins=["retail"])
def test_retail_jobs_leave_out_forgotten_customers(crm):
    kept, twin, gone, plain = _cast(crm)
    for cid in (twin, gone, plain):  # regulars, overdue (11 days > 7 + 3 days' grace)
        _regular(crm, cid, spend_cents=30_000 if cid == twin else 900_000, last_days_ago=11)
    _merge_and_forget(crm, kept, twin, gone)
    at = crm.now()

    crm.jobs.run(["retail.overdue"], at=at)
    called = sorted(c["customer_id"] for c in retail_callbacks.list_callbacks(crm))
    assert called == [kept, plain]
    assert [r.customer_id for r in crm.tickets.due_reminders(staff="zhang", at=at + dt.timedelta(days=9))]
    assert gone not in [
        r.customer_id for r in crm.tickets.due_reminders(staff="zhang", at=at + dt.timedelta(days=9))
    ]

    crm.jobs.run(["retail.abc_service"], at=at)
    assert crm.customers.labels(plain)["abc"] == "A"  # the big spender
    assert "abc" not in crm.customers.labels(gone)  # an erased person is classed no more
    with crm.transaction(write=False):
        planned = [r.customer_id for r in crm.db.execute(select(service_plans.c.customer_id))]
    assert planned == [plain]  # a one-to-one plan for the live one only


GOLD = {"name": "gold", "visits_per_year": 4, "min_sum_at_risk_cents": 1}


@pytest.mark.crm(plugins=["insurance"], config={"plugins": {"insurance": {"vip_grades": [GOLD]}}})
def test_insurance_lists_leave_out_merged_and_forgotten_customers(crm):
    kept, twin, gone, plain = _cast(crm)
    crm.staff.add("zhou", "Zhou Min", roles=["rep"])
    for n, cid in enumerate((twin, gone, plain), start=1):
        policies.add_policy(
            crm,
            cid,
            f"L-{n}",
            product_line="life",
            term="long",
            sum_at_risk_cents=10_000_000,
            premium_cents=500_000,
            start_at=dt.datetime(2020, 1, 1),
            agent="zhou",
        )
    _merge_and_forget(crm, kept, twin, gone)
    crm.staff.leave("zhou", handover_to="zhang")  # every policy's agent has left

    assert sorted(r["customer_id"] for r in vip.vip_list(crm)) == [kept, plain]
    assert sorted(o["customer_id"] for o in orphans.list_orphans(crm)) == [kept, plain]


def _hand_written_live_filters(path: Path) -> list[str]:
    """``customers.c.merged_into_id`` / ``forgotten_at`` used in a plugin's code:
    the conditions ``live_customers`` already holds, written again by hand."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("merged_into_id", "forgotten_at")
    ]


def test_plugins_list_customers_through_live_customers():
    found = [
        hit
        for p in sorted(ROOT.glob("plugins/*/crm_*/**/*.py"))
        for hit in _hand_written_live_filters(p)
    ]
    assert found == [], "use crmcore.schema.live_customers instead: " + ", ".join(found)
