"""Retention: customers inactive for N years are found set-based and forgotten
through the forget path (audited); active ones, and other principals, are not."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crmcore import AccessDenied, ConfigError
from crmcore.config import from_dict
from crmcore.schema import audit_log, customers
from crmcore.storage._driver import connection

NOW = dt.datetime(2026, 1, 5, 9, 0)
CONFIG = {"crm": {"protect": {"retention": [{"name": "five-years", "inactive_years": 5}]}}}


def _seed(crm, crm_clock):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    crm_clock.set(dt.datetime(2019, 3, 1))
    old = crm.customers.add("Old Wu", phone="13900001111", owner="zhang")
    crm.records.add_transaction(old, 1000, occurred_at=dt.datetime(2019, 3, 2))
    bought = crm.customers.add("Bought Recently")
    crm.records.add_transaction(bought, 1000, occurred_at=dt.datetime(2019, 3, 2))
    talked = crm.customers.add("Talked Recently")
    never = crm.customers.add("Never Bought")
    crm_clock.set(dt.datetime(2024, 6, 1))
    crm.records.add_transaction(bought, 500, occurred_at=dt.datetime(2024, 6, 1))
    crm.records.add_interaction(talked, "visit", "came in")
    crm_clock.set(NOW)
    young = crm.customers.add("New Customer")
    return old, bought, talked, never, young


@pytest.mark.crm(config=CONFIG)
def test_preview_lists_the_inactive_and_changes_nothing(crm, crm_clock):
    old, _, _, never, _ = _seed(crm, crm_clock)
    preview = crm.protect.retention_preview(NOW)
    assert preview["rules"][0]["cutoff"] == "2021-01-05T09:00:00"
    assert preview["rules"][0]["customers"] == [old.id, never.id]
    assert crm.customers.get(old.id).name == "Old Wu"


@pytest.mark.crm(config=CONFIG)
def test_apply_forgets_each_through_the_forget_path(crm, crm_clock):
    old, bought, talked, never, young = _seed(crm, crm_clock)
    result = crm.protect.retention_apply(NOW)
    assert result["total"] == 2
    with crm.transaction(write=False):
        rows = {
            r.id: r
            for r in connection(crm.db).execute(
                select(
                    customers.c.id, customers.c.name, customers.c.phone, customers.c.forgotten_at
                )
            )
        }
        forgets = (
            connection(crm.db).execute(
                select(audit_log.c.customer_id).where(audit_log.c.action == "forget")
            )
            .scalars()
            .all()
        )
    assert rows[old.id].forgotten_at == NOW and rows[old.id].phone is None
    assert rows[old.id].name == f"forgotten customer {old.id}"
    assert rows[never.id].forgotten_at == NOW
    for kept in (bought, talked, young):
        assert rows[kept.id].forgotten_at is None
    assert sorted(forgets) == [old.id, never.id]
    # the statistics keep the anonymous purchase
    assert len(crm.records.transactions(old.id)) == 1
    # a second run finds no one
    assert crm.protect.retention_apply(NOW)["total"] == 0


@pytest.mark.crm(config=CONFIG)
def test_an_open_ticket_keeps_the_customer(crm, crm_clock):
    old, *_ = _seed(crm, crm_clock)
    crm.tickets.open(old.id, "still waiting for the refund")
    assert old.id not in crm.protect.retention_preview(NOW)["rules"][0]["customers"]


@pytest.mark.crm(
    config={
        "crm": {
            "protect": {
                "retention": [{"name": "lost-only", "inactive_years": 5, "stages": ["lost"]}]
            }
        }
    }
)
def test_a_rule_limited_to_stages(crm, crm_clock):
    old, _, _, never, _ = _seed(crm, crm_clock)
    assert crm.protect.retention_preview(NOW)["rules"][0]["customers"] == []
    crm.customers.change_stage(never, "lost")  # a stage change is no activity of the customer
    assert crm.protect.retention_preview(NOW)["rules"][0]["customers"] == [never.id]
    crm.customers.change_stage(old, "lost")
    assert crm.protect.retention_preview(NOW)["rules"][0]["customers"] == [old.id, never.id]


@pytest.mark.crm(config=CONFIG)
def test_only_an_unrestricted_principal_with_pii_runs_retention(crm, crm_clock):
    old, *_ = _seed(crm, crm_clock)
    with pytest.raises(AccessDenied, match="cover every customer"):
        crm.as_("zhang").protect.retention_preview(NOW)
    with pytest.raises(AccessDenied, match="cover every customer"):
        crm.as_("zhang").protect.retention_apply(NOW)
    with pytest.raises(AccessDenied, match="needs 'pii' and 'write'"):
        crm.as_("audit").protect.retention_apply(NOW)
    assert crm.customers.get(old.id).name == "Old Wu"


def test_a_retention_rule_naming_an_unknown_stage_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown stage 'gone'"):
        from_dict(
            {
                "crm": {
                    "protect": {
                        "retention": [{"name": "r", "inactive_years": 3, "stages": ["gone"]}]
                    }
                }
            }
        )


@pytest.mark.crm(config=CONFIG)
def test_cli_retention_preview_and_apply_json(crm, crm_clock, crm_cli):
    old, _, _, never, _ = _seed(crm, crm_clock)
    preview = crm_cli("protect", "retention", "--preview", "--at", NOW.isoformat(), "--json")
    assert preview.exit_code == 0, preview
    assert preview.json()["total"] == 2
    applied = crm_cli("protect", "retention", "--apply", "--at", NOW.isoformat(), "--json")
    assert applied.exit_code == 0, applied
    assert applied.json()["rules"][0]["customers"] == [old.id, never.id]
    neither = crm_cli("protect", "retention")
    assert neither.exit_code == 1 and "give --preview or --apply" in neither.stderr
