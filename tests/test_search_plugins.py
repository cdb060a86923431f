"""The keys the four shipped plugins register find their customers, access-filtered."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crmcore.plugins import installed
from crmcore.search import search_customers, search_keys
from crmcore.storage._driver import connection

SHIPPED = ("retail", "utility", "insurance", "real_estate")
pytestmark = pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)


@pytest.fixture
def demo(crm_factory):
    from crmcore.demo import DEMO_AT, load_demo_data

    crm = crm_factory(plugins=SHIPPED)
    crm.clock.set(DEMO_AT)
    load_demo_data(crm, command="test setup")
    crm.staff.add("outsider", "Outsider", roles=["rep"], team="elsewhere")
    return crm


def _one_key(crm, key):
    stmt = select(key.value, key.customer)
    if key.join is not None:
        stmt = stmt.select_from(key.join)
    if key.where is not None:
        stmt = stmt.where(key.where)
    with crm.transaction(write=False) as db:
        return connection(db).execute(stmt.order_by(key.customer).limit(1)).one()


def test_every_plugin_key_finds_its_customer_exactly_by_prefix_and_fragment(demo):
    keys = {k.name: k for k in search_keys(demo)}
    assert set(keys) == {
        "retail.member_no",
        "utility.meter_no",
        "insurance.policy_no",
        "real_estate.unit",
    }
    for name, key in keys.items():
        value, customer_id = _one_key(demo, key)
        exact = search_customers(demo, value, limit=50)
        assert customer_id in [h["id"] for h in exact if h["match"] == "exact"], name
        assert customer_id in [h["id"] for h in search_customers(demo, value[:2], limit=500)], name
        if len(value) >= 5:
            inner = value[1:-1].lower()
            assert customer_id in [h["id"] for h in search_customers(demo, inner, limit=500)], name
        # a rep who may not see the customer does not find it by the key
        assert search_customers(demo.as_("outsider"), value) == [], name
