"""The hook contract: metadata and config schema are real hook calls, cross-field
config checks run at start-up, templates see the plugin's config, hook calls can
be traced, and ``crm_customer_updated`` fires for every change of a customer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import ConfigError, PluginError, PluginInfo, Template, hookimpl
from crmcore.cli import cli
from crmcore.config import from_dict
from crmcore.plugins import TRACE_ENV, build, installed


def _cfg(plugins: list[str], **sections: Any) -> Any:
    return from_dict({"crm": {"database": "sqlite://", "plugins": plugins}, "plugins": sections})


class Range:
    """A plugin whose section has a cross-field rule (low <= high)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def crm_plugin_info(self) -> PluginInfo:
        return PluginInfo(version="2.0", description="a range")

    @hookimpl
    def crm_config_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "low": {"type": "integer", "default": 1},
                "high": {"type": "integer", "default": 10},
                "greeting": {"type": "string", "default": "Hello"},
            },
        }

    @hookimpl
    def crm_validate_config(self, config: dict[str, Any]) -> None:
        self.seen.append(config)
        if config["low"] > config["high"]:
            raise ConfigError(f"low ({config['low']}) must not exceed high ({config['high']})")

    @hookimpl
    def crm_message_templates(self, config: dict[str, Any]) -> list[Template]:
        return [Template(name="range.hello", text=config["greeting"] + ", {name}!")]


# -- crm_plugin_info / crm_config_schema are hook calls ---------------------------
def test_plugin_info_and_config_schema_are_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv(TRACE_ENV, "1")
    plugins = build(_cfg(["range"], range={"low": 2}), extra={"range": Range()})
    assert plugins.infos["range"].version == "2.0"
    assert plugins.configs["range"] == {"low": 2, "high": 10, "greeting": "Hello"}
    trace = capsys.readouterr().err.splitlines()
    assert "trace: crm_plugin_info answered by range: 1 result" in trace
    assert "trace: crm_config_schema answered by range: 1 result" in trace


def test_a_plugin_info_hook_with_wrong_arguments_is_refused_naming_the_plugin():
    class Wrong:
        @hookimpl
        def crm_plugin_info(self, crm):
            return PluginInfo()

    with pytest.raises(PluginError, match=r"^plugin 'wrong' \(not from an installed"):
        build(_cfg(["wrong"]), extra={"wrong": Wrong()})


def test_a_plugin_info_of_the_wrong_type_names_the_plugin():
    class Loose:
        @hookimpl
        def crm_plugin_info(self):
            return {"version": "1"}

    with pytest.raises(PluginError, match=r"plugin 'loose': crm_plugin_info must return"):
        build(_cfg(["loose"]), extra={"loose": Loose()})


