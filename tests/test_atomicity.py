"""One transaction per operation: a raising hook leaves nothing behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crmcore import ValidationError, hookimpl
from crmcore.schema import audit_log, customers, messages, stage_changes, timeline_entries
from crmcore.storage._driver import connection


class Exploding:
    """Writes through the CRM (outbox, timeline), then raises."""

    @hookimpl
    def crm_customer_created(self, crm, customer):
        crm.messages.enqueue("sms", body="welcome", customer=customer, key=f"welcome-{customer.id}")
        crm.records.add_timeline_entry(customer, "note", "welcomed")
        raise RuntimeError("plugin bug")


def counts(crm):
    with crm.transaction(write=False):
        return {
            t.name: crm.db.scalar(select(func.count()).select_from(t))
            for t in (customers, messages, stage_changes, timeline_entries, audit_log)
        }


def test_a_raising_after_write_hook_rolls_back_everything(crm_factory):
    crm = crm_factory(plugins=["exploding"], extra_plugins={"exploding": Exploding()})
    before = counts(crm)
    with pytest.raises(RuntimeError, match="plugin bug"):
        crm.customers.add("Ann", phone="13800000001")
    assert counts(crm) == before
    assert before["customers"] == 0


def test_a_validation_hook_refuses_before_anything_is_written(crm_factory):
    class Strict:
        @hookimpl
        def crm_validate_transaction(self, crm, transaction):
            if transaction.amount_cents > 100_00:
                raise ValidationError("amount above the till limit")

    crm = crm_factory(plugins=["strict"], extra_plugins={"strict": Strict()})
    c = crm.customers.add("Bo")
    with pytest.raises(ValidationError, match="till limit"):
        crm.records.add_transaction(c, 500_00)
    assert crm.records.transactions(c) == []
    crm.records.add_transaction(c, 50_00)
    assert [t.amount_cents for t in crm.records.transactions(c)] == [50_00]


def test_operations_inside_one_transaction_block_commit_or_fail_together(crm):
    with pytest.raises(ValidationError):
        with crm.transaction():
            crm.customers.add("First")
            crm.customers.add("")  # refused: name required
    assert crm.customers.list() == []


def test_after_commit_callbacks_run_only_on_commit(crm):
    ran = []
    with crm.transaction():
        crm.after_commit(lambda: ran.append("committed"))
    assert ran == ["committed"]
    with pytest.raises(ValidationError):
        with crm.transaction():
            crm.after_commit(lambda: ran.append("rolled back"))
            raise ValidationError("no")
    assert ran == ["committed"]


def test_a_non_durable_transaction_is_still_one_transaction(crm):
    """``durable=False`` relaxes only the sync at commit (PostgreSQL: for that
    transaction alone); a raise still rolls everything back."""
    import pytest

    def level(db):
        if crm.engine.dialect.name == "postgresql":
            return connection(db).exec_driver_sql("SHOW synchronous_commit").scalar()
        return None

    with crm.transaction(durable=False) as db:
        assert level(db) in ("off", None)
    with crm.transaction() as db:
        assert level(db) in ("on", None)
    with pytest.raises(RuntimeError), crm.transaction(durable=False):
        crm.customers.add("Lost")
        raise RuntimeError("boom")
    assert [c.name for c in crm.customers.list()] == []
