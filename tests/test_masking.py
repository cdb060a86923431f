"""Personal data is masked for principals without 'pii' in every CLI output."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmcore import PluginError, hookimpl
from crmcore.masking import HIDDEN, Masker, mask, pii_kind
from crmcore.plugins import installed

PLUGINS = {"retail", "utility", "insurance", "real_estate"}


# -- the masking function ---------------------------------------------------------


def test_mask_by_kind_and_idempotent():
    assert mask("+8613812345678", "phone") == "+86138****5678"
    assert mask("ann@example.cn", "email") == "a***@example.cn"
    assert mask("ann@example.cn", "contact") == "a***@example.cn"
    assert mask("+8613812345678", "contact") == "+86138****5678"
    assert mask("110101199001011234", "id_number") == "110***********1234"
    assert mask("1990-01-01") == HIDDEN
    assert mask({"a": 1}) == HIDDEN
    assert mask(None, "phone") is None and mask("", "email") == ""
    for value, kind in (("+8613812345678", "phone"), ("a@b.cn", "email"), ("x", True)):
        assert mask(mask(value, kind), kind) == mask(value, kind)


def test_a_column_with_an_unknown_pii_kind_is_a_plugin_error():
    with pytest.raises(PluginError, match=r"info\['pii'\] = 'secret'; expected True or one of"):
        pii_kind(sa.Column("x", sa.String, info={"pii": "secret"}))


def test_generic_column_names_mask_only_in_their_own_table():
    personal = sa.Table("p", sa.MetaData(), sa.Column("value", sa.String, info={"pii": "contact"}))
    plain = sa.Table("q", sa.MetaData(), sa.Column("value", sa.String))
    masker = Masker([personal, plain], [], active=True)
    assert masker.output({"value": "a@b.cn"}) == {"value": "a@b.cn"}
    assert masker.row("p", {"value": "a@b.cn"}) == {"value": "a***@b.cn"}
    assert Masker([personal, plain], [], active=False).row("p", {"value": "a@b.cn"}) == {
        "value": "a@b.cn"
    }


# -- plugin-declared personal columns and attributes ---------------------------------------

CARDS = sa.Table(
    "cards_x",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer),
    sa.Column("id_card", sa.String(32), info={"pii": "id_number"}),
    sa.Column("home", sa.String(200), info={"pii": True}),
    sa.Column("colour", sa.String(20)),
)


class Cards:
    @hookimpl
    def crm_tables(self):
        return [CARDS]

    @hookimpl
    def crm_customer_attributes(self):
        from crmcore import Attribute

        return [Attribute(name="cards.birthday", pii=True), Attribute(name="cards.size")]

    @hookimpl
    def crm_cli_commands(self):
        import click

        from crmcore.cli import JSON_OPTION, emit, pass_crm

        @click.command("cards")
        @JSON_OPTION
        @pass_crm
        def cards(crm: Any, as_json: bool) -> None:
            with crm.transaction(write=False):
                rows = [dict(r._mapping) for r in crm.db.execute(sa.select(CARDS))]
            emit(rows, as_json, lambda rs: "\n".join(f"{r['id_card']} {r['home']}" for r in rs))

        return [cards]


@pytest.fixture
def cards_crm(crm_factory):
    crm = crm_factory(plugins=["cards"], extra_plugins={"cards": Cards()})
    crm.staff.add("aud", "Auditor", roles=["auditor"])
    crm.staff.add("root", "Root", roles=["admin"])
    c = crm.customers.add(
        "Ann",
        phone="13812345678",
        email="ann@example.cn",
        attributes={"cards.birthday": "1990-04-01", "cards.size": "L"},
    )
    with crm.transaction(command="cards add"):
        crm.db.execute(
            CARDS.insert().values(
                customer_id=c.id, id_card="110101199004011234", home="1 Long Road", colour="red"
            )
        )
    crm.customers.update(c, phone="13987654321", attributes={"cards.birthday": "1990-04-02"})
    return crm


RAW = (
    "13812345678",
    "13987654321",
    "ann@example.cn",
    "1990-04-01",
    "1990-04-02",
    "110101199004011234",
    "1 Long Road",
)


@pytest.mark.parametrize(
    "args", [["cards"], ["audit"], ["customer", "show", "1"], ["customer", "list"]]
)
def test_plugin_columns_attributes_and_audit_values_are_masked(cards_crm, crm_cli, args):
    for extra in ([], ["--json"]):
        out = crm_cli("--as", "aud", *args, *extra, crm=cards_crm)
        assert out.exit_code == 0, out
        assert [v for v in RAW if v in out.stdout] == []
    admin = crm_cli("--as", "root", *args, "--json", crm=cards_crm).stdout
    assert any(v in admin for v in RAW)  # with 'pii' the values are shown


def test_audit_values_are_masked_by_the_table_they_are_about(cards_crm):
    rows = cards_crm.as_("aud").admin.audit_trail(entity="cards_x")
    assert rows[0]["after"]["id_card"] == "110***********1234"
    assert rows[0]["after"]["home"] == HIDDEN and rows[0]["after"]["colour"] == "red"
    update = [r for r in cards_crm.as_("aud").admin.audit_trail(1) if r["action"] == "update"][-1]
    assert update["before"]["phone"] == "+86138****5678"
    assert update["before"]["attributes"]["cards.birthday"] == HIDDEN
    assert update["before"]["attributes"]["cards.size"] == "L"
    raw = [r for r in cards_crm.admin.audit_trail(1) if r["action"] == "update"][-1]
    assert raw["before"]["phone"] == "+8613812345678"  # the system has 'pii'


# -- every command that prints customer data, on the demo ------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from crmcore import CRM
    from crmcore.access import SYSTEM
    from crmcore.config import load
    from crmcore.demo import run_demo

    if not PLUGINS <= set(installed()):
        pytest.skip("the four shipped plugins are not installed")
    directory = tmp_path_factory.mktemp("masking") / "demo"
    run_demo(directory)
    config = directory / "crm.toml"
    crm = CRM(load(config), principal=SYSTEM)
    crm.staff.add("auditor1", "Auditor", roles=["auditor"])
    crm.engine.dispose()
    return {"config": str(config), "db": str(directory / "crm.db")}


def _personal_values(db: sqlite3.Connection) -> set[str]:
    """Every customer's phone (E.164 and national), e-mail, birthday, and the
    other personal values the plugins hold, as stored."""

    def col(sql: str) -> set[str]:
        return {str(r[0]) for r in db.execute(sql) if r[0] not in (None, "")}

    values = col("SELECT phone FROM customers") | col("SELECT email FROM customers")
    values |= {v[3:] for v in values if v.startswith("+86")}
    values |= col("SELECT value FROM contact_points")
    for (doc,) in db.execute("SELECT attributes FROM customers"):
        values |= {str(json.loads(doc)[k]) for k in json.loads(doc) if k.endswith("birth_date")}
    values |= col("SELECT birthday FROM retail_members")
    values |= col("SELECT contact_phone FROM retail_waitlist")
    values |= col("SELECT employer FROM retail_fuel_profiles")
    values |= col("SELECT reply_phone FROM insurance_visits")
    values |= col("SELECT address FROM utility_service_points")
    return values


def _commands(db: sqlite3.Connection) -> list[list[str]]:
    def col(sql: str) -> list[str]:
        return [str(r[0]) for r in db.execute(sql)]

    commands = [
        ["customer", "list"],
        ["audit"],
        ["ticket", "list"],
        ["reminder", "due"],
        ["outbox", "list"],
        ["retail", "member", "list"],
        ["retail", "dm", "list"],
        ["retail", "waitlist", "list", "--all"],
        ["retail", "fuel", "ratio"],
        ["retail", "fuel", "callbacks", "--all"],
        ["retail", "tiers", "list"],
        ["retail", "member-day", "status"],
        ["retail", "survey", "report"],
        ["insurance", "policy", "list"],
        ["insurance", "visit", "list"],
        ["insurance", "replies"],
        ["insurance", "report"],
        ["insurance", "opportunities"],
        ["insurance", "orphans", "list"],
        ["insurance", "vip", "list"],
        ["utility", "point", "list"],
        ["utility", "device", "list"],
        ["utility", "ticket", "list"],
        ["utility", "arrears"],
        ["real-estate", "unit", "list"],
        ["real-estate", "owner", "list"],
        ["real-estate", "buyer", "list"],
        ["real-estate", "request", "list"],
        ["real-estate", "incident", "list"],
        ["real-estate", "report", "ages"],
        ["real-estate", "report", "compliance"],
        ["real-estate", "report", "satisfaction"],
    ]
    for ref in col("SELECT external_id FROM customers WHERE external_id IS NOT NULL"):
        commands += [
            ["customer", "show", ref],
            ["timeline", ref],
            ["relationship", "list", ref],
            ["audit", ref],
            ["insurance", "profile", ref],
            ["utility", "advice", ref],
        ]
    members = "SELECT c.external_id FROM customers c JOIN retail_members m ON m.customer_id = c.id"
    for ref in col(members):
        commands += [["retail", "member", "show", ref], ["retail", "points", "show", ref]]
    commands += [
        ["retail", "fuel", "show", p] for p in col("SELECT plate FROM retail_fuel_profiles")
    ]
    commands += [["ticket", "show", i] for i in col("SELECT id FROM tickets")]
    commands += [["utility", "bill", "show", b] for b in col("SELECT bill_no FROM utility_bills")]
    commands += [["utility", "device", "history", i] for i in col("SELECT id FROM utility_devices")]
    tickets = "SELECT ticket_id FROM utility_service_tickets"
    commands += [["utility", "ticket", "show", i] for i in col(tickets)]
    commands += [
        ["real-estate", "request", "show", i] for i in col("SELECT id FROM real_estate_requests")
    ]
    commands += [
        ["real-estate", "incident", "show", i] for i in col("SELECT id FROM real_estate_incidents")
    ]
    return commands


def test_the_auditor_sees_no_personal_value_in_any_command(demo):
    from crmcore.cli import cli

    db = sqlite3.connect(demo["db"])
    personal = _personal_values(db)
    commands = _commands(db)
    db.close()
    # the demo has every kind of value the test looks for
    assert len(personal) > 15 and any("@" in v for v in personal)
    assert any(v.count("-") == 2 and v[:2] in ("19", "20") for v in personal)
    runner = CliRunner()
    leaks = []
    for command in commands:
        for extra in ([], ["--json"]):
            args = ["--config", demo["config"], "--as", "auditor1", *command, *extra]
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, (command, result.output)
            output = result.stdout + result.stderr
            leaks += [(" ".join(command + extra), v) for v in personal if v in output]
    assert leaks == []


def test_with_pii_the_same_commands_show_the_values(demo):
    from crmcore.cli import cli

    runner = CliRunner()
    command = ["retail", "member", "show", "C-1001", "--json"]
    shown = runner.invoke(cli, ["--config", demo["config"], "--as", "admin", *command])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["birthday"].startswith("1980-")
    masked = runner.invoke(cli, ["--config", demo["config"], "--as", "auditor1", *command])
    assert json.loads(masked.stdout)["birthday"] == HIDDEN


def test_every_shipped_plugin_declares_its_personal_columns():
    from crmcore.plugins import _load

    declared: dict[str, set[str]] = {}
    for name in PLUGINS & set(installed()):
        plugin = _load(name, installed()[name])
        declared[name] = {
            f"{t.name}.{c.name}"
            for t in plugin.crm_tables()
            for c in t.columns
            if pii_kind(c) is not None
        }
    assert {"retail_members.birthday", "retail_waitlist.contact_phone"} <= declared["retail"]
    assert "utility_service_points.address" in declared["utility"]
    assert "insurance_visits.reply_phone" in declared["insurance"]
