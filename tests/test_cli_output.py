"""Output for people and programs: valid JSON only, tables, paging, readable
job and audit lines, help texts, colour only on terminals, shell completion."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from crmcore.cli import JSON_OPTION, cli, emit, output, pass_crm
from crmcore.cli._app import AppContext
from crmcore.cli.output import NonFiniteOutput, showing, table, to_json
from crmcore.cli.params import PositiveInt

ALL_PLUGINS = ["retail", "utility", "insurance", "real_estate"]


# -- JSON ------------------------------------------------------------------------
def test_json_refuses_nan_and_infinity_naming_where():
    assert json.loads(to_json({"a": [1.5, None]})) == {"a": [1.5, None]}
    with pytest.raises(NonFiniteOutput, match=r"customers\.12\.p_alive"):
        to_json({"customers": {"12": {"p_alive": math.nan}}})
    with pytest.raises(NonFiniteOutput, match=r"at 1 is not a finite number"):
        to_json([0.0, -math.inf])


def test_a_command_printing_nan_fails_with_one_line_and_no_output(crm):
    @click.command()
    @JSON_OPTION
    @pass_crm
    def broken(crm, as_json):
        emit({"score": float("nan")}, as_json)

    app = AppContext(config_path=None, database=None, principal=None, crm=crm)
    res = CliRunner().invoke(broken, ["--json"], obj=app)
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.strip() == (
        "error: result value at score is not a finite number (NaN or infinity); "
        "refusing to print invalid JSON"
    )


# -- tables ------------------------------------------------------------------------
def test_table_has_headers_aligned_columns_and_marks_truncation():
    text = table(
        [(1, "Wu Fang", None), (120, "A very long customer name indeed", "x")],
        ("id", "name", "note"),
        max_width={"name": 12},
    )
    lines = text.splitlines()
    assert lines[0] == " id  name          note"
    assert lines[1] == "  1  Wu Fang       -"
    assert lines[2] == "120  A very long…  x"
    assert table([], ("id",), empty="no rows") == "no rows"


def test_table_counts_wide_characters_as_two_columns():
    lines = table([("王芳", 1), ("Wu", 2)], ("name", "n")).splitlines()
    assert lines[1] == "王芳  1" and lines[2] == "Wu    2"


def test_showing_line():
    assert showing(50, 19927) == "showing 1-50 of 19,927; --limit/--offset for more"
    assert showing(7, 57, offset=50) == "showing 51-57 of 57; --limit/--offset for more"
    assert showing(3, 3) == "showing all 3"


# -- customer list -------------------------------------------------------------------
def _many(crm, n):
    for i in range(n):
        crm.customers.add(f"customer {i:03d}", external_id=f"X-{i:03d}")


def test_customer_list_is_a_paged_table(crm, crm_cli):
    _many(crm, 60)
    crm.customers.add("Someone with a really remarkably long name for a till", external_id="LONG")
    res = crm_cli("customer", "list")
    assert res.exit_code == 0, res
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["id", "external", "id", "name", "stage", "owner", "phone", "email"]
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "showing 1-50 of 61; --limit/--offset for more"
    assert "X-000" in lines[1]
    last = crm_cli("customer", "list", "--offset", "55").stdout.splitlines()
    assert last[-1] == "showing 56-61 of 61; --limit/--offset for more"
    assert any(line.split()[0] == "61" and "…" in line for line in last)
    widths = {len(line) for line in last[1:-1]}
    assert len(widths) == 1  # every row as wide as the others: aligned columns


def test_customer_list_json_shape(crm, crm_cli):
    _many(crm, 5)
    page = crm_cli("customer", "list", "--limit", "2", "--offset", "1", "--json").json()
    assert (page["total"], page["offset"], page["limit"], page["next_offset"]) == (5, 1, 2, 3)
    assert [c["external_id"] for c in page["customers"]] == ["X-001", "X-002"]
    end = crm_cli("customer", "list", "--offset", "4", "--json").json()
    assert end["next_offset"] is None and len(end["customers"]) == 1


def test_customer_list_reads_one_page_from_the_database(crm, crm_cli):
    from sqlalchemy import event

    _many(crm, 30)
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(crm.engine, "before_cursor_execute", record)
    try:
        assert crm_cli("customer", "list", "--limit", "5").exit_code == 0
    finally:
        event.remove(crm.engine, "before_cursor_execute", record)
    listing = ("SELECT customers.id", "SELECT live_customers.id")
    rows = [s for s in seen if s.startswith(listing) and "count(" not in s]
    assert rows and all("LIMIT" in s for s in rows), rows


# -- readable lines --------------------------------------------------------------------
def test_audit_prints_changed_columns_not_dict_reprs(crm, crm_cli):
    c = crm.customers.add("Wu Fang", external_id="C-1")
    crm.customers.change_stage(c.id, "new", reason="first purchase")
    out = crm_cli("audit", str(c.id)).stdout
    assert "{'" not in out and "': " not in out, out  # no Python dict reprs
    update = next(line for line in out.splitlines() if " update " in line)
    assert update.endswith(f"customers/{c.id}  update  stage: prospect -> new")
    assert update.startswith("2026-01-05 09:00  system  ")
    insert = next(line for line in out.splitlines() if f"customers/{c.id}  insert" in line)
    assert "name=Wu Fang" in insert and "external_id=C-1" in insert


@pytest.mark.crm(plugins=["retail"])
def test_jobs_run_prints_readable_summaries(crm, crm_cli):
    out = crm_cli("jobs", "run", "--at", "2026-01-06T02:00").stdout
    lines = out.splitlines()
    assert lines and all(": " in line for line in lines)
    assert "{" not in out and "'" not in out and "[" not in out, out
    assert any(line.startswith("retail.member_day_reminder: member day ") for line in lines)


def test_overdue_says_how_many_it_did_not_show(crm, crm_cli):
    d0 = dt.datetime(2025, 6, 1, 12)
    for k in range(3):
        c = crm.customers.add(f"late{k}").id
        for day in (0, 10, 20):
            crm.records.add_transaction(c, 100, occurred_at=d0 + dt.timedelta(days=day))
    out = crm_cli("analytics", "overdue", "--as-of", "2025-08-01", "--limit", "2").stdout
    lines = out.splitlines()
    assert lines[0].startswith("3 overdue customers")
    assert lines[1].split()[:2] == ["customer", "days"] and len(lines) == 2 + 2 + 1
    assert lines[-1] == "showing 1-2 of 3; --limit for more"


def test_db_upgrade_says_when_nothing_was_pending(crm, crm_cli, tmp_path):
    from crmcore import config as config_mod
    from crmcore.access import SYSTEM
    from crmcore.service import CRM

    assert crm_cli("db", "upgrade").stdout.startswith("already up to date: crmcore")
    assert crm_cli("db", "upgrade", "--json").json()["changed"] is False
    cfg = config_mod.from_dict({"crm": {"database": f"sqlite:///{tmp_path / 'new.db'}"}})
    fresh = CRM(cfg, principal=SYSTEM)
    try:
        assert crm_cli("db", "upgrade", crm=fresh).stdout.startswith("upgraded: crmcore")
        assert crm_cli("db", "upgrade", crm=fresh).stdout.startswith("already up to date")
    finally:
        fresh.engine.dispose()


# -- help ----------------------------------------------------------------------------
def _walk(group, ctx, path):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield [*path, name], cmd
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, ctx, [*path, name])


@pytest.mark.crm(plugins=ALL_PLUGINS)
def test_no_help_line_is_cut_short(crm):
    app = AppContext(config_path=None, database=None, principal=None, crm=crm)
    ctx = click.Context(cli, obj=app)
    paths = [[]] + [p for p, _ in _walk(cli, ctx, [])]
    assert len(paths) > 150  # core and all four plugins
    runner = CliRunner()
    for path in paths:
        res = runner.invoke(cli, [*path, "--help"], obj=app, terminal_width=80)
        assert res.exit_code == 0, (path, res.output)
        for line in res.output.splitlines():
            if line.startswith("Usage:"):
                continue  # "[ARGS]..." there is click's notation for repeatable arguments
            assert not line.rstrip().endswith(("…", "...")), (path, line)


# -- colour ----------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert output.color_enabled(_Tty()) is True
    assert output.color_enabled(io.StringIO()) is False  # piped
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.color_enabled(_Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(sys, "stdout", _Tty())
    assert output.style("id", bold=True) == "\x1b[1mid\x1b[0m"
    assert table([(1,)], ("id",)).splitlines()[0] == "\x1b[1mid\x1b[0m"


def test_piped_output_has_no_colour_codes(crm, crm_cli):
    _many(crm, 2)
    assert "\x1b[" not in crm_cli("customer", "list").stdout


# -- completion ------------------------------------------------------------------------
def _crm(env_extra):
    env = {**os.environ, **env_extra}
    for name in ("CRM_CONFIG", "CRM_DATABASE_URL", "CRM_AS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", "from crmcore.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_shell_completion_prints_a_script_and_completes_commands(tmp_path):
    script = _crm({"_CRM_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_crm_completion()" in script.stdout
    assert "complete -o nosort -F _crm_completion crm" in script.stdout
    done = _crm({"_CRM_COMPLETE": "bash_complete", "COMP_WORDS": "crm cust", "COMP_CWORD": "1"})
    assert done.returncode == 0 and "plain,customer" in done.stdout.splitlines()


# -- small ones ------------------------------------------------------------------------
def test_a_reminder_due_in_the_past_is_refused(crm, crm_cli):
    from crmcore.errors import ValidationError

    crm.staff.add("zhang", "Zhang Wei")
    res = crm_cli(
        "reminder", "add", "--staff", "zhang", "--text", "call", "--due", "2026-01-04T10:00"
    )
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.strip() == (
        "error: reminder: due 2026-01-04 10:00 is before now (2026-01-05 09:00); "
        "give a time from now on"
    )
    with pytest.raises(ValidationError, match="before now"):
        crm.tickets.add_reminder("zhang", "call", dt.datetime(2026, 1, 5, 8, 59))
    assert crm.tickets.due_reminders(at=dt.datetime(2030, 1, 1)) == []


def test_a_reminder_without_a_customer_never_prints_none(crm, crm_cli):
    crm.staff.add("zhang", "Zhang Wei")
    out = crm_cli(
        "reminder", "add", "--staff", "zhang", "--text", "call", "--due", "2026-01-05T09:00"
    )
    assert out.exit_code == 0 and "None" not in out.stdout and "customer" not in out.stdout
    c = crm.customers.add("Wu Fang")
    out = crm_cli(
        "reminder",
        "add",
        "--staff",
        "zhang",
        "--text",
        "x",
        "--due",
        "2026-02-01",
        "--customer",
        c.id,
    )
    assert f"customer {c.id}" in out.stdout
    assert "None" not in crm_cli("reminder", "due", "--at", "2026-03-01").stdout


@pytest.mark.crm(plugins=ALL_PLUGINS)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retail", "points", "redeem", "1", "-5"], "points must be positive (got -5)"),
        (["retail", "points", "redeem", "1", "0"], "points must be positive (got 0)"),
        (["retail", "points", "redeem", "1", "ten"], "points must be a whole number (got 'ten')"),
        (["reminder", "done", "-3"], "reminder id must be positive (got -3)"),
        (["real-estate", "request", "show", "-1"], "request id must be positive (got -1)"),
        (["relationship", "end", "-7"], "relationship id must be positive (got -7)"),
    ],
)
def test_negative_numbers_as_arguments_get_a_clear_message(crm, crm_cli, args, message):
    res = crm_cli(*args)
    assert res.exit_code == 1 and res.stderr == f"error: {message}\n", res
    assert "No such option" not in res.stderr


@pytest.mark.crm(plugins=ALL_PLUGINS)
def test_every_whole_number_argument_accepts_a_leading_minus(crm):
    """Each command with an integer argument lets "-5" reach it (to say what is wrong)."""
    app = AppContext(config_path=None, database=None, principal=None, crm=crm)
    ctx = click.Context(cli, obj=app)
    numeric = [
        (path, cmd)
        for path, cmd in _walk(cli, ctx, [])
        if any(
            isinstance(p, click.Argument)
            and isinstance(p.type, click.types.IntParamType | click.types.FloatParamType)
            for p in cmd.params
        )
    ]
    assert numeric == []  # whole-number arguments use PositiveInt
    with_positive = [
        path
        for path, cmd in _walk(cli, ctx, [])
        if any(isinstance(p.type, PositiveInt) for p in cmd.params)
    ]
    assert len(with_positive) >= 12
    for path in with_positive:
        cmd = cli
        for name in path:
            cmd = cmd.get_command(ctx, name)
        assert cmd.context_settings.get("ignore_unknown_options"), path
