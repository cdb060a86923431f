"""Inbound messages are the gateway's to report: only a principal with 'admin' hands
one in, and every one is stored and audited with who or what delivered it."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied, ValidationError
from crmcore.access import Principal
from crmcore.plugins import installed
from crmcore.schema import audit_log, inbound_messages

needs_insurance = pytest.mark.skipif(
    "insurance" not in installed(), reason="the insurance plugin is not installed"
)


def _world(crm):
    from crm_insurance import visits

    crm.add_staff("boss", "Boss", roles=["admin"])
    crm.add_staff("rep_a", "Rep A", roles=["rep"], team="north")
    crm.add_staff("rep_b", "Rep B", roles=["rep"], team="south")
    theirs = crm.add_customer("B's customer", phone="139 0000 1111", owner="rep_b")
    visit = visits.record_visit(crm.as_("rep_b"), theirs, at=crm.now() - dt.timedelta(hours=1))
    return theirs, visit


def _rows(crm, table, *where):
    with crm.transaction(write=False):
        return [r._asdict() for r in crm.db.conn.execute(sa.select(table).where(*where))]


@needs_insurance
def test_a_rep_cannot_forge_a_customers_satisfaction_sms(crm_factory, crm_cli):
    from crm_insurance import visits

    crm = crm_factory(plugins=["insurance"])
    theirs, visit = _world(crm)
    forged = ("sms", "receive", "--from", "139 0000 1111", "--text", "1 very dissatisfied")
    for who in ("rep_a", "rep_b"):
        result = crm_cli("--as", who, *forged, crm=crm)
        assert result.exit_code == 1, result
        assert result.stderr.strip() == (
            f"error: {who} may not hand in inbound messages: needs the 'admin' permission "
            "(they are the SMS gateway's to report)"
        )
        assert result.stdout == ""
    assert _rows(crm, inbound_messages) == []
    assert visits.list_visits(crm)[0]["status"] == "pending"
    with pytest.raises(AccessDenied, match="needs the 'admin' permission"):
        crm.as_("rep_a").receive_sms("139 0000 1111", "5")


@needs_insurance
def test_every_inbound_message_is_audited_with_who_delivered_it(crm_factory, crm_cli):
    from crm_insurance import visits

    crm = crm_factory(plugins=["insurance"])
    theirs, visit = _world(crm)
    boss = crm.get_staff("boss")
    out = crm_cli("--as", "boss", "sms", "receive", "--from", "13900001111", "--text", "5", crm=crm)
    assert out.exit_code == 0, out
    assert out.stdout.startswith("stored message 1 (delivered by boss); insurance: verified")
    assert visits.list_visits(crm)[0]["status"] == "verified"
    gateway = crm.receive_sms("13900002222", "hello", delivered_by="sms-gateway")
    assert gateway["delivered_by"] == "sms-gateway"

    stored = _rows(crm, inbound_messages)
    assert [(m["id"], m["delivered_by"]) for m in stored] == [(1, "boss"), (2, "sms-gateway")]
    receipts = _rows(crm, audit_log, audit_log.c.entity == "inbound_messages")
    assert [(r["entity_id"], r["action"], r["staff_id"]) for r in receipts] == [
        ("1", "receive", boss.id),
        ("2", "receive", None),
    ]
    assert receipts[0]["after"]["delivered_by"] == "boss"
    assert receipts[0]["customer_id"] == theirs.id
    assert receipts[1]["after"]["delivered_by"] == "sms-gateway"
    # what the plugin changed while routing is recorded under the deliverer, not the system
    routed = _rows(crm, audit_log, audit_log.c.entity == "insurance_visits")
    assert routed[-1]["action"] == "update" and routed[-1]["staff_id"] == boss.id


def test_delivered_by_is_checked(crm):
    for bad, message in (
        ("", "delivered_by: give the gateway's channel name"),
        ("x" * 65, "delivered_by: 65 characters; at most 64"),
        ("gate\x07way", "delivered_by: contains control characters"),
    ):
        with pytest.raises(ValidationError, match=message):
            crm.receive_sms("13900001111", "hi", delivered_by=bad)
    assert _rows(crm, inbound_messages) == []


@needs_insurance
def test_what_plugins_report_is_not_shown_to_a_caller_who_may_not_see_it(crm_factory):
    crm = crm_factory(plugins=["insurance"])
    theirs, _ = _world(crm)
    boss = crm.get_staff("boss")
    # an admin permission given to a role with only its own customers in view
    narrow = Principal(
        staff_id=boss.id,
        key="boss",
        roles=("desk",),
        scope="own",
        permissions=frozenset({"read", "write", "admin"}),
    )
    out = crm.as_(narrow).receive_sms("13900001111", "5")
    assert out["claimed"] == 1 and out["routed"] == [] and out["customer_id"] is None
    full = crm.receive_sms("13900001111", "5")  # the system sees what happened
    assert full["customer_id"] == theirs.id and "already verified" in full["routed"][0]


def test_a_database_before_crmcore_0008_gets_the_delivered_by_column(crm_backend, tmp_path):
    from crmcore import CRM
    from crmcore.access import SYSTEM
    from crmcore.config import from_dict
    from crmcore.testing import fresh_database, migrate_to

    url = fresh_database(crm_backend, tmp_path, "before_0008")
    crm = CRM(from_dict({"crm": {"database": url}}), principal=SYSTEM)
    migrate_to(crm, "crmcore_0007")  # what crmcore_0007 left behind
    assert "delivered_by" not in {
        c["name"] for c in sa.inspect(crm.engine).get_columns("inbound_messages")
    }
    crm.upgrade()
    assert "delivered_by" in {
        c["name"] for c in sa.inspect(crm.engine).get_columns("inbound_messages")
    }
    crm.receive_sms("13900001111", "hi", delivered_by="sms-gateway")
    assert [m["delivered_by"] for m in _rows(crm, inbound_messages)] == ["sms-gateway"]
    crm.engine.dispose()
