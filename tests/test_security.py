"""Trust: backups, exports, masking and the right to be forgotten."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied, ValidationError
from crmcore.backup import backup, restore
from crmcore.cli.export import export_customers
from crmcore.schema import audit_log, inbound_messages


def test_backup_and_restore_round_trip(crm, tmp_path):
    a = crm.customers.add("Ann", phone="13800000001")
    crm.records.add_transaction(a, 1500)
    info = backup(crm.engine, tmp_path / "crm.backup")
    assert info["bytes"] > 0
    crm.customers.add("Added after the backup")
    crm.customers.update(a, name="Changed")
    restore(crm.engine, tmp_path / "crm.backup")
    assert [c.name for c in crm.customers.list()] == ["Ann"]
    assert crm.records.card(a)["stats"]["spend_cents"] == 1500


def test_backup_refuses_to_overwrite_and_restore_refuses_garbage(crm, tmp_path, crm_backend):
    (tmp_path / "exists").write_text("x")
    with pytest.raises(ValidationError, match="already exists"):
        backup(crm.engine, tmp_path / "exists")
    with pytest.raises(ValidationError, match="backup file not found"):
        restore(crm.engine, tmp_path / "missing")
    if crm_backend == "sqlite":
        (tmp_path / "garbage").write_bytes(b"this is not a database" * 100)
        with pytest.raises(ValidationError, match="not a SQLite backup"):
            restore(crm.engine, tmp_path / "garbage")
        crm.customers.add("still works")


def test_cli_backup_needs_admin(crm, crm_cli, tmp_path):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    refused = crm_cli("--as", "zhang", "db", "backup", str(tmp_path / "b"))
    assert refused.exit_code == 1 and "needs the 'admin' permission" in refused.stderr
    ok = crm_cli("db", "backup", str(tmp_path / "b"), "--json")
    assert ok.exit_code == 0 and ok.json()["bytes"] > 0


def test_export_needs_permission_masks_without_pii_and_is_audited(crm, tmp_path):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    crm.customers.add("Ann", phone="13812345678", email="ann@example.cn")
    with pytest.raises(AccessDenied, match="needs 'export'"):
        export_customers(crm.as_("zhang"), str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()
    out = export_customers(crm, str(tmp_path / "all.jsonl"), fmt="jsonl")
    row = json.loads((tmp_path / "all.jsonl").read_text().splitlines()[0])
    assert out["rows"] == 1 and row["phone"] == "+8613812345678"
    with crm.transaction(write=False):
        audited = crm.db.all(sa.select(audit_log).where(audit_log.c.action == "export"))
    assert audited[0].after["rows"] == 1 and audited[0].after["personal_data"] is True


def test_masked_export_for_a_principal_without_pii(crm_factory, tmp_path):
    roles = {"analyst": {"scope": "all", "permissions": ["read", "write", "export"]}}
    crm = crm_factory(
        config={
            "crm": {
                "roles": {
                    **roles,
                    "admin": {
                        "scope": "all",
                        "permissions": ["read", "write", "pii", "export", "admin", "audit"],
                    },
                }
            }
        }
    )
    crm.staff.add("ana", "Ana", roles=["analyst"])
    crm.customers.add("Ann", phone="13812345678", email="ann@example.cn")
    export_customers(crm.as_("ana"), str(tmp_path / "m.csv"))
    text = (tmp_path / "m.csv").read_text()
    assert "+86138****5678" in text and "a***@example.cn" in text and "13812345678" not in text


def test_forget_erases_personal_data_keeps_anonymous_transactions(crm):
    a = crm.customers.add("Wu Fang", phone="13812345678", email="wu@example.cn", external_id="C-9")
    crm.records.add_transaction(a, 2500)
    crm.records.add_interaction(a, "call", "lives at 5 Garden Road")
    crm.messages.enqueue("sms", body="Happy birthday Wu Fang", customer=a)
    crm.messages.receive_sms("13812345678", "I am Wu Fang, call me")
    crm.customers.forget(a)
    c = crm.customers.get(a.id)
    assert (c.name, c.phone, c.email, c.external_id) == (
        f"forgotten customer {a.id}",
        None,
        None,
        None,
    )
    assert crm.records.transactions(a)[0].amount_cents == 2500
    dump = json.dumps([e.to_json() for e in crm.records.timeline(a)], ensure_ascii=False)
    assert "Garden Road" not in dump and "Wu Fang" not in dump
    with crm.transaction(write=False):
        texts = crm.db.all(sa.select(inbound_messages.c.text, inbound_messages.c.from_address))
        audit_dump = json.dumps(
            [dict(r._mapping) for r in crm.db.all(sa.select(audit_log))], default=str
        )
    assert texts == [("[erased]", "[erased]")]
    assert "13812345678" not in audit_dump and "Wu Fang" not in audit_dump


def test_forget_needs_pii_permission(crm):
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    a = crm.customers.add("Ann")
    with pytest.raises(AccessDenied):
        crm.as_("audit").customers.forget(a)
    assert crm.customers.get(a.id).name == "Ann"
