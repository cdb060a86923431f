"""crm import customers: matching, attributes, validation, hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmcore import Attribute, PluginInfo, hookimpl
from crmcore.importer import ImportFailed, import_customers
from crmcore.schema import stage_changes
from crmcore.storage._driver import connection


def _write(tmp_path: Path, text: str, name: str = "c.csv") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


class Attrs:
    def __init__(self):
        self.batches = []

    @hookimpl
    def crm_plugin_info(self):
        return PluginInfo(version="1")

    @hookimpl
    def crm_customer_attributes(self):
        return [
            Attribute(name="attrs.shoe_size", schema={"type": "integer", "minimum": 20}),
            Attribute(name="attrs.vip", schema={"type": "boolean"}),
        ]

    @hookimpl
    def crm_customer_created_batch(self, crm, batch):
        self.batches.append((batch.first_id, batch.last_id, batch.count))


class OnlyCreated:
    def __init__(self):
        self.created = []

    @hookimpl
    def crm_customer_created(self, crm, customer):
        self.created.append((customer.id, customer.name))


def test_import_matches_by_external_id_phone_and_email(crm, tmp_path):
    old = crm.customers.add("Old", phone="13800000001", external_id="OLD")
    crm.customers.add("Mail", email="m@x.com")
    path = _write(
        tmp_path,
        "external_id,name,phone,email\n"
        "N1,New One,138 0000 0009,\n"
        "OLD,Old again,,\n"  # external id
        "N2,Same phone,+86-138-0000-0001,\n"  # phone, normalised
        "N3,Same mail,,M@X.com\n"  # email, normalised
        "N4,Twin,13800000009,\n",
    )  # phone of row 2 of this file
    s = import_customers(crm, path)
    assert (s["imported"], s["matched"], s["rejected"]) == (1, 4, 0)
    new = crm.customers.get("N1")
    assert new.phone == "+8613800000009" and new.stage == "prospect"
    assert crm.customers.get("OLD").id == old.id
    with crm.transaction(write=False):
        n = connection(crm.db).execute(
            select(func.count())
            .select_from(stage_changes)
            .where(stage_changes.c.customer_id == new.id)
        ).scalar()
    assert n == 1
    again = import_customers(crm, path)
    assert (again["imported"], again["matched"]) == (0, 5)


def test_invalid_customers_are_line_numbered(crm, tmp_path):
    path = _write(
        tmp_path, "external_id,name,phone,email\nA,Ann,12,\nB,,,\nC,Cy,,not-an-email\nD,Dee,,\n"
    )
    with pytest.raises(ImportFailed) as e:
        import_customers(crm, path)
    errs = e.value.summary["errors"]
    assert [x["line"] for x in errs] == [2, 3, 4]
    assert "phone" in errs[0]["message"] and "name: required" in errs[1]["message"]
    assert crm.customers.count() == 0
    s = import_customers(crm, path, skip_invalid=True, rejects=str(tmp_path / "rej.csv"))
    assert (s["imported"], s["rejected"]) == (1, 3)
    assert len((tmp_path / "rej.csv").read_text().splitlines()) == 4


def test_declared_attributes_are_validated_and_stored(crm_factory, tmp_path):
    plugin = Attrs()
    crm = crm_factory(plugins=["attrs"], extra_plugins={"attrs": plugin})
    path = _write(
        tmp_path,
        "external_id,name,attrs.shoe_size,attrs.vip\nA,Ann,42,yes\nB,Bob,12,\nC,Cy,x,\nD,Dee,,\n",
    )
    s = import_customers(crm, path, skip_invalid=True, batch_size=1)
    assert [e["line"] for e in s["errors"]] == [3, 4]
    assert "attrs.shoe_size" in s["errors"][0]["message"]
    assert crm.customers.get("A").attributes == {"attrs.shoe_size": 42, "attrs.vip": True}
    assert crm.customers.get("D").attributes == {}
    assert [b[2] for b in plugin.batches] == [1, 1]
    with pytest.raises(Exception, match="unknown column"):
        import_customers(crm, _write(tmp_path, "name,colour\nX,red\n", "u.csv"))


def test_singular_created_hook_is_called_per_customer(crm_factory, tmp_path):
    plugin = OnlyCreated()
    crm = crm_factory(plugins=["only"], extra_plugins={"only": plugin})
    import_customers(crm, _write(tmp_path, "name\nA\nB\nC\n"), batch_size=2)
    assert [n for _, n in plugin.created] == ["A", "B", "C"]


def test_cli(crm, crm_cli, tmp_path):
    r = crm_cli("import", "customers", _write(tmp_path, "external_id,name\nA,Ann\n"), "--json")
    assert r.exit_code == 0 and r.json()["imported"] == 1 and r.json()["matched"] == 0
