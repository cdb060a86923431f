"""Start-up: commands that need no database import neither SQLAlchemy, numpy nor a
plugin, and ``crm --help`` still lists the enabled plugins' groups.

Nothing here is timed (bench/startup.py measures); the tests check what is imported.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import crmcore
from crmcore import config as config_mod
from crmcore import plugins as plugins_mod
from crmcore.cli import cli
from crmcore.errors import PluginError

CRM_SCRIPT = Path(sys.executable).with_name("crm")
HEAVY = ("sqlalchemy", "alembic", "numpy", "scipy", "jsonschema", "pluggy", "psycopg")
PLUGIN_GROUPS = {"retail": "retail", "utility": "utility", "insurance": "insurance"}
PLUGIN_GROUPS["real_estate"] = "real-estate"


def imported_by(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the installed ``crm`` script with ``-X importtime``; the modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(CRM_SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return proc, modules


def heavy(modules: set[str]) -> list[str]:
    tops = {m.split(".")[0] for m in modules}
    return sorted(t for t in tops if t in HEAVY or t.startswith("crm_"))


def test_crm_version_imports_no_database_layer_no_numpy_and_no_plugin(tmp_path):
    proc, modules = imported_by(["--version"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "crmcore.cli" in modules  # the measurement saw the real entry point
    assert heavy(modules) == []
    assert "crmcore.service" not in modules


def test_crm_help_lists_the_enabled_plugins_groups_without_importing_them(tmp_path):
    installed = sorted(n for n in plugins_mod.installed() if n in PLUGIN_GROUPS)
    if not installed:
        pytest.skip("none of the bundled plugins is installed")
    for name in installed:
        dist = plugins_mod.installed()[name].dist
        assert dist is not None and any(
            ep.group == plugins_mod.COMMANDS_ENTRY_POINT_GROUP for ep in dist.entry_points
        ), f"{name}: its crmcore.commands entry points are not installed; pip install -e it again"
    (tmp_path / "crm.toml").write_text(
        "[crm]\nplugins = [" + ", ".join(f'"{n}"' for n in installed) + "]\n", encoding="utf-8"
    )
    proc, modules = imported_by(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    commands = proc.stdout.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands.splitlines() if line.strip()}
    assert {PLUGIN_GROUPS[n] for n in installed} <= listed
    assert {"customer", "demo", "init", "timeline"} <= listed
    assert heavy(modules) == []


def test_a_plugin_group_is_imported_when_it_runs(tmp_path):
    if "retail" not in plugins_mod.installed():
        pytest.skip("the retail plugin is not installed")
    (tmp_path / "crm.toml").write_text('[crm]\nplugins = ["retail"]\n', encoding="utf-8")
    proc, modules = imported_by(["retail", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "member" in proc.stdout and "crm_retail.cli" in modules


def test_every_public_name_is_exported_lazily():
    assert sorted(crmcore.__all__) == sorted(crmcore._EXPORTS)
    for name in crmcore.__all__:
        assert getattr(crmcore, name) is not None
    assert crmcore.schema is importlib.import_module("crmcore.schema")
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        crmcore.nonexistent  # noqa: B018


def fake_distribution(site: Path, name: str, commands: dict[str, str]) -> None:
    """A plugin installed as a real .dist-info on ``site`` (what pip would write)."""
    package = site / f"crm_{name}"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import click\n"
        "from crmcore import hookimpl\n\n"
        f"@click.group({name!r})\n"
        "def group():\n"
        f'    """The {name} group."""\n\n'
        "@hookimpl\n"
        "def crm_cli_commands():\n"
        "    return [group]\n",
        encoding="utf-8",
    )
    info = site / f"crm_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: crm-{name}\nVersion: 1.0\nSummary: the {name} plugin\n",
        encoding="utf-8",
    )
    lines = ["[crmcore.plugins]", f"{name} = crm_{name}"]
    if commands:
        lines += ["", "[crmcore.commands]", *(f"{k} = {v}" for k, v in commands.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    importlib.invalidate_caches()
    yield path
    for module in [m for m in sys.modules if m.startswith("crm_fake")]:
        del sys.modules[module]


def test_help_lists_a_plugin_without_command_entry_points_by_loading_it(site, tmp_path):
    fake_distribution(site, "fakeplain", {})
    config = tmp_path / "crm.toml"
    config.write_text('[crm]\nplugins = ["fakeplain"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "--help"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("fakeplain"))
    assert line.split(None, 1)[1] == "The fakeplain group."  # its own help: it was loaded


def test_command_entry_points_must_name_the_declared_commands(site):
    fake_distribution(site, "fakewrong", {"other": "crm_fakewrong:group"})
    cfg = config_mod.from_dict({"crm": {"plugins": ["fakewrong"]}})
    with pytest.raises(PluginError, match=r"fakewrong.*\['other'\].*\['fakewrong'\]"):
        plugins_mod.build(cfg)


def test_command_entry_points_must_point_at_the_declared_command(site):
    (site / "crm_fakeother.py").write_text("import click\nstray = click.Group('fakeother')\n")
    fake_distribution(site, "fakepoint", {"fakepoint": "crm_fakeother:stray"})
    cfg = config_mod.from_dict({"crm": {"plugins": ["fakepoint"]}})
    with pytest.raises(PluginError, match="is not the command crm_cli_commands declares"):
        plugins_mod.build(cfg)


def test_matching_command_entry_points_are_listed_from_metadata(site, tmp_path):
    fake_distribution(site, "fakegood", {"fakegood": "crm_fakegood:group"})
    plugins_mod.build(config_mod.from_dict({"crm": {"plugins": ["fakegood"]}}))  # accepted
    del sys.modules["crm_fakegood"]
    config = tmp_path / "crm.toml"
    config.write_text('[crm]\nplugins = ["fakegood"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "--help"])
    assert result.exit_code == 0, result.output
    assert "the fakegood plugin" in result.output  # the distribution's summary
    assert "crm_fakegood" not in sys.modules  # listed without importing the plugin


def test_the_startup_bench_runs(tmp_path):
    bench = Path(__file__).resolve().parents[1] / "bench" / "startup.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--runs", "1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[0:2] for line in proc.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["python", "crm", "crm"]
