"""``crm insurance ...`` (issue rule 7): every command, --json, errors, and the demo."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, add_policy, d, world

from crmcore.testing import assert_plugin_contract

pytestmark = pytest.mark.crm(plugins=PLUGINS)

COMMANDS = [
    ("policy", "add"),
    ("policy", "list"),
    ("policy", "status"),
    ("policy", "payout"),
    ("profile",),
    ("visit", "add"),
    ("visit", "list"),
    ("replies",),
    ("report",),
    ("vip", "list"),
    ("orphans", "list"),
    ("orphans", "reassign"),
    ("opportunities",),
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help_and_json(cmd):
    from click.testing import CliRunner
    from crm_insurance.cli import insurance

    r = CliRunner().invoke(insurance, [*cmd, "--help"])
    assert r.exit_code == 0 and "--json" in r.output


def test_policy_visit_sms_report_round_trip(crm, crm_cli):
    world(crm)
    r = crm_cli(
        "insurance",
        "policy",
        "add",
        "C-1",
        "--no",
        "L-1",
        "--line",
        "life",
        "--term",
        "long",
        "--sum-at-risk",
        "1500000",
        "--premium",
        "36000.50",
        "--start",
        "2015-07-01",
        "--paid-to",
        "2026-01-20",
        "--agent",
        "zhang",
        "--json",
    )
    assert r.exit_code == 0, r
    assert r.json()["premium_cents"] == 3_600_050
    assert r.json()["sum_at_risk_cents"] == 150_000_000
    r = crm_cli(
        "insurance", "visit", "add", "C-1", "--agent", "zhang", "--note", "check-up", "--json"
    )
    assert r.exit_code == 0 and r.json()["status"] == "pending"
    r = crm_cli("sms", "receive", "--from", "+86 139-0000-1111", "--text", "非常满意", "--json")
    assert r.exit_code == 0 and "verified visit" in r.json()["routed"][0]
    r = crm_cli("insurance", "visit", "list", "--status", "verified", "--json")
    assert [v["score"] for v in r.json()] == [5]
    r = crm_cli("insurance", "replies", "--matched", "--json")
    assert r.json()[0]["reason"] == "verified"
    r = crm_cli("insurance", "report", "--from", "2026-01-01", "--to", "2026-02-01", "--json")
    zhang = next(a for a in r.json()["agents"] if a["agent"] == "zhang")
    assert zhang["verified_rate"] == 1.0 and zhang["very_satisfied_share"] == 1.0
    r = crm_cli("insurance", "profile", "C-1", "--json")
    assert r.json()["grade"] == "gold"
    r = crm_cli("insurance", "vip", "list", "--json")
    assert r.json()[0]["grade"] == "gold" and r.json()[0]["due"] is False
    r = crm_cli("insurance", "opportunities", "--kind", "renewal", "--json")
    assert [(o["policy_no"], o["agent"]) for o in r.json()] == [("L-1", "zhang")]
    r = crm_cli(
        "insurance", "policy", "payout", "L-1", "--kind", "benefit", "--amount", "100", "--json"
    )
    assert r.exit_code == 0 and r.json()["amount_cents"] == 10_000
    r = crm_cli("insurance", "policy", "status", "L-1", "lapsed", "--json")
    assert r.json()["status"] == "lapsed"
    for human in (
        ("insurance", "report"),
        ("insurance", "visit", "list"),
        ("insurance", "replies"),
        ("insurance", "profile", "C-1"),
        ("insurance", "policy", "list"),
        ("insurance", "vip", "list"),
        ("insurance", "opportunities"),
        ("insurance", "orphans", "list"),
    ):
        assert crm_cli(*human).exit_code == 0, human


def test_orphans_vip_and_job_through_the_cli(crm, crm_cli):
    world(crm)
    crm.staff.add("zhou", "Zhou Min", roles=["rep"], team="north", supervisor="li")
    crm.customers.add("Sun Li", phone="137 0000 3333", owner="zhou", external_id="C-3")
    r = crm_cli(
        "insurance",
        "policy",
        "add",
        "C-3",
        "--no",
        "L-9",
        "--line",
        "life",
        "--term",
        "long",
        "--sum-at-risk",
        "2000000",
        "--premium",
        "1000",
        "--start",
        "2020-01-01",
        "--agent",
        "zhou",
        "--json",
    )
    assert r.exit_code == 0, r
    assert crm_cli("staff", "leave", "zhou").exit_code == 0
    assert [o["name"] for o in crm_cli("insurance", "orphans", "list", "--json").json()] == [
        "Sun Li"
    ]
    r = crm_cli("--as", "zhou", "insurance", "policy", "list", "--json")
    assert r.exit_code == 1 and "departed" in r.stderr
    r = crm_cli("insurance", "orphans", "reassign", "--all", "--json")
    assert r.exit_code == 0 and r.json()[0]["to"] in ("zhang", "chen")
    r = crm_cli("jobs", "run", "insurance.vip_visit_reminders", "--json")
    assert r.exit_code == 0, r
    r = crm_cli("jobs", "run", "insurance.vip_visit_reminders", "--json")  # idempotent
    assert r.json()[0]["summary"]["created"] == 0
    assert r.json()[0]["summary"]["already_reminded"] == 1


USER_ERRORS = [
    (
        (
            "policy",
            "add",
            "C-1",
            "--no",
            "X",
            "--line",
            "life",
            "--term",
            "long",
            "--sum-at-risk",
            "1.234",
            "--premium",
            "1",
            "--start",
            "2020-01-01",
            "--agent",
            "zhang",
        ),
        "more than 2 decimal places",
    ),
    (
        (
            "policy",
            "add",
            "C-1",
            "--no",
            "X",
            "--line",
            "life",
            "--term",
            "long",
            "--sum-at-risk",
            "1",
            "--premium",
            "1",
            "--start",
            "someday",
            "--agent",
            "zhang",
        ),
        "--start",
    ),
    (
        (
            "policy",
            "add",
            "C-404",
            "--no",
            "X",
            "--line",
            "life",
            "--term",
            "long",
            "--sum-at-risk",
            "1",
            "--premium",
            "1",
            "--start",
            "2020-01-01",
            "--agent",
            "zhang",
        ),
        "not found",
    ),
    (("visit", "add", "C-1"), "--agent"),
    (("report", "--from", "2026-02-01", "--to", "2026-01-01"), "not before"),
    (("orphans", "reassign", "C-1"), "not an orphan"),
    (("policy", "status", "L-404", "active"), "not found"),
]


def test_user_errors_exit_1_with_one_line(crm, crm_cli):
    world(crm)
    for args, message in USER_ERRORS:
        r = crm_cli("insurance", *args)
        assert r.exit_code == 1 and message in r.stderr, (args, r)
        assert len(r.stderr.strip().splitlines()) == 1
    assert crm_cli("insurance", "policy", "list", "--json").json() == []


def test_demo_loads_agents_policies_and_a_verified_visit(crm_factory):
    import datetime as dt

    from crm_insurance import demo, visits

    from crmcore import FixedClock

    crm = crm_factory(PLUGINS)
    crm.clock = FixedClock(dt.datetime(2026, 6, 15, 9, 0))
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen Jie", roles=["rep"], team="north", supervisor="li")
    crm.customers.add("Wu Fang", phone="139 0000 1111", owner="zhang", external_id="C-1001")
    crm.customers.add("Wu Lei", phone="139 0000 2222", owner="zhang", external_id="C-1002")
    with crm.transaction(command="demo"):
        text = demo.load(crm)
    assert "verified visit" in text and "unknown_number" in text and "Sun Li" in text
    statuses = {v["customer_id"]: v["status"] for v in visits.list_visits(crm)}
    assert statuses[crm.customers.get("C-1001").id] == "verified"


def seed_insurance(crm, customer):
    """A policy the customer holds and is insured by, and an agent's visit the
    customer answered by SMS: the rows forget and merge must handle."""
    from crm_insurance import visits

    if "zhang" not in {s.key for s in crm.staff.list()}:
        crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north")
    add_policy(crm, customer, f"CT-{customer.id}", insured=customer)
    visits.record_visit(crm, customer, agent="zhang", at=d("2026-01-05T09:00"), note="check-up")
    crm.messages.receive_sms(customer.phone, "非常满意")


def test_the_plugin_contract(crm_factory):
    assert_plugin_contract("insurance", crm_factory, seed=seed_insurance)
