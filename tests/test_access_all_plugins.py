"""With every shipped plugin enabled and their demo data loaded, a rep cannot see
another rep's customer through any command: listings, reports, timelines, exports."""

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
}
REF_NAMES = {"ref", "customer", "customer_ref", "keep", "other"}


def leaf_commands(group: click.Group, ctx: click.Context, path=()):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from leaf_commands(cmd, ctx, (*path, name))
        elif cmd is not None:
            yield (*path, name), cmd


def hidden_markers(crm, rep):
    everyone = crm.list_customers()
    visible = {c.id for c in crm.as_(rep).list_customers()}
    hidden = [c for c in everyone if c.id not in visible]
    markers = set()
    for c in hidden:
        markers |= {c.name, c.phone, c.email, c.external_id} - {None, ""}
    return hidden, {m for m in markers if len(m) >= 5}


@pytest.mark.skipif(
    not set(SHIPPED) <= set(installed()), reason="the shipped plugins are not installed"
)
def test_a_rep_sees_no_other_reps_customer_through_any_command(crm_factory, crm_cli, tmp_path):
    from crmcore.demo import DEMO_AT, load_demo_data

    crm = crm_factory(plugins=SHIPPED)
    crm.clock.set(DEMO_AT)
    load_demo_data(crm, command="test setup")
    rep = "chen"
    hidden, markers = hidden_markers(crm, rep)
    assert len(hidden) >= 3 and markers  # the demo gives other reps customers of every trade
    secret = hidden[0]

    from crmcore.cli._app import AppContext

    ctx = click.Context(
        cli, obj=AppContext(config_path=None, database=None, principal=None, crm=crm)
    )
    ran, refused = [], []
    for path, cmd in leaf_commands(cli, ctx):
        if path in SKIP or path[:1] == ("db",) and path != ("db", "upgrade"):
            continue
        required = [p for p in cmd.params if p.required]
        args = list(path)
        if any(p.name not in REF_NAMES for p in required):
            continue  # needs data of its own kind (an id of a policy, a file...)
        args += [str(secret.id)] * len(required)
        if any(o.name == "as_json" for o in cmd.params):
            args.append("--json")
        result = crm_cli("--as", rep, *args, input="n\n")
        text = result.stdout + result.stderr
        leaked = [m for m in markers if m in text]
        assert not leaked, (path, leaked)
        (refused if required else ran).append(path)
        if required:
            assert result.exit_code != 0, (path, result.stdout[:300])
    assert len(ran) >= 15, ran
    plugin_groups = {p[0] for p in ran + refused}
    assert {"retail", "utility", "insurance", "real-estate"} <= plugin_groups, plugin_groups
