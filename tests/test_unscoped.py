"""``crm.db.unscoped(reason)``: the one sanctioned way for a rule to read the whole
base on behalf of a restricted principal; audited, and the scope comes back after."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied, CRMError
from crmcore.schema import audit_log, customers


@pytest.fixture
def rep_crm(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    crm.customers.add("Mine", owner="zhang")
    crm.customers.add("Not mine")
    return crm


def _names(db):
    return sorted(r[0] for r in db.execute(sa.select(customers.c.name)))


def test_the_block_reads_the_whole_base_and_the_scope_comes_back(rep_crm):
    zhang = rep_crm.as_("zhang")
    with zhang.transaction() as db:
        assert _names(db) == ["Mine"]
        with db.unscoped("a rule about the whole base"):
            assert _names(db) == ["Mine", "Not mine"]
        assert _names(db) == ["Mine"]


def test_entering_the_block_is_audited_with_its_reason(rep_crm):
    with rep_crm.as_("zhang").transaction() as db:
        with db.unscoped("count the building's requests"):
            pass
    with rep_crm.transaction(write=False) as db:
        rows = db.execute(
            sa.select(audit_log.c.staff_id, audit_log.c.after).where(
                audit_log.c.action == "unscoped"
            )
        ).all()
    assert [r.after for r in rows] == [{"reason": "count the building's requests"}]
    assert rows[0].staff_id is not None  # the acting rep, not the system


def test_it_needs_a_reason_and_the_write_permission(rep_crm):
    with rep_crm.as_("zhang").transaction() as db:
        with pytest.raises(CRMError, match="give the reason"):
            with db.unscoped("  "):
                pass
    with rep_crm.as_("audit").transaction(write=False) as db:
        with pytest.raises(AccessDenied, match="the change was refused"):
            with db.unscoped("look around"):
                pass
