"""``crm retail ...``: every command has --help and --json; errors exit 1 with one line."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_retail.cli import retail

RETAIL = pytest.mark.crm(plugins=["retail"])
T0 = dt.datetime(2026, 1, 5, 9, 0)


def all_commands(group, prefix=()):
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, path)
        else:
            yield path, cmd


def test_every_command_takes_json():
    commands = list(all_commands(retail))
    assert len(commands) >= 24  # the jobs run through `crm jobs run`, not here
    for path, cmd in commands:
        assert "as_json" in {p.name for p in cmd.params}, path


@RETAIL
def test_help_for_every_command(crm_cli):
    assert crm_cli("retail", "--help").exit_code == 0
    for path, _ in all_commands(retail):
        res = crm_cli("retail", *path, "--help")
        assert res.exit_code == 0 and "--json" in res.stdout, path


@RETAIL
def test_member_and_points_commands(crm, crm_cli):
    c = crm.customers.add("Cli", phone="13800000001", external_id="C-1")
    res = crm_cli(
        "retail",
        "member",
        "join",
        "C-1",
        "--birthday",
        "1990-05-06",
        "--at",
        "2025-12-01",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    assert res.json()["member_no"] == f"M{c.id:08d}"
    crm.records.add_transaction(c, 400_000)
    show = crm_cli("retail", "member", "show", "C-1", "--json").json()
    assert show["tier"] == "silver" and show["points_balance"] == 4800
    assert crm_cli("retail", "member", "list", "--json").json()[0]["tier"] == "silver"
    human = crm_cli("retail", "member", "show", "C-1")
    assert "tier silver" in human.stdout and "4800 points" in human.stdout
    red = crm_cli("retail", "points", "redeem", "C-1", "800", "--reason", "voucher", "--json")
    assert red.json()["balance"] == 4000
    bad = crm_cli("retail", "points", "redeem", "C-1", "5000", "--json")
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.strip() == f"error: customer {c.id} (Cli) has 4000 points; cannot redeem 5000"
    led = crm_cli("retail", "points", "show", "C-1", "--json").json()
    assert led["balance"] == led["ledger_sum"] == 4000
    tiers = crm_cli("retail", "tiers", "list", "--json").json()
    assert [t["name"] for t in tiers["tiers"]] == ["standard", "silver", "gold", "platinum"]
    # the jobs run through the core's one command, `crm jobs run NAME`
    (run,) = crm_cli("jobs", "run", "retail.tiers", "--at", "2026-01-05T23:00", "--json").json()
    assert run["job"] == "retail.tiers"
    (exp,) = crm_cli("jobs", "run", "retail.points_expiry", "--json").json()
    assert exp["summary"]["expired_points"] == 0
    assert crm_cli("retail", "member", "birthday", "C-1", "1991-01-06", "--json").exit_code == 0
    (bd,) = crm_cli("jobs", "run", "retail.birthdays", "--at", "2026-01-06T08:00", "--json").json()
    assert bd["summary"]["queued"] == 1
    for gone in (["tiers", "run"], ["points", "expire"], ["birthdays"], ["abc"]):
        assert crm_cli("retail", *gone, "--help").exit_code == 2  # no duplicate of the job
    unknown = crm_cli("jobs", "run", "retail.nope", "--json")
    assert unknown.exit_code == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: unknown job(s) ['retail.nope']; jobs: [")


@RETAIL
def test_member_day_commands(crm_cli):
    st = crm_cli("retail", "member-day", "status", "--date", "2026-01-07", "--json").json()
    assert st["is_member_day"] is True and st["benefit"] == "5% off and x2 points"
    assert (
        "not a member day"
        in crm_cli("retail", "member-day", "status", "--date", "2026-01-08").stdout
    )
    at = ("--at", "2026-01-06T08:00")
    (rem,) = crm_cli("jobs", "run", "retail.member_day_reminder", *at, "--json").json()
    assert rem["summary"]["is_member_day"] is True


@RETAIL
def test_store_commands(crm, crm_cli):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    c = crm.customers.add("Shopper", phone="13800000002", external_id="S-1", owner="zhang")
    crm.records.add_transaction(c, 10_000, occurred_at=T0 - dt.timedelta(days=2))
    crm_cli("retail", "member", "join", "S-1", "--at", "2025-12-01")
    r = crm_cli(
        "retail",
        "dm",
        "report",
        "S-1",
        "--product",
        "Oil 5L",
        "--promotion",
        "W02",
        "--poster-price",
        "59.90",
        "--till-price",
        "69.90",
        "--json",
    ).json()
    assert r["status"] == "reported"
    v = crm_cli("retail", "dm", "verify", str(r["id"]), "--json").json()
    assert v["reward_points"] == 200
    again = crm_cli("retail", "dm", "reject", str(r["id"]), "--reason", "x")
    assert again.exit_code == 1 and "already verified" in again.stderr
    assert len(crm_cli("retail", "dm", "list", "--status", "verified", "--json").json()) == 1
    w = crm_cli("retail", "waitlist", "add", "S-1", "--item", "Eggs", "--json").json()
    assert w["status"] == "waiting" and w["contact_phone"] is None
    assert len(crm_cli("retail", "waitlist", "list", "--json").json()) == 1
    rs = crm_cli("retail", "waitlist", "restock", "Eggs", "--json").json()
    assert rs["notified"] == [w["id"]]
    denied = crm_cli("--as", "zhang", "retail", "waitlist", "restock", "Eggs")
    assert denied.exit_code == 1 and "zhang may not announce a restock" in denied.stderr
    s = crm_cli(
        "retail", "survey", "sample", "--name", "w2", "--size", "3", "--seed", "5", "--json"
    ).json()
    assert s["sampled"] == [c.id]
    a = crm_cli(
        "retail",
        "survey",
        "answer",
        "S-1",
        "--expected",
        "8",
        "--perceived",
        "10",
        "--survey",
        "w2",
        "--json",
    ).json()
    assert a["satisfaction"] == 1.25
    rep = crm_cli("retail", "survey", "report", "--period", "week", "--json").json()
    assert rep["periods"][0]["period"] == "2026-W02"
    (abc,) = crm_cli("jobs", "run", "retail.abc_service", "--json").json()
    assert abc["summary"]["classes"]["A"]["customers"] == 1


@RETAIL
def test_fuel_commands_mask_phones_for_principals_without_pii(crm, crm_cli):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.config.core["roles"]["clerk"] = {"scope": "all", "permissions": ["read", "write"]}
    crm.staff.add("clerk", "Clerk", roles=["clerk"])
    p1 = crm_cli(
        "retail",
        "fuel",
        "visit1",
        "--plate",
        "豫A55555",
        "--model",
        "Camry",
        "--staff",
        "zhang",
        "--json",
    )
    assert p1.exit_code == 0, p1.stderr
    early = crm_cli("retail", "fuel", "visit3", "豫A55555", "--phone", "13712345678")
    assert early.exit_code == 1 and "visit 3 needs visit 2 first" in early.stderr
    no = crm_cli("retail", "fuel", "visit2", "豫A55555", "--name", "Guo", "--employer", "Bank")
    assert no.exit_code == 1 and "consent" in no.stderr
    p2 = crm_cli(
        "retail",
        "fuel",
        "visit2",
        "豫A55555",
        "--name",
        "Guo",
        "--employer",
        "Bank",
        "--consent",
        "--staff",
        "zhang",
        "--json",
    ).json()
    assert p2["step"] == 2
    p3 = crm_cli(
        "retail",
        "fuel",
        "visit3",
        "豫A55555",
        "--phone",
        "13712345678",
        "--detail",
        "fuel=95",
        "--json",
    ).json()
    assert p3["phone"] == "+8613712345678" and p3["details"] == {"fuel": "95"}
    masked = crm_cli("--as", "clerk", "retail", "fuel", "show", "豫A55555", "--json").json()
    assert masked["phone"] == "+86137****5678"
    ratio = crm_cli("retail", "fuel", "ratio", "--json").json()
    assert ratio["all"][0]["customers"] == 1 and ratio["under"][0]["short_by"] == 14
    assert "1:15 rule" in crm_cli("retail", "fuel", "ratio").stdout
    (od,) = crm_cli("jobs", "run", "retail.overdue", "--json").json()
    assert od["summary"]["overdue"] == 0
    assert crm_cli("retail", "fuel", "callbacks", "--json").json() == []
    missing = crm_cli("retail", "fuel", "outcome", "7", "--outcome", "x")
    assert missing.exit_code == 1 and "call-back 7 not found" in missing.stderr
