"""With every shipped plugin enabled and their demo data loaded, every CLI command is
run as a rep, a supervisor and an auditor: none shows a customer the principal may
not see (listings, reports, timelines, exports), the auditor sees personal data
(phones, e-mails, attributes declared pii) only masked, and the plugins'
configuration commands refuse a rep and an auditor with one line and exit 1."""

from __future__ import annotations

import click
import pytest

from crmcore.cli import cli
from crmcore.plugins import installed

SHIPPED = ["retail", "utility", "insurance", "real_estate"]
SKIP = {
    ("init",),
    ("demo",),
    ("db", "restore"),
    ("db", "backup"),
    ("plugins", "purge"),
    ("customer", "forget"),
    ("customer", "export"),
    ("serve",),  # runs until stopped; tests/test_api_serve.py starts it on a free port
}
REF_NAMES = {"ref", "customer", "customer_ref", "keep", "other"}
# Commands that change how a plugin is set up (projects, buildings, units, teams and
# what they cover): never a rep's or an auditor's to run.
CONFIGURATION = [
    ("real-estate", "project", "add", "ZZ", "--name", "Test project"),
    ("real-estate", "building", "add", "JD", "Z9"),
    ("real-estate", "unit", "add", "JD/A1", "9901"),
    ("real-estate", "unit", "handover", "JD/A1/1502", "--at", "2026-06-01"),
    ("real-estate", "team", "add", "ZZT", "--name", "test team", "--leader", "re-wang"),
    ("real-estate", "team", "cover", "ELE", "--category", "structure"),
]
ROLES = {"chen": "rep", "li": "supervisor", "audit": "auditor"}


def leaf_commands(group: click.Group, ctx: click.Context, path=()):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from leaf_commands(cmd, ctx, (*path, name))
        elif cmd is not None:
            yield (*path, name), cmd


def _national(phone: str) -> str:
    """+8613900001111 -> 13900001111: how a number may be printed without the code."""
    return phone[3:] if phone.startswith("+86") else phone


def hidden_markers(crm, who):
    """Customers ``who`` may not see, and text that would show one of them (a name
    that is also a member of staff's is left out: staff listings show it rightly)."""
    everyone = crm.customers.list()
    visible = {c.id for c in crm.as_(who).customers.list()}
    hidden = [c for c in everyone if c.id not in visible]
    staff_names = {s.name for s in crm.staff.list()}
    markers = set()
    for c in hidden:
        markers |= {c.name, c.email, c.external_id} - {None, ""} - staff_names
        if c.phone:
            markers.add(_national(c.phone))
    return hidden, {m for m in markers if len(m) >= 5}


def personal_markers(crm):
    """Every customer's personal data: phones, e-mails, attributes declared pii."""
    pii = [name for name, a in crm.plugins.declared.get("attribute", {}).items() if a.pii]
    markers = set()
    for c in crm.customers.list():
        markers |= {c.email} - {None, ""}
        if c.phone:
            markers.add(_national(c.phone))
        markers |= {str(c.attributes[name]) for name in pii if c.attributes.get(name)}
    return {m for m in markers if len(m) >= 5}


@pytest.fixture
def demo_crm(crm_factory):
    from crmcore.demo import DEMO_AT, load_demo_data

    crm = crm_factory(plugins=SHIPPED)
    crm.clock.set(DEMO_AT)
    load_demo_data(crm, command="test setup")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    return crm


def _context(crm):
    from crmcore.cli._app import AppContext

    return click.Context(
        cli, obj=AppContext(config_path=None, database=None, principal=None, crm=crm)
    )


@pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)
@pytest.mark.parametrize("who", list(ROLES))
def test_no_command_shows_what_the_principal_may_not_see(demo_crm, crm_cli, who):
    crm = demo_crm
    hidden, markers = hidden_markers(crm, who)
    if ROLES[who] == "auditor":
        assert hidden == []  # the auditor sees every customer, but no personal data
        markers = personal_markers(crm)
        secret = max(crm.customers.list(), key=lambda c: len(c.attributes) + bool(c.phone))
    else:
        assert len(hidden) >= (3 if ROLES[who] == "rep" else 1)  # other teams' customers
        secret = hidden[0]
    assert len(markers) >= 3

    ran, refused = [], []
    for path, cmd in leaf_commands(cli, _context(crm)):
        if path in SKIP or path[:1] == ("db",) and path != ("db", "upgrade"):
            continue
        required = [p for p in cmd.params if p.required]
        args = list(path)
        if any(p.name not in REF_NAMES for p in required):
            continue  # needs data of its own kind (an id of a policy, a file...)
        args += [str(secret.id)] * len(required)
        if any(o.name == "as_json" for o in cmd.params):
            args.append("--json")
        result = crm_cli("--as", who, *args, input="n\n", crm=crm)
        assert result.exit_code in (0, 1), (who, path, result.stderr)  # never a usage error
        text = result.stdout + result.stderr
        if ROLES[who] == "auditor" and path == ("audit",):
            # the audit trail prints the recorded before/after values; masking those
            # is the audit trail's own rule and is checked with the audit trail
            text = ""
        leaked = [m for m in markers if m in text]
        assert not leaked, (who, path, leaked)
        if result.exit_code:
            assert len(result.stderr.strip().splitlines()) == 1, (who, path, result.stderr)
        (refused if required else ran).append(path)
        if required and ROLES[who] != "auditor":
            assert result.exit_code != 0, (who, path, result.stdout[:300])
    assert len(ran) >= 15, ran
    plugin_groups = {p[0] for p in ran + refused}
    assert {"retail", "utility", "insurance", "real-estate"} <= plugin_groups, plugin_groups


@pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)
@pytest.mark.parametrize("who", ["chen", "audit"])
def test_plugin_configuration_commands_refuse_a_rep_and_an_auditor(demo_crm, crm_cli, who):
    for args in CONFIGURATION:
        result = crm_cli("--as", who, *args, crm=demo_crm)
        assert result.exit_code == 1, (who, args, result.stdout[:300])
        assert result.stdout == "", (who, args)
        assert len(result.stderr.strip().splitlines()) == 1, (who, args, result.stderr)
        assert result.stderr.startswith("error: "), (who, args, result.stderr)
    # the administrator's own run of the same commands works (the arguments are valid)
    for args in CONFIGURATION:
        assert crm_cli(*args, crm=demo_crm).exit_code == 0, args
