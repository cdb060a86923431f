"""Plugin discovery, enabling, requires, config validation, start-up checks."""

from __future__ import annotations

import pytest
from conftest import Loyalty, Recorder

from crmcore import CRM, ConfigError, Job, PluginError, PluginInfo, hookimpl
from crmcore.config import from_dict
from crmcore.plugins import build, resolve_order


def cfg(plugins=(), **sections):
    return from_dict(
        {"crm": {"database": "sqlite://", "plugins": list(plugins)}, "plugins": sections}
    )


class Needs:
    def __init__(self, *requires):
        self.requires = requires

    @hookimpl
    def crm_plugin_info(self):
        return PluginInfo(requires=self.requires)


def test_enables_exactly_the_configured_plugins():
    extra = {"loyalty": Loyalty(), "recorder": Recorder()}
    plugins = build(cfg(["loyalty"]), extra=extra)
    assert plugins.order == ["loyalty"]
    assert plugins.pm.get_plugin("recorder") is None
    assert "loyalty.level" in plugins.declared["attribute"]


def test_installed_but_not_enabled_plugin_has_no_effect(crm_factory):
    rec = Recorder()
    crm = crm_factory(extra_plugins={"recorder": rec})
    crm.customers.add("A")
    assert rec.calls == []


def test_unknown_plugin_is_a_clear_error_listing_installed():
    with pytest.raises(PluginError, match=r"'nosuch'.*not installed; installed:.*loyalty"):
        build(cfg(["nosuch"]), extra={"loyalty": Loyalty()})


def test_missing_requirement_names_both():
    with pytest.raises(PluginError, match=r"'b' requires 'a'.*add it"):
        build(cfg(["b"]), extra={"a": Needs(), "b": Needs("a")})


def test_requirement_not_installed():
    with pytest.raises(PluginError, match=r"'b' requires 'ghost', which is not installed"):
        build(cfg(["b"]), extra={"b": Needs("ghost")})


def test_cyclic_requirements_name_the_cycle():
    extra = {"a": Needs("c"), "b": Needs("a"), "c": Needs("b")}
    with pytest.raises(PluginError, match=r"cycle: .*a -> c -> b -> a|cycle: .*->"):
        build(cfg(["a", "b", "c"]), extra=extra)


def test_resolve_order_puts_requirements_first():
    infos = {"a": PluginInfo(), "b": PluginInfo(requires=("a",)), "c": PluginInfo(requires=("b",))}
    assert resolve_order(["c", "b", "a"], infos) == ["a", "b", "c"]


def test_required_plugin_hooks_run_before_dependants(crm_factory):
    order = []

    class Base:
        @hookimpl
        def crm_customer_created(self, crm, customer):
            order.append("base")

    class Dependant:
        @hookimpl
        def crm_plugin_info(self):
            return PluginInfo(requires=("base",))

        @hookimpl
        def crm_customer_created(self, crm, customer):
            order.append("dependant")

    crm = crm_factory(
        plugins=["dependant", "base"], extra_plugins={"base": Base(), "dependant": Dependant()}
    )
    crm.customers.add("X")
    assert order == ["base", "dependant"]
    # the core's own implementation (its webhook event) runs after every plugin's
    assert crm.plugins.implementers("crm_customer_created") == ["base", "dependant", "core"]


def test_bad_plugin_config_names_file_key_and_expectation():
    with pytest.raises(
        ConfigError, match=r"plugins\.loyalty\.max_level: expected integer, got 'x'"
    ):
        build(cfg(["loyalty"], loyalty={"max_level": "x"}), extra={"loyalty": Loyalty()})


def test_unknown_key_in_plugin_config_is_refused():
    with pytest.raises(ConfigError, match=r"plugins\.loyalty.*unknown key"):
        build(cfg(["loyalty"], loyalty={"maxlevel": 2}), extra={"loyalty": Loyalty()})


def test_plugin_config_defaults_are_filled():
    plugins = build(cfg(["loyalty"]), extra={"loyalty": Loyalty()})
    assert plugins.configs["loyalty"] == {"max_level": 3}


