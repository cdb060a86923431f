"""The audit trail: every change, in the same transaction, with before -> after."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crmcore import ValidationError, hookimpl
from crmcore.schema import audit_log


def test_changes_are_audited_with_who_what_before_after_and_command(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    c = crm.customers.add("Ann", owner="zhang")
    zhang = crm.as_("zhang", command="crm customer update")
    zhang.customers.update(c, name="Anne")
    rows = crm.admin.audit_trail(c)
    update = [r for r in rows if r["action"] == "update"][-1]
    assert update["before"] == {"name": "Ann"}  # only what changed (the clock stands still)
    assert update["after"]["name"] == "Anne"
    assert update["staff_id"] == crm.staff.get("zhang").id
    assert update["command"] == "crm customer update"
    assert rows[0]["action"] == "insert" and rows[0]["entity"] == "customers"


def test_plugin_writes_are_audited_too(crm_factory):
    table = sa.Table(
        "notes_x",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer),
        sa.Column("text", sa.String(50)),
    )

    class Notes:
        @hookimpl
        def crm_tables(self):
            return [table]

    crm = crm_factory(plugins=["notes"], extra_plugins={"notes": Notes()})
    c = crm.customers.add("Ann")
    with crm.transaction(command="notes add"):
        crm.db.execute(table.insert().values(customer_id=c.id, text="hello"))
    with crm.transaction(command="notes edit"):
        crm.db.execute(sa.update(table).where(table.c.customer_id == c.id).values(text="bye"))
    rows = crm.admin.audit_trail(c, entity="notes_x")
    assert [(r["action"], r["command"]) for r in rows] == [
        ("insert", "notes add"),
        ("update", "notes edit"),
    ]
    assert rows[1]["before"] == {"text": "hello"} and rows[1]["after"] == {"text": "bye"}


def test_no_audit_row_without_its_change(crm):
    with pytest.raises(ValidationError):
        with crm.transaction():
            crm.customers.add("Ann")
            raise ValidationError("abort")
    with crm.transaction(write=False):
        assert crm.db.scalar(sa.select(sa.func.count()).select_from(audit_log)) == 0


def test_audit_needs_the_audit_permission(crm):
    from crmcore import AccessDenied

    crm.staff.add("zhang", "Zhang", roles=["rep"])
    with pytest.raises(AccessDenied, match="needs 'audit'"):
        crm.as_("zhang").admin.audit_trail()


def test_cli_audit_json(crm, crm_cli):
    c = crm.customers.add("Ann", external_id="A1")
    crm.customers.change_stage(c, "new", reason="bought")
    rows = crm_cli("audit", "A1", "--json").json()
    assert any(r["entity"] == "stage_changes" for r in rows)
    assert all({"at", "staff_id", "command", "action", "before", "after"} <= set(r) for r in rows)