def test_the_bundled_plugins_still_report_their_metadata(tmp_path):
    names = sorted(n for n in installed() if n in {"retail", "utility", "insurance", "real_estate"})
    if not names:
        pytest.skip("no bundled plugin is installed")
    env = {k: None for k in os.environ if k.startswith("CRM_")}
    result = CliRunner().invoke(cli, ["plugins", "list", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    listed = {p["name"]: p for p in __import__("json").loads(result.stdout)}
    for name in names:
        module = __import__(f"crm_{name}")
        assert listed[name]["version"] == module.__version__
        assert listed[name]["description"]


# -- crm_validate_config -------------------------------------------------------------
def test_validate_config_gets_the_section_with_defaults_and_fails_at_start_up():
    plugin = Range()
    with pytest.raises(ConfigError) as caught:
        build(_cfg(["range"], range={"low": 20}), extra={"range": plugin})
    assert str(caught.value) == ("configuration: plugins.range: low (20) must not exceed high (10)")
    assert plugin.seen == [{"low": 20, "high": 10, "greeting": "Hello"}]


@pytest.mark.filterwarnings("ignore::crmcore.errors.ConfigWarning")
def test_bad_retail_tiers_fail_at_start_up_in_one_line():
    pytest.importorskip("crm_retail")
    tiers = [{"name": "a", "min_spend_cents": 0}, {"name": "b", "min_spend_cents": 0}]
    with pytest.raises(ConfigError) as caught:
        build(_cfg(["retail"], retail={"tiers": tiers}))
    assert str(caught.value) == (
        "configuration: plugins.retail.tiers.1.min_spend_cents: thresholds must increase (0 <= 0)"
    )


def test_a_bad_utility_ladder_stops_every_command_in_one_line(tmp_path):
    pytest.importorskip("crm_utility")
    env = {k: None for k in os.environ if k.startswith("CRM_")}
    config = tmp_path / "crm.toml"
    runner = CliRunner()
    made = runner.invoke(cli, ["--config", str(config), "init", "--plugin", "utility"], env=env)
    assert made.exit_code == 0, made.stderr
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[plugins.utility.dunning]\nsteps = [\n"
        '  {name = "formal_notice", days_overdue = 5},\n'
        '  {name = "reminder_message", days_overdue = 5},\n]\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["--config", str(config), "customer", "list"], env=env)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {config}: plugins.utility.dunning.steps: days_overdue must increase "
        "step by step; got [5, 5]"
    ]


# -- crm_message_templates receives the plugin's config ---------------------------------
def test_templates_are_built_from_the_plugins_config(crm_factory, crm_outbox):
    crm = crm_factory(
        plugins=["range"],
        extra_plugins={"range": Range()},
        config={"plugins": {"range": {"greeting": "Ni hao"}}},
    )
    assert crm.plugins.declared["template"]["range.hello"].text == "Ni hao, {name}!"
    c = crm.customers.add("Wu Fang", phone="13812345678")
    message = crm.messages.enqueue("sms", template="range.hello", values={"name": "Wu"}, customer=c)
    assert message is not None and message.body == "Ni hao, Wu!"


# -- CRM_TRACE_PLUGINS=1 -------------------------------------------------------------------
class Noisy:
    @hookimpl
    def crm_validate_customer(self, crm, customer, before):
        from crmcore import ValidationError

        if customer.name == "refused":
            raise ValidationError("refused by noisy")


def test_trace_prints_every_hook_call_with_the_plugins_that_answered(
    crm_factory, monkeypatch, capsys
):
    from crmcore import ValidationError

    monkeypatch.setenv(TRACE_ENV, "1")
    crm = crm_factory(plugins=["noisy"], extra_plugins={"noisy": Noisy()})
    capsys.readouterr()
    crm.customers.add("Wu Fang", phone="13812345678")
    with pytest.raises(ValidationError):
        crm.customers.add("refused")
    trace = capsys.readouterr().err.splitlines()
    assert trace == [
        "trace: crm_validate_customer answered by noisy: 0 results",
        "trace: crm_customer_created answered by core: 0 results",  # its webhook event
        "trace: crm_validate_customer answered by noisy: raised ValidationError: refused by noisy",
    ]
    assert not any("13812345678" in line or "Wu Fang" in line for line in trace)


def test_without_the_variable_nothing_is_traced(crm_factory, monkeypatch, capsys):
    monkeypatch.delenv(TRACE_ENV, raising=False)
    crm = crm_factory(plugins=["noisy"], extra_plugins={"noisy": Noisy()})
    crm.customers.add("Wu Fang")
    assert "trace:" not in capsys.readouterr().err


# -- crm_customer_updated fires for every change ------------------------------------------
class Watcher:
    def __init__(self) -> None:
        self.updates: list[tuple[int, dict[str, Any]]] = []

    @hookimpl
    def crm_customer_updated(self, crm, before, after):
        fields = ("name", "phone", "email", "owner_id", "attributes")
        changed = {f: getattr(after, f) for f in fields if getattr(before, f) != getattr(after, f)}
        self.updates.append((after.id, changed))


@pytest.fixture
def watched(crm_factory: Any) -> tuple[Any, Watcher]:
    watcher = Watcher()
    return crm_factory(plugins=["watcher"], extra_plugins={"watcher": watcher}), watcher


def test_customer_updated_fires_for_both_customers_of_a_merge(watched):
    crm, watcher = watched
    keep = crm.customers.add("Wu Fang", phone="13812345678")
    other = crm.customers.add("Wu F.", email="wu@example.com")
    crm.customers.merge(keep, other)
    assert watcher.updates == [
        (other.id, {"email": None}),
        (keep.id, {"email": "wu@example.com"}),
    ]


def test_customer_updated_fires_for_a_forgotten_customer_and_its_merged_record(watched):
    crm, watcher = watched
    keep = crm.customers.add("Wu Fang", phone="13812345678")
    other = crm.customers.add("Wu F.", email="wu@example.com")
    crm.customers.merge(keep, other)
    watcher.updates.clear()
    crm.customers.forget(keep)
    assert watcher.updates == [
        (
            keep.id,
            {
                "name": f"forgotten customer {keep.id}",
                "phone": None,
                "email": None,
            },
        ),
        (other.id, {"name": f"forgotten customer {other.id}"}),
    ]


def test_customer_updated_fires_for_each_customer_handed_over_at_a_departure(watched):
    crm, watcher = watched
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north")
    heir = crm.staff.add("chen", "Chen Jie", roles=["rep"], team="north")
    first = crm.customers.add("A", owner="zhang")
    second = crm.customers.add("B", owner="zhang")
    crm.customers.add("C", owner="chen")
    watcher.updates.clear()
    crm.staff.leave("zhang", handover_to="chen")
    assert watcher.updates == [
        (first.id, {"owner_id": heir.id}),
        (second.id, {"owner_id": heir.id}),
    ]


def test_a_raising_update_hook_rolls_the_departure_back(crm_factory):
    class Refuses:
        @hookimpl
        def crm_customer_updated(self, crm, before, after):
            from crmcore import ValidationError

            raise ValidationError("no handovers today")

    from crmcore import ValidationError

    crm = crm_factory(plugins=["refuses"], extra_plugins={"refuses": Refuses()})
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"])
    crm.staff.add("chen", "Chen Jie", roles=["rep"])
    c = crm.customers.add("A", owner="zhang")
    with pytest.raises(ValidationError, match="no handovers today"):
        crm.staff.leave("zhang", handover_to="chen")
    assert crm.staff.get("zhang").active
    assert crm.customers.get(c.id).owner_id == crm.staff.get("zhang").id


def test_hook_reference_is_regenerated(tmp_path: Path):
    from crmcore.hookdoc import render

    docs = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
    text = docs.read_text(encoding="utf-8")
    assert text == render()
    assert "### `crm_validate_config(config: dict[str, Any]) -> None`" in text
