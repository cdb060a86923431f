"""A plugin written outside the repository, installed and enabled using only the README."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "crm-greeter"
version = "0.3.0"
dependencies = ["crmcore"]

[project.entry-points."crmcore.plugins"]
greeter = "crm_greeter"

[tool.setuptools]
packages = ["crm_greeter"]
"""

PLUGIN = '''
"""A stranger's plugin: a nickname attribute, a hook and a command."""
from __future__ import annotations

import click
import sqlalchemy as sa

from crmcore import Attribute, PluginInfo, ValidationError, hookimpl
from crmcore.cli import JSON_OPTION, emit, pass_crm
from crmcore.schema import customers

metadata = sa.MetaData()
greetings = sa.Table(
    "greeter_greetings", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey(customers.c.id), nullable=False),
    sa.Column("text", sa.String(200), nullable=False),
)


@hookimpl
def crm_plugin_info():
    return PluginInfo(version="0.3.0", description="greets new customers")


@hookimpl
def crm_config_schema():
    return {"type": "object", "additionalProperties": False,
            "properties": {"salutation": {"type": "string", "default": "Hello"}}}


@hookimpl
def crm_customer_attributes():
    return [Attribute(name="greeter.nickname", schema={"type": "string", "maxLength": 20})]


@hookimpl
def crm_tables():
    return [greetings]


@hookimpl
def crm_customer_created(crm, customer):
    salutation = crm.plugin_config("greeter")["salutation"]
    nickname = customer.attributes.get("greeter.nickname", customer.name)
    crm.db.execute(greetings.insert().values(customer_id=customer.id, text=f"{salutation}, {nickname}!"))
    crm.add_timeline_entry(customer, "greeting", f"{salutation}, {nickname}!", source="greeter")


@hookimpl
def crm_cli_commands():
    @click.group("greeter")
    def group():
        """Greetings."""

    @group.command("show")
    @click.argument("ref")
    @JSON_OPTION
    @pass_crm
    def show(crm, ref, as_json):
        """The greeting of customer REF."""
        with crm.transaction(write=False):
            c = crm.get_customer(ref)
            text = crm.db.scalar(sa.select(greetings.c.text).where(greetings.c.customer_id == c.id))
        if text is None:
            raise ValidationError(f"customer {ref} has no greeting")
        emit({"customer": c.id, "greeting": text}, as_json, text)

    return [group]
'''


def sh(args, cwd, env):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_stranger_plugin_installs_enables_and_works(tmp_path: Path):
    src = tmp_path / "crm-greeter"
    (src / "crm_greeter").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "crm_greeter" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    installed = sh([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], tmp_path, env)
    assert installed.returncode == 0, installed.stderr
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    work = tmp_path / "work"
    work.mkdir()
    crm = [sys.executable, "-m", "crmcore"]

    listed = json.loads(sh([*crm, "plugins", "list", "--json"], work, env).stdout)
    greeter = next(p for p in listed if p["name"] == "greeter")
    assert greeter["enabled"] is False and greeter["version"] == "0.3.0"
    assert "crm_customer_created" in greeter["hooks"]

    assert sh([*crm, "init"], work, env).returncode == 0
    (work / "crm.toml").write_text((work / "crm.toml").read_text().replace(
        "plugins = []", 'plugins = ["greeter"]') + '\n[plugins.greeter]\nsalutation = "Ni hao"\n')
    upgraded = sh([*crm, "db", "upgrade", "--json"], work, env)
    assert upgraded.returncode == 0, upgraded.stderr

    added = sh([*crm, "customer", "add", "--name", "Wu Fang", "--attr", "greeter.nickname=Fangfang",
                "--json"], work, env)
    assert added.returncode == 0, added.stderr
    shown = sh([*crm, "greeter", "show", "1", "--json"], work, env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"customer": 1, "greeting": "Ni hao, Fangfang!"}
    timeline = json.loads(sh([*crm, "timeline", "1", "--json"], work, env).stdout)
    assert any(e["source"] == "greeter" and e["kind"] == "greeting" for e in timeline)

    too_long = sh([*crm, "customer", "add", "--name", "X", "--attr", "greeter.nickname=" + "x" * 21],
                  work, env)
    assert too_long.returncode == 1 and "greeter.nickname" in too_long.stderr
    hooks = json.loads(sh([*crm, "plugins", "hooks", "--json"], work, env).stdout)
    assert hooks["crm_customer_created"] == ["greeter"]
