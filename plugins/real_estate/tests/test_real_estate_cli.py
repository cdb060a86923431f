"""``crm real-estate ...``: every command, --json, errors as one line and exit 1."""

from __future__ import annotations

import click
import pytest
from crm_real_estate.cli import group

pytestmark = pytest.mark.crm(plugins=["real_estate"])


def _commands(g: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in g.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


COMMANDS = _commands(group)


def test_every_command_has_help_and_json():
    assert len(COMMANDS) >= 29
    for path in COMMANDS:
        cmd = group
        for part in path:
            cmd = cmd.commands[part]
        assert any(o.name == "as_json" for o in cmd.params), path
        assert cmd.help, path


def test_help_of_every_command():
    from click.testing import CliRunner

    for path in COMMANDS:
        r = CliRunner().invoke(group, [*path, "--help"])
        assert r.exit_code == 0 and "--json" in r.output, path


def test_the_whole_after_sales_flow_through_the_cli(crm, crm_cli):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("wang", "Wang", roles=["rep"])
    crm.customers.add("Wu Fang", phone="139 0000 1111", owner="zhang", external_id="C-1")
    crm.customers.add("Zhou Min", phone="139 0000 7777", owner="zhang", external_id="C-9")

    def ok(*args):
        r = crm_cli("real-estate", *args, "--json")
        assert r.exit_code == 0, r
        return r.json()

    assert ok("project", "add", "JD", "--name", "Jade Garden")["code"] == "JD"
    assert ok("building", "add", "JD", "A1")["path"] == "JD/A1"
    ok("unit", "add", "JD/A1", "1201", "--handover", "2024-07-01")
    ok("unit", "add", "JD/A1", "1501")
    assert ok("owner", "add", "JD/A1/1201", "C-1")["role"] == "owner"
    ok("owner", "add", "JD/A1/1501", "C-9", "--sales", "zhang", "--since", "2026-01-01")
    assert ok("unit", "handover", "JD/A1/1501", "--at", "2026-05-01")["handover_at"].startswith(
        "2026-05-01"
    )
    assert [b["name"] for b in ok("buyer", "list")] == ["Zhou Min"]
    assert ok("buyer", "assign", "C-9", "--staff", "zhang")["staff"] == "zhang"
    ok("team", "add", "PLB", "--name", "Plumbing", "--leader", "wang")
    assert ok("team", "cover", "PLB", "--category", "plumbing")["building"] is None
    assert ok("team", "list")[0]["covers"] == [{"category": "plumbing", "building": None}]
    w = ok("warranty", "check", "--category", "waterproofing", "--unit", "JD/A1/1201")
    assert w["warranty"] == "in" and "5 years" in w["reason"]
    r = ok(
        "request",
        "open",
        "C-1",
        "--unit",
        "JD/A1/1201",
        "--category",
        "plumbing",
        "--channel",
        "fax",
        "--text",
        "pipe leaking",
        "--urgency",
        "urgent",
    )
    rid = str(r["id"])
    assert (r["state"], r["team"], r["channel"]) == ("dispatched", "PLB", "fax")
    assert ok("request", "start", rid)["state"] == "in_progress"
    assert ok("request", "complete", rid, "--note", "fixed")["state"] == "completed"
    r = ok("request", "revisit", rid, "--satisfaction", "2", "--not-fixed")
    assert (r["state"], r["reopen_count"]) == ("dispatched", 1)
    ok("request", "complete", rid)
    assert ok("request", "revisit", rid, "--satisfaction", "4")["state"] == "closed"
    shown = ok("request", "show", rid)
    assert [v["satisfaction"] for v in shown["revisits"]] == [2, 4]
    assert shown["history"][0]["to"] == "received"
    assert (
        ok("request", "warranty", rid, "--status", "out", "--reason", "owner damage")["warranty"]
        == "out"
    )
    assert [x["id"] for x in ok("request", "list", "--state", "closed")] == [r["id"]]
    assert ok("request", "list", "--open") == []
    assert ok("report", "ages")["open"] == 0
    assert ok("report", "compliance")["total"]["reopened"] == 1
    assert ok("report", "satisfaction", "--by", "project")["rows"][0]["mean"] == 3.0
    assert ok("incident", "list") == []
    assert ok("project", "list")[0]["units"] == 2
    assert len(ok("unit", "list", "--building", "JD/A1")) == 2
    assert ok("building", "list")[0]["units"] == 2
    link = ok("owner", "list", "--unit", "JD/A1/1201")[0]
    assert ok("owner", "end", str(link["id"]))["until"]
    # human output too
    text = crm_cli("real-estate", "request", "show", rid)
    assert text.exit_code == 0 and "warranty: set by system: owner damage" in text.stdout
    assert "revisit" in crm_cli("real-estate", "report", "satisfaction").stdout


def test_errors_are_one_line_and_exit_1(crm_cli):
    for args, message in [
        (("request", "show", "99"), "error: request 99 not found"),
        (("project", "add", "JD", "--name", " "), "error: project name: required"),
        (("unit", "add", "NOPE/A1", "1"), "error: building 'NOPE/A1' not found"),
        (("incident", "close", "3", "--note", "x"), "error: incident 3 not found"),
        (("report", "compliance", "--since", "yesterday"), "is not an ISO date"),
    ]:
        r = crm_cli("real-estate", *args, "--json")
        assert r.exit_code == 1 and r.stdout == "", args
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, args


def test_group_is_registered_under_crm(crm_cli):
    r = crm_cli("--help")
    assert "real-estate" in r.stdout
