"""The crm command line: --json, exit codes, init idempotence, help for every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from crmcore.cli import cli


def run(args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("CRM_CONFIG", None)
    env.pop("CRM_DATABASE_URL", None)
    env.pop("CRM_AS", None)
    return subprocess.run(
        [sys.executable, "-m", "crmcore", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_twice_changes_nothing(tmp_path):
    first = run(["init", "--json"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["config_written"] is True
    config = (tmp_path / "crm.toml").read_text()
    assert run(["db", "upgrade", "--json"], tmp_path).returncode == 0
    second = run(["init", "--json"], tmp_path)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["config_written"] is False
    assert (tmp_path / "crm.toml").read_text() == config
    staff = json.loads(run(["staff", "list", "--json"], tmp_path).stdout)
    assert [s["key"] for s in staff] == ["admin"]


def test_json_output_is_only_json_and_errors_are_one_line(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    added = run(
        ["customer", "add", "--name", "Wu Fang", "--phone", "13812345678", "--json"], tmp_path
    )
    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert data["id"] == 1 and data["phone"] == "+8613812345678"
    refused = run(["customer", "stage", "1", "stable"], tmp_path)
    assert refused.returncode == 1
    assert (
        refused.stderr.strip().count("\n") == 0 and "cannot move from 'prospect'" in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    missing = run(["customer", "show", "42"], tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("error: customer '42' not found")
    usage = run(["customer", "add"], tmp_path)
    assert usage.returncode == 2 and "Missing option '--name'" in usage.stderr


def test_bad_config_file_is_a_clear_error(tmp_path):
    (tmp_path / "crm.toml").write_text("[crm]\nplugins = 'retail'\n")
    result = run(["customer", "list"], tmp_path)
    assert result.returncode == 1
    assert "crm.toml: crm.plugins: expected array, got 'retail'" in result.stderr
    (tmp_path / "crm.toml").write_text("[crm\n")
    assert "not valid TOML" in run(["customer", "list"], tmp_path).stderr


def test_unknown_plugin_in_config(tmp_path):
    (tmp_path / "crm.toml").write_text('[crm]\nplugins = ["nosuch"]\n')
    result = run(["customer", "list"], tmp_path)
    assert result.returncode == 1 and "'nosuch', which is not installed" in result.stderr


def test_every_builtin_command_has_help():
    from click.testing import CliRunner

    def walk(cmd, path):
        yield path
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])

    runner = CliRunner()
    paths = list(walk(cli, []))
    assert len(paths) > 30
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["customer", "list", "--json"],
        ["staff", "list", "--json"],
        ["ticket", "list", "--json"],
        ["reminder", "due", "--json"],
        ["outbox", "list", "--json"],
        ["jobs", "list", "--json"],
        ["plugins", "hooks", "--json"],
        ["audit", "--json"],
    ],
)
def test_listing_commands_print_json(crm, crm_cli, args):
    result = crm_cli(*args)
    assert result.exit_code == 0, result
    json.loads(result.stdout)


def test_cli_ticket_and_reminder_and_sms(crm, crm_cli):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm_cli(
        "customer",
        "add",
        "--name",
        "Ann",
        "--external-id",
        "A1",
        "--owner",
        "zhang",
        "--phone",
        "13800000001",
    )
    t = crm_cli("ticket", "open", "A1", "--subject", "late", "--json").json()
    assert t["state"] == "verify"
    moved = crm_cli("ticket", "move", str(t["id"]), "rectify")
    assert moved.exit_code == 1 and "allowed: ['review']" in moved.stderr
    assert crm_cli("ticket", "move", str(t["id"]), "review", "--json").json()["state"] == "review"
    shown = crm_cli("ticket", "show", str(t["id"]), "--json").json()
    assert [h["to_state"] for h in shown["history"]] == ["verify", "review"]
    r = crm_cli(
        "reminder",
        "add",
        "--staff",
        "zhang",
        "--text",
        "call",
        "--due",
        "2026-01-05T09:00",
        "--customer",
        "A1",
        "--json",
    ).json()
    assert [x["id"] for x in crm_cli("reminder", "due", "--json").json()] == [r["id"]]
    bad_at = crm_cli("reminder", "add", "--staff", "zhang", "--text", "x", "--due", "tomorrow")
    assert bad_at.exit_code == 1 and "'tomorrow' is not an ISO date" in bad_at.stderr
    sms = crm_cli("sms", "receive", "--from", "138-0000-0001", "--text", "5", "--json").json()
    assert sms["from"] == "+8613800000001" and sms["customer_id"] == 1
    i = crm_cli(
        "interaction", "add", "A1", "--kind", "visit", "--text", "shop visit", "--json"
    ).json()
    assert i["kind"] == "visit"
    bad_kind = crm_cli("interaction", "add", "A1", "--kind", "telepathy", "--text", "x")
    assert bad_kind.exit_code == 1 and "interaction kind 'telepathy'" in bad_kind.stderr


def test_plugins_list_shows_installed_plugins(crm_cli, crm):
    result = crm_cli("plugins", "list", "--json")
    assert result.exit_code == 0
    for entry in result.json():
        assert {"name", "version", "enabled", "hooks"} <= set(entry)


def test_main_turns_errors_into_exit_status_1(capsys, monkeypatch, tmp_path):
    from crmcore.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tmp_path / "missing.toml"), "customer", "list"])
    assert exc.value.code == 1
    assert "missing.toml: configuration file not found" in capsys.readouterr().err


def test_help_lists_the_enabled_plugins_groups(tmp_path):
    from click.testing import CliRunner

    from crmcore.plugins import installed

    names = sorted(installed())
    if not names:
        pytest.skip("no plugin installed")
    config = tmp_path / "crm.toml"
    config.write_text(
        f'[crm]\ndatabase = "sqlite:///{tmp_path}/h.db"\nplugins = {json.dumps(names)}\n'
    )
    runner = CliRunner()
    for args in (["--config", str(config), "--help"], [f"--config={config}", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        listed = {line.split()[0] for line in result.output.splitlines() if line.startswith("  ")}
        groups = {name.replace("_", "-") for name in names}
        assert groups <= listed, (groups, listed)
    bare = runner.invoke(cli, ["--config", str(tmp_path / "none.toml"), "--help"], env={})
    assert bare.exit_code == 0  # a missing config still shows the built-in commands
