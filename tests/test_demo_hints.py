"""`crm demo`: every command it suggests works when pasted, and the demo database
keeps the demo's "now" for the commands run against it afterwards."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex

import pytest
from click.testing import CliRunner

from crmcore import config as config_mod
from crmcore.cli import cli
from crmcore.clock import SystemClock, configured_clock, fixed_time
from crmcore.demo import DEMO_AT
from crmcore.errors import ConfigError
from crmcore.plugins import installed

SUGGESTED = re.compile(r"crm --config \S+ [^;)\n]*")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """One demo, made with `crm demo` in a fresh directory: (directory, printed text)."""
    where = tmp_path_factory.mktemp("demo-parent")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CRM_CONFIG", "CRM_DATABASE_URL", "CRM_AS"):
            mp.delenv(name, raising=False)
        mp.chdir(where)
        result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    return where, result.stdout


def run(where, argv: list[str]):
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CRM_CONFIG", "CRM_DATABASE_URL", "CRM_AS"):
            mp.delenv(name, raising=False)
        mp.chdir(where)
        return CliRunner().invoke(cli, argv)


def test_every_suggested_command_names_the_demo_config(demo):
    _, text = demo
    bare = re.findall(r"(?<![\w./-])crm (?!--config )[a-z][\w-]*", text)
    assert bare == []  # a hint without --config would reach ./crm.toml, not the demo
    assert len(SUGGESTED.findall(text)) >= 3


@pytest.mark.slow
def test_every_suggested_command_works_when_pasted_in_the_parent_directory(demo):
    where, text = demo
    commands = [c.strip() for c in SUGGESTED.findall(text)]
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "crm"
        result = run(where, argv[1:])
        assert result.exit_code == 0, f"{command}: {result.output}"


def test_the_demo_database_keeps_the_demo_time(demo):
    where, text = demo
    assert f"runs at {DEMO_AT:%Y-%m-%d %H:%M} Asia/Shanghai" in text
    added = run(
        where, ["--config", "crm-demo/crm.toml", "customer", "add", "--name", "Ma Li", "--json"]
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["created_at"] == DEMO_AT.isoformat()
    cfg = config_mod.load(where / "crm-demo" / "crm.toml")
    assert configured_clock(cfg.core).now() == DEMO_AT


@pytest.mark.skipif("insurance" not in installed(), reason="the insurance plugin is not installed")
def test_the_insurance_opportunities_heading_states_both_windows(demo):
    _, text = demo
    section = text.split("== insurance ==", 1)[1].split("\n== ", 1)[0]
    heading = next(line for line in section.splitlines() if line.startswith("opportunities"))
    assert "in the next 30 days" in heading and "paid in the last 30" in heading
    entries = re.findall(r"^  (\d{4}-\d\d-\d\d) (\w+)", section, flags=re.M)
    assert entries
    for day, kind in entries:
        when = dt.datetime.fromisoformat(day)
        if when < DEMO_AT:  # only payouts look back
            assert kind in ("claim", "benefit") and when >= DEMO_AT - dt.timedelta(days=30)
        else:
            assert when <= DEMO_AT + dt.timedelta(days=30)


def test_a_fixed_clock_with_an_offset_is_read_in_the_configured_zone():
    assert fixed_time("2026-06-15T01:00:00+00:00", "Asia/Shanghai") == dt.datetime(2026, 6, 15, 9)
    assert fixed_time("2026-06-15T09:00", "Asia/Shanghai") == dt.datetime(2026, 6, 15, 9)
    cfg = config_mod.from_dict(
        {"crm": {"timezone": "Asia/Shanghai", "clock": "2026-06-15T10:00:00+08:00"}}
    )
    assert configured_clock(cfg.core).now() == dt.datetime(2026, 6, 15, 10)
    assert isinstance(configured_clock(config_mod.from_dict({}).core), SystemClock)


def test_the_wall_clock_is_read_in_the_configured_zone():
    shanghai = SystemClock("Asia/Shanghai").now()
    expected = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=8)
    assert abs(shanghai - expected) < dt.timedelta(seconds=5)


@pytest.mark.parametrize(
    ("core", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "crm.timezone: unknown time zone 'Mars/Olympus'"),
        ({"clock": "next tuesday"}, "crm.clock: expected an ISO date-time"),
        ({"clock": "2026-06-15T09:00+08:00", "timezone": "Nowhere"}, "crm.timezone"),
    ],
)
def test_a_bad_clock_or_zone_is_refused_naming_the_key(core, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_mod.from_dict({"crm": core}, path=None)
