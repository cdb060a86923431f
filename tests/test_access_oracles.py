"""Refusals never confirm what the caller may not see: a plugin's uniqueness refusal
(meter, plate, member number, policy number) says the value is taken, not whose."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import Conflict, NotFound
from crmcore.plugins import installed

SHIPPED = ["retail", "utility", "insurance", "real_estate"]


@pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)
def test_plugin_uniqueness_refusals_do_not_name_a_hidden_customer(crm_factory):
    from crm_insurance import policies
    from crm_retail import fuel, members
    from crm_utility import accounts

    crm = crm_factory(plugins=SHIPPED)
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    theirs = crm.customers.add("Wang's customer", external_id="W-77", owner="wang")
    mine = crm.customers.add("Zhang's customer", owner="zhang")
    point = {"address": "1 Road", "voltage_level": "380V", "customer_class": "commercial"}
    accounts.add_point(crm, theirs, meter_no="M-1", area="urban", **point)
    members.join(crm, theirs, member_no="CARD-1")
    fuel.visit1(crm, plate="豫A12345", car_model="VW", staff_ref="wang")
    policy = {
        "product_line": "life",
        "term": "long",
        "sum_at_risk_cents": 1_000_000,
        "premium_cents": 10_000,
        "start_at": dt.datetime(2020, 1, 1),
    }
    policies.add_policy(crm, theirs, "P-1", agent="wang", **policy)

    zhang = crm.as_("zhang")
    refusals = []
    for call in (
        lambda: accounts.add_point(zhang, mine, meter_no="M-1", area="urban", **point),
        lambda: members.join(zhang, mine, member_no="CARD-1"),
        lambda: fuel.visit1(zhang, plate="豫A12345", car_model="VW", staff_ref="zhang"),
        lambda: policies.add_policy(zhang, mine, "P-1", agent="zhang", **policy),
    ):
        with pytest.raises(Conflict) as got:
            call()
        refusals.append(str(got.value))
    assert refusals == [
        "meter 'M-1' is already registered",
        "member number CARD-1 is already used",
        "plate 豫A12345 already has a profile; continue with visit 2",
        "policy 'P-1' already exists",
    ]
    # a lookup of the hidden customer by external id answers like an unknown one
    with pytest.raises(NotFound, match="^customer 'W-77' not found$"):
        zhang.customers.get("W-77")
