"""Start-up checks: a schema behind the code or an enabled plugin stops every
command that uses the database (naming ``crm db upgrade``); a section of a
disabled plugin is a one-line warning; attribute names carry the plugin's
prefix; a misspelt hook names the plugin and its distribution."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmcore import CRM, Attribute, PluginError, hookimpl
from crmcore import migrate as migrate_mod
from crmcore.access import SYSTEM
from crmcore.cli import cli
from crmcore.config import from_dict
from crmcore.errors import SchemaError
from crmcore.plugins import build

pytest.importorskip("crm_retail")
BEHIND_RETAIL = (
    "error: the database's schema is behind the code for plugin 'retail': run `crm db upgrade`"
)


@pytest.fixture
def fresh_url(crm_backend: str, tmp_path: Path) -> str:
    """A database of this test alone, without any table."""
    if crm_backend == "sqlite":
        return f"sqlite:///{tmp_path}/fresh.db"
    from crmcore.testing import POSTGRES_ENV, _reset_schema, _with_search_path

    schema = f"crmtest_startup_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    _reset_schema(os.environ[POSTGRES_ENV], schema)
    return _with_search_path(os.environ[POSTGRES_ENV], schema)


def _crm(url: str, plugins: list[str]) -> Any:
    return CRM(from_dict({"crm": {"database": url, "plugins": plugins}}), principal=SYSTEM)


@pytest.fixture
def core_only(fresh_url: str) -> Any:
    """A database with the core's schema and one customer, no plugin's tables."""
    crm = _crm(fresh_url, [])
    crm.admin.upgrade()
    crm.customers.add("Wu Fang")
    yield crm
    crm.engine.dispose()


def test_an_enabled_plugin_without_its_migrations_stops_commands(core_only, crm_cli):
    retail = _crm(core_only.config.database, ["retail"])
    for args in (["timeline", "1"], ["customer", "list"], ["retail", "member", "list"]):
        result = crm_cli(*args, crm=retail)
        assert (result.exit_code, result.stderr.strip(), result.stdout) == (1, BEHIND_RETAIL, "")
    upgraded = crm_cli("db", "upgrade", crm=retail)  # the way out is not refused
    assert upgraded.exit_code == 0, upgraded.stderr
    shown = crm_cli("timeline", "1", crm=retail)
    assert shown.exit_code == 0, shown.stderr
    retail.engine.dispose()


def test_a_core_schema_behind_the_code_stops_commands(core_only, crm_cli):
    with core_only.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'crmcore_0007'"))
    result = crm_cli("customer", "list", crm=core_only)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: the database's schema is behind the code for the core: run `crm db upgrade`"
    )
    if core_only.engine.dialect.name == "sqlite":  # copying the database first is allowed
        target = Path(core_only.engine.url.database).with_name("before-upgrade.db")
        backup = crm_cli("db", "backup", str(target), crm=core_only)
        assert backup.exit_code == 0, backup.stderr
        assert target.exists()


def test_a_database_without_a_schema_says_how_to_create_it(fresh_url):
    crm = _crm(fresh_url, [])
    with pytest.raises(SchemaError, match=r"^the database has no schema yet: run `crm db upgrade`"):
        crm.admin.check_schema()
    crm.engine.dispose()


def test_a_schema_newer_than_the_code_is_named(core_only):
    with core_only.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'crmcore_9999'"))
    with pytest.raises(SchemaError, match=r"\(crmcore_9999\) is newer than this crmcore"):
        core_only.admin.check_schema()


def test_the_schema_is_read_once_per_crm(core_only, monkeypatch):
    calls = []
    real = migrate_mod.schema_problem
    monkeypatch.setattr(migrate_mod, "schema_problem", lambda *a: calls.append(1) or real(*a))
    crm = _crm(core_only.config.database, [])
    crm.admin.check_schema()
    crm.admin.check_schema()
    assert calls == [1]
    crm.engine.dispose()


def test_an_up_to_date_schema_passes(crm):
    crm.admin.check_schema()  # the fixture's database is migrated: nothing raised


def test_a_section_of_a_disabled_plugin_is_one_warning_line(tmp_path):
    runner = CliRunner()
    env = {k: None for k in os.environ if k.startswith("CRM_")}
    config = tmp_path / "crm.toml"
    made = runner.invoke(cli, ["--config", str(config), "init"], env=env)
    assert made.exit_code == 0, made.stderr
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[plugins.retial]\nstore_name = "X"\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["--config", str(config), "customer", "list", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {config}: [plugins.retial] is ignored: the plugin is not enabled in crm.plugins"
    ]
    assert json.loads(result.stdout)["customers"] == []


def _cfg(plugins: list[str]) -> Any:
    return from_dict({"crm": {"database": "sqlite://", "plugins": plugins}})


def test_an_attribute_without_the_plugin_prefix_is_refused_naming_the_plugin():
    class Shoes:
        @hookimpl
        def crm_customer_attributes(self):
            return [Attribute(name="shoes.size"), Attribute(name="size")]

    with pytest.raises(
        PluginError,
        match=r"^plugin 'shoes' declares attribute 'size': a plugin's attribute names "
        r"begin with its name, e.g. 'shoes.size'$",
    ):
        build(_cfg(["shoes"]), extra={"shoes": Shoes()})


def test_an_attribute_of_another_plugins_prefix_is_refused():
    class Thief:
        @hookimpl
        def crm_customer_attributes(self):
            return [Attribute(name="retail.tier")]

    with pytest.raises(PluginError, match=r"plugin 'thief' declares attribute 'retail.tier'"):
        build(_cfg(["thief"]), extra={"thief": Thief()})


def test_a_misspelt_hook_names_the_plugin_not_the_object():
    class Typo:
        @hookimpl
        def crm_customer_craeted(self, crm, customer):
            pass

    with pytest.raises(PluginError) as caught:
        build(_cfg(["typo"]), extra={"typo": Typo()})
    assert str(caught.value) == (
        "plugin 'typo' (not from an installed distribution) implements unknown hook "
        "'crm_customer_craeted' (did you mean 'crm_customer_created'?); the hooks are "
        "listed in docs/hooks.md"
    )


def test_a_misspelt_hook_of_an_installed_plugin_names_its_distribution(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "crm_typo").mkdir(parents=True)
    (site / "crm_typo" / "__init__.py").write_text(
        "from crmcore import hookimpl\n\n@hookimpl\ndef crm_timeline_sorces():\n    return []\n",
        encoding="utf-8",
    )
    info = site / "crm_typo-2.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crm-typo\nVersion: 2.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text("[crmcore.plugins]\ntypo = crm_typo\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop("crm_typo", None)
    with pytest.raises(
        PluginError,
        match=r"^plugin 'typo' \(distribution crm-typo 2\.1\) implements unknown hook "
        r"'crm_timeline_sorces' \(did you mean 'crm_timeline_sources'\?\)",
    ):
        build(_cfg(["typo"]))


def test_wrong_hook_arguments_are_one_line_naming_the_plugin():
    class BadArgs:
        @hookimpl
        def crm_customer_created(self, crm, client):
            pass

    with pytest.raises(PluginError) as caught:
        build(_cfg(["badargs"]), extra={"badargs": BadArgs()})
    text = str(caught.value)
    assert text.startswith("plugin 'badargs' (not from an installed distribution): ")
    assert "\n" not in text and "client" in text


def test_a_hook_function_without_the_marker_is_refused():
    class Forgetful:
        def crm_plugin_info(self):
            from crmcore import PluginInfo

            return PluginInfo(requires=("retail",))

    with pytest.raises(
        PluginError,
        match=r"^plugin 'forgetful' \(not from an installed distribution\): crm_plugin_info "
        r"is not marked @hookimpl",
    ):
        build(_cfg(["forgetful"]), extra={"forgetful": Forgetful()})
