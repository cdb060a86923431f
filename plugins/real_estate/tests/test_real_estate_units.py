"""Projects, buildings, units; owners, co-owners, tenants; buyers followed up before handover."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_real_estate import places
from crm_real_estate import requests as req
from crm_real_estate.tables import unit_owners
from real_estate_helpers import HANDOVER, count, estate

from crmcore import Conflict, NotFound, ValidationError
from crmcore.schema import reminders
from crmcore.testing import assert_plugin_contract

pytestmark = pytest.mark.crm(plugins=["real_estate"])


def test_projects_buildings_units_by_path(crm):
    estate(crm)
    assert places.list_projects(crm) == [
        {
            "id": 1,
            "code": "JD",
            "name": "Jade Garden",
            "city": "Hangzhou",
            "design_life_years": None,
            "buildings": 2,
            "units": 3,
        }
    ]
    assert [b["path"] for b in places.list_buildings(crm, "JD")] == ["JD/A1", "JD/A2"]
    assert [u["path"] for u in places.list_units(crm, "JD/A1")] == ["JD/A1/1201", "JD/A1/1202"]


def test_place_refusals(crm):
    estate(crm)
    for call, error, message in [
        (lambda c: places.add_project(c, "JD", "again"), Conflict, "project 'JD' already exists"),
        (lambda c: places.add_project(c, "A/B", "x"), ValidationError, "without '/'"),
        (lambda c: places.add_building(c, "JD", "A1"), Conflict, "building JD/A1 already exists"),
        (lambda c: places.add_building(c, "XX", "A9"), NotFound, "project 'XX' not found"),
        (lambda c: places.add_unit(c, "JD/A1", "1201"), Conflict, "unit JD/A1/1201 already"),
        (lambda c: places.add_unit(c, "JD", "1"), NotFound, "expected PROJECT/BUILDING"),
    ]:
        with pytest.raises(error, match=message):
            call(crm)


def test_roles_one_owner_per_unit_and_no_duplicate_link(crm):
    estate(crm)
    gao = "C-3"
    with pytest.raises(
        Conflict, match="unit JD/A1/1201 already has an owner; add this customer as"
    ):
        places.add_owner(crm, "JD/A1/1201", gao, role="owner")
    places.add_owner(crm, "JD/A1/1201", gao, role="co-owner")
    with pytest.raises(Conflict, match="already linked to unit JD/A1/1201"):
        places.add_owner(crm, "JD/A1/1201", gao, role="tenant")
    with pytest.raises(ValidationError, match="role 'landlord'"):
        places.add_owner(crm, "JD/A1/1202", gao, role="landlord")
    roles = sorted((o["name"], o["role"]) for o in places.list_owners(crm, unit="JD/A1/1201"))
    assert roles == [("Gao Min", "co-owner"), ("Wu Fang", "owner")]
    assert [e.summary for e in crm.records.timeline(gao) if e.kind == "real_estate.unit"] == [
        "tenant of unit JD/A2/0101",
        "co-owner of unit JD/A1/1201",
    ]


def test_sale_ends_the_link_and_a_new_owner_can_follow(crm):
    estate(crm)
    link = places.list_owners(crm, unit="JD/A1/1202")[0]
    places.end_owner(crm, link["id"])
    with pytest.raises(NotFound, match=f"current unit link {link['id']} not found"):
        places.end_owner(crm, link["id"])
    places.add_owner(crm, "JD/A1/1202", "C-3", role="owner")
    assert [o["name"] for o in places.list_owners(crm, unit="JD/A1/1202")] == ["Gao Min"]
    assert len(places.list_owners(crm, unit="JD/A1/1202", current=False)) == 2


def test_handover_recorded_on_owners_timeline(crm):
    estate(crm)
    places.add_unit(crm, "JD/A1", "1501")
    places.add_owner(crm, "JD/A1/1501", "C-3", role="owner")
    u = places.set_handover(crm, "JD/A1/1501", dt.datetime(2026, 1, 2))
    assert u["handover_at"] == dt.datetime(2026, 1, 2)
    assert any(
        e.summary == "unit JD/A1/1501 handed over on 2026-01-02" for e in crm.records.timeline("C-3")
    )


def test_a_rep_sees_only_links_of_their_own_customers(crm):
    estate(crm)
    names = {o["name"] for o in places.list_owners(crm.as_("zhang"))}
    assert names == {"Wu Fang", "Gao Min"}
    assert {o["name"] for o in places.list_owners(crm.as_("chen"))} == {"Wu Lei"}


def test_phones_are_masked_without_pii(crm):
    estate(crm)
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    masked = {o["name"]: o["phone"] for o in places.list_owners(crm.as_("audit"))}
    plain = {o["name"]: o["phone"] for o in places.list_owners(crm)}
    assert plain["Wu Fang"].endswith("13900001111")
    assert masked["Wu Fang"].endswith("****1111") and "0000" not in masked["Wu Fang"]


# -- buyers before handover ------------------------------------------------------------------
def _buyer(crm):
    estate(crm)
    places.add_unit(crm, "JD/A1", "1501", handover_at=dt.datetime(2026, 3, 1))
    buyer = crm.customers.add("Zhou Min", phone="139 0000 7777", owner="li", external_id="C-9")
    places.add_owner(
        crm, "JD/A1/1501", buyer, role="owner", since=dt.datetime(2026, 1, 1), sales="chen"
    )
    return buyer


def test_sales_staff_follow_buyers_and_may_see_them(crm):
    buyer = _buyer(crm)
    rows = places.list_buyers(crm)
    assert [(b["name"], b["sales"], b["unit"]) for b in rows] == [
        ("Zhou Min", "chen", "JD/A1/1501")
    ]
    assert crm.as_("chen").customers.get("C-9").id == buyer.id  # the sales relationship
    first = places.assign_sales(crm, "C-9", "chen")["relationship_id"]
    assert places.assign_sales(crm, "C-9", "chen")["relationship_id"] == first  # idempotent
    assert places.list_buyers(crm, at=dt.datetime(2026, 3, 1)) == []  # handed over


def test_buyer_followups_every_n_days_and_handover_notice_idempotent(crm, crm_clock):
    _buyer(crm)  # bought 2026-01-01, handover 2026-03-01; followups every 30 days, notice 14 days
    at = dt.datetime(2026, 1, 5, 9)
    for _ in range(2):
        out = crm.jobs.run(["real_estate.buyer_followups"], at=at)
    assert out[0]["summary"] == {"buyers": 1, "followups": 1, "handover_notices": 0}
    assert count(crm, reminders) == 1
    crm.jobs.run(["real_estate.buyer_followups"], at=dt.datetime(2026, 1, 20))  # same period
    assert count(crm, reminders) == 1
    crm.jobs.run(["real_estate.buyer_followups"], at=dt.datetime(2026, 2, 1))  # period 1
    assert count(crm, reminders) == 2
    crm.jobs.run(["real_estate.buyer_followups"], at=dt.datetime(2026, 2, 16))  # 13 days before
    texts = [r.text for r in crm.tickets.due_reminders(at=dt.datetime(2026, 3, 1), staff="chen")]
    assert any(t.startswith("handover of unit JD/A1/1501 to Zhou Min on 2026-03-01") for t in texts)
    assert sum("follow up buyer Zhou Min" in t for t in texts) == 2
    crm.jobs.run(["real_estate.buyer_followups"], at=dt.datetime(2026, 3, 2))  # handed over
    assert count(crm, reminders) == 3


def test_no_followups_without_sales_staff_or_after_handover(crm):
    estate(crm)
    places.add_unit(crm, "JD/A1", "1501", handover_at=dt.datetime(2026, 3, 1))
    places.add_owner(crm, "JD/A1/1501", "C-3", role="co-owner")  # no sales contact
    out = crm.jobs.run(["real_estate.buyer_followups"], at=dt.datetime(2026, 1, 6))
    assert out[0]["summary"]["buyers"] == 0
    assert places.list_buyers(crm)[0]["sales"] is None


@pytest.mark.crm(
    plugins=["real_estate"],
    config={"plugins": {"real_estate": {"buyer_followup_days": 7, "handover_notice_days": 60}}},
)
def test_buyer_followup_intervals_from_config(crm):
    _buyer(crm)
    out = crm.jobs.run(["real_estate.buyer_followups"], at=dt.datetime(2026, 1, 9))
    assert out[0]["summary"] == {"buyers": 1, "followups": 1, "handover_notices": 1}
    assert {r.text.split(" ")[0] for r in crm.tickets.due_reminders(at=dt.datetime(2026, 1, 9))} == {
        "follow",
        "handover",
    }


def test_merge_moves_unit_links(crm):
    estate(crm)
    dup = crm.customers.add("Wu Fang (dup)", external_id="C-77", owner="zhang")
    places.add_owner(crm, "JD/A1/1202", dup, role="tenant")
    crm.customers.merge("C-1", "C-77")
    units = sorted(o["unit"] for o in places.list_owners(crm, customer="C-1"))
    assert units == ["JD/A1/1201", "JD/A1/1202"]
    assert count(crm, unit_owners) == 5


def test_merging_two_links_to_one_unit_leaves_one_link(crm):
    estate(crm)
    c1_units = {o["unit"]: o for o in places.list_owners(crm, customer="C-1")}
    unit = sorted(c1_units)[0]
    before = count(crm, unit_owners)
    dup = crm.customers.add("Wu Fang (dup)", external_id="C-78", owner="zhang")
    places.add_owner(crm, unit, dup, role="tenant")
    crm.customers.merge("C-1", "C-78")
    links = [o for o in places.list_owners(crm, customer="C-1") if o["unit"] == unit]
    assert len(links) == 1 and links[0]["role"] == c1_units[unit]["role"]
    assert count(crm, unit_owners) == before  # the twin's link to the same unit is gone


def seed_real_estate(crm, customer):
    """The customer owns a unit of a new building and reports a leak in it, with
    a revisit note: the rows forget and merge must handle."""
    block = f"B{customer.id}"
    if not any(p["code"] == "CT" for p in places.list_projects(crm)):
        places.add_project(crm, "CT", "Contract Towers", city="Hangzhou")
        crm.staff.add("wang", "Wang Qiang", roles=["rep"], team="maint")
        places.add_team(crm, "CTT", "plumbing", leader="wang")
    places.add_building(crm, "CT", block)
    places.add_unit(crm, f"CT/{block}", "0101", handover_at=HANDOVER)
    places.add_owner(crm, f"CT/{block}/0101", customer, role="owner")
    request = req.open_request(
        crm,
        customer,
        unit=f"CT/{block}/0101",
        category="plumbing",
        channel="phone",
        text="pipe leaking in the kitchen",
    )
    req.dispatch(crm, request["id"], team="CTT")
    req.complete(crm, request["id"])
    req.revisit(crm, request["id"], satisfaction=4, note="call back in the evening")


def test_the_plugin_contract(crm_factory):
    assert_plugin_contract("real_estate", crm_factory, seed=seed_real_estate)
