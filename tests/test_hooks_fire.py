"""Every event hook fires, in order, with the declared arguments (kedro's LoggingHooks idea)."""

from __future__ import annotations

from conftest import Recorder

from crmcore import analytics


def test_event_hooks_fire_in_order(crm_factory):
    rec = Recorder()
    crm = crm_factory(plugins=["recorder"], extra_plugins={"recorder": rec})
    c = crm.customers.add("Ann")
    crm.customers.update(c, name="Anne")
    crm.customers.change_stage(c, "new")
    other = crm.customers.add("Bo")
    rel = crm.customers.add_relationship("referral", other, to_customer=c)
    crm.customers.end_relationship(rel.id)
    crm.records.add_interaction(c, "visit", "came by")
    crm.records.add_transaction(c, 1234)
    t = crm.tickets.open(c, "x")
    crm.tickets.move(t, "review")
    analytics.abc(crm)
    assert rec.calls == [
        ("validate_customer", True),
        ("customer_created", c.id),
        ("validate_customer", False),
        ("customer_updated", ("Ann", "Anne")),
        ("stage_changed", ("prospect", "new")),
        ("validate_customer", True),
        ("customer_created", other.id),
        ("relationship_changed", "added"),
        ("relationship_changed", "ended"),
        ("validate_interaction", None),
        ("interaction_recorded", "visit"),
        ("validate_transaction", None),
        ("transaction_recorded", 1234),
        ("ticket_opened", "verify"),
        ("ticket_moved", ("verify", "review")),
        ("analytics_computed", "abc"),
    ]
