"""Encrypted attributes: the database never holds the plain value (row, audit,
file); reads decrypt for principals with 'pii' and mask for others; keys
rotate set-wise; bad keys and designations are refused."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import Loyalty
from sqlalchemy import select

from crmcore import AccessDenied, ConfigError
from crmcore.protect.crypto import KEYS_ENV, DecryptionError, new_key_line
from crmcore.schema import audit_log, customers

SECRET = "110105199001011234"
FIELD = "loyalty.id_number"
CONFIG = {"crm": {"protect": {"encrypted": [f"customers.attributes.{FIELD}"]}}}


@pytest.fixture
def keys(monkeypatch):
    line = new_key_line("k1")
    monkeypatch.setenv(KEYS_ENV, line)
    return line


@pytest.fixture
def crm(crm_factory, keys):
    made = crm_factory(plugins=["loyalty"], config=CONFIG, extra_plugins={"loyalty": Loyalty()})
    made.staff.add("zhang", "Zhang", roles=["rep"])
    made.staff.add("wang", "Wang", roles=["rep"])
    made.staff.add("audit", "Auditor", roles=["auditor"])
    return made


def _raw_attributes(crm, cid):
    with crm.engine.connect() as conn:
        return conn.execute(
            select(customers.c.attributes).where(customers.c.id == cid)
        ).scalar_one()


def _raw_text_everywhere(crm):
    """Every customers and audit_log row as the database stores its text."""
    with crm.engine.connect() as conn:
        rows = conn.execute(select(customers)).all() + conn.execute(select(audit_log)).all()
    return repr(rows)


def test_the_database_never_holds_the_plain_value(crm, tmp_path):
    c = crm.customers.add("Ann", owner="zhang", attributes={FIELD: SECRET, "loyalty.level": 2})
    stored = _raw_attributes(crm, c.id)
    assert stored[FIELD].startswith("enc:v1:k1:") and stored["loyalty.level"] == 2
    crm.customers.update(c.id, attributes={FIELD: "220105199202021111"})
    everything = _raw_text_everywhere(crm)
    assert SECRET not in everything and "220105199202021111" not in everything
    if crm.engine.dialect.name == "sqlite":
        path = crm.engine.url.database
        blob = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
        assert SECRET.encode() not in blob and b"220105199202021111" not in blob


def test_reads_decrypt_for_pii_and_mask_for_others(crm):
    c = crm.customers.add("Ann", owner="zhang", attributes={FIELD: SECRET})
    assert crm.customers.get(c.id).attributes[FIELD] == SECRET
    assert crm.as_("zhang").customers.get(c.id).attributes[FIELD] == SECRET
    assert [x.attributes[FIELD] for x in crm.customers.list()] == [SECRET]
    assert crm.records.card(c.id)["customer"].attributes[FIELD] == SECRET
    assert crm.as_("audit").customers.get(c.id).attributes[FIELD] == "****"


def test_a_rep_cannot_read_or_change_another_reps_encrypted_value(crm):
    from crmcore import NotFound

    c = crm.customers.add("Ann", owner="wang", attributes={FIELD: SECRET})
    with pytest.raises(NotFound):
        crm.as_("zhang").customers.get(c.id)
    with pytest.raises(NotFound):
        crm.as_("zhang").customers.update(c.id, attributes={FIELD: "x"})
    assert crm.customers.get(c.id).attributes[FIELD] == SECRET


def test_an_invalid_value_is_refused_before_anything_is_written(crm):
    from crmcore import ValidationError

    with pytest.raises(ValidationError):
        crm.customers.add("Ann", attributes={FIELD: 12})
    assert crm.customers.list() == []


def test_removing_the_value(crm):
    c = crm.customers.add("Ann", attributes={FIELD: SECRET})
    crm.customers.update(c.id, attributes={FIELD: None})
    assert FIELD not in _raw_attributes(crm, c.id)


def test_forget_erases_the_encrypted_value(crm):
    c = crm.customers.add("Ann", attributes={FIELD: SECRET})
    crm.customers.forget(c.id)
    assert _raw_attributes(crm, c.id) == {}


def test_rotate_key_reencrypts_with_the_current_key(crm, monkeypatch, keys, crm_cli):
    ids = [crm.customers.add(f"C{i}", attributes={FIELD: f"{SECRET}{i}"}).id for i in range(3)]
    crm.customers.add("Plain")
    new = new_key_line("k2")
    monkeypatch.setenv(KEYS_ENV, f"{new},{keys}")
    crm.sealing._keys = None  # the keys are read once per CRM: a new process reads the new ones
    out = crm_cli("protect", "rotate-key", "--json")
    assert out.exit_code == 0, out
    assert out.json() == {"key": "k2", "customers": 3}
    for i, cid in enumerate(ids):
        assert _raw_attributes(crm, cid)[FIELD].startswith("enc:v1:k2:")
        assert crm.customers.get(cid).attributes[FIELD] == f"{SECRET}{i}"
    assert crm_cli("protect", "rotate-key", "--json").json()["customers"] == 0
    # the old key may go now
    monkeypatch.setenv(KEYS_ENV, new)
    crm.sealing._keys = None
    assert crm.customers.get(ids[0]).attributes[FIELD] == f"{SECRET}0"


def test_rotate_key_needs_admin_and_pii_over_everyone(crm):
    with pytest.raises(AccessDenied, match="re-encrypt"):
        crm.as_("zhang").protect.rotate_key()


def test_a_value_sealed_with_an_unknown_key_is_a_clear_error(crm, monkeypatch):
    c = crm.customers.add("Ann", attributes={FIELD: SECRET})
    monkeypatch.setenv(KEYS_ENV, new_key_line("other"))
    crm.sealing._keys = None
    with pytest.raises(DecryptionError, match="key 'k1', which is not configured"):
        crm.customers.get(c.id)


def test_a_tampered_value_does_not_decrypt(crm):
    c = crm.customers.add("Ann", attributes={FIELD: SECRET})
    stored = _raw_attributes(crm, c.id)[FIELD]
    swapped = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with crm.engine.begin() as conn:
        conn.execute(
            customers.update().where(customers.c.id == c.id).values(attributes={FIELD: swapped})
        )
    with pytest.raises(DecryptionError, match="does not decrypt"):
        crm.customers.get(c.id)


def test_only_personal_attributes_can_be_designated(crm_factory, keys):
    for entry, message in [
        ("customers.phone", "only customer attributes can be encrypted"),
        ("customers.attributes.loyalty.level", "is not declared personal"),
        ("customers.attributes.nope", "no enabled plugin declares attribute 'nope'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            crm_factory(
                plugins=["loyalty"],
                config={"crm": {"protect": {"encrypted": [entry]}}},
                extra_plugins={"loyalty": Loyalty()},
            )


def test_the_key_file_must_be_private(crm_factory, tmp_path, monkeypatch):
    monkeypatch.delenv(KEYS_ENV, raising=False)
    key_file = tmp_path / "keys"
    key_file.write_text(new_key_line("f1") + "\n")
    key_file.chmod(0o644)
    cfg = {
        "crm": {
            "protect": {"encrypted": [f"customers.attributes.{FIELD}"], "key_file": str(key_file)}
        }
    }
    crm = crm_factory(plugins=["loyalty"], config=cfg, extra_plugins={"loyalty": Loyalty()})
    with pytest.raises(ConfigError, match="readable by others"):
        crm.customers.add("Ann", attributes={FIELD: SECRET})
    key_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    crm.sealing._keys = None
    c = crm.customers.add("Ann", attributes={FIELD: SECRET})
    assert crm.customers.get(c.id).attributes[FIELD] == SECRET


def test_the_import_refuses_a_column_of_an_encrypted_attribute(crm, tmp_path):
    from crmcore import ValidationError
    from crmcore.importer import import_customers

    path = tmp_path / "c.csv"
    path.write_text(f"external_id,name,{FIELD}\nK-1,Ann,{SECRET}\n")
    with pytest.raises(ValidationError, match="is an encrypted attribute"):
        import_customers(crm, str(path))
    assert crm.customers.list() == []
    assert SECRET not in _raw_text_everywhere(crm)