def test_config_for_a_plugin_that_is_not_enabled_is_a_warning():
    from crmcore.errors import ConfigWarning

    with pytest.warns(
        ConfigWarning, match=r"\[plugins.loyalty\] is ignored: the plugin is not enabled"
    ):
        plugins = build(cfg([], loyalty={}), extra={"loyalty": Loyalty()})
    assert plugins.order == [] and "loyalty" not in plugins.configs


def test_misspelt_hookimpl_fails_at_start_up():
    class Typo:
        @hookimpl
        def crm_customer_craeted(self, crm, customer):
            pass

    with pytest.raises(PluginError, match=r"unknown hook.*crm_customer_craeted"):
        build(cfg(["typo"]), extra={"typo": Typo()})


def test_wrong_hook_arguments_fail_at_start_up():
    class BadArgs:
        @hookimpl
        def crm_customer_created(self, crm, client):
            pass

    with pytest.raises(PluginError, match=r"'badargs'"):
        build(cfg(["badargs"]), extra={"badargs": BadArgs()})


def test_two_plugins_declaring_one_name_is_an_error_naming_both():
    from crmcore import Template

    class Welcome:
        @hookimpl
        def crm_message_templates(self):
            return [Template(name="welcome", text="hello")]

    with pytest.raises(
        PluginError,
        match=r"template 'welcome' is declared by both '(one|two)' and '(one|two)'",
    ):
        build(cfg(["one", "two"]), extra={"one": Welcome(), "two": Welcome()})


def test_plugin_table_may_not_reuse_a_core_table_name():
    import sqlalchemy as sa

    class Clash:
        @hookimpl
        def crm_tables(self):
            return [
                sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
            ]

    with pytest.raises(
        PluginError, match=r"table 'customers' is declared by both 'core' and 'clash'"
    ):
        build(cfg(["clash"]), extra={"clash": Clash()})


def test_owners_are_recorded_for_every_declared_name():
    class WithJob:
        @hookimpl
        def crm_jobs(self):
            return [Job(name="withjob.nightly", run=lambda crm, at: {})]

    plugins = build(cfg(["loyalty", "withjob"]), extra={"loyalty": Loyalty(), "withjob": WithJob()})
    assert plugins.owners[("attribute", "loyalty.level")] == "loyalty"
    assert plugins.owners[("job", "withjob.nightly")] == "withjob"
    assert plugins.owners[("workflow", "default")] == "core"


def test_a_plugin_that_fails_to_import_is_named(monkeypatch):
    import importlib.metadata as md

    from crmcore import plugins as plugins_mod

    ep = md.EntryPoint(name="broken", value="no_such_module_xyz:plugin", group="crmcore.plugins")
    monkeypatch.setattr(plugins_mod, "installed", lambda: {"broken": ep})
    with pytest.raises(
        PluginError, match=r"plugin 'broken' \(no_such_module_xyz:plugin\) failed to load"
    ):
        build(cfg(["broken"]))


def test_crm_plugin_config_of_a_disabled_plugin_is_not_found(crm):
    from crmcore import NotFound

    with pytest.raises(NotFound, match="not enabled"):
        crm.plugin_config("loyalty")


def test_jobs_run_with_the_clock_at_the_given_time(crm_factory, at):
    import datetime as dt

    seen = []

    class Nightly:
        @hookimpl
        def crm_jobs(self):
            return [
                Job(
                    name="nightly.count",
                    run=lambda crm, when: seen.append((crm.now(), when)) or {"n": 1},
                )
            ]

    crm = crm_factory(plugins=["nightly"], extra_plugins={"nightly": Nightly()})
    when = dt.datetime(2030, 2, 3, 4, 5)
    result = crm.jobs.run(["nightly.count"], at=when)
    assert seen == [(when, when)]
    assert result[0]["summary"] == {"n": 1} and result[0]["owner"] == "nightly"


def test_unknown_job_is_refused(crm):
    from crmcore import NotFound

    with pytest.raises(NotFound, match="unknown job"):
        crm.jobs.run(["nope"])


def test_crm_open_reads_the_config_file(tmp_path):
    path = tmp_path / "crm.toml"
    path.write_text(f'[crm]\ndatabase = "sqlite:///{tmp_path}/x.db"\n')
    crm = CRM.open(str(path))
    assert crm.config.database.endswith("x.db") and crm.plugins.order == []
