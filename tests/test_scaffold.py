"""crm plugin new NAME: a working plugin package, or a one-line refusal.

The generated plugin is not pip-installed here (installing into the running
environment would make it an installed plugin for every other test): its
directory goes on ``PYTHONPATH`` and its test registers it through
``extra_plugins``, which is how the generated test is written to run before
installation too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

from click.testing import CliRunner

from crmcore.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_generated_plugin_passes_its_own_test(tmp_path):
    target = tmp_path / "greeter"
    result = run("plugin", "new", "greeter", "--dir", target, "--json")
    assert result.exit_code == 0, result.output
    written = set(json.loads(result.stdout)["files"])
    assert {
        "pyproject.toml",
        "README.md",
        "crm_greeter/plugin.py",
        "crm_greeter/migrations/greeter_0001_initial.py",
        "tests/test_greeter_plugin.py",
    } <= written
    project = tomllib.loads((target / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]
    assert points["crmcore.plugins"] == {"greeter": "crm_greeter.plugin"}
    assert points["crmcore.commands"] == {"greeter": "crm_greeter.cli:group"}
    assert project["tool"]["setuptools"]["package-data"] == {"crm_greeter": ["migrations/*.py"]}
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "tests"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_the_generated_plugin_is_ruff_clean(tmp_path):
    target = tmp_path / "ruffed"
    assert run("plugin", "new", "ruffed", "--dir", target).exit_code == 0
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=target, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_name_with_underscores_gets_a_dashed_command(tmp_path):
    target = tmp_path / "pet_shop"
    assert run("plugin", "new", "pet_shop", "--dir", target).exit_code == 0
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["crmcore.commands"] == {
        "pet-shop": "crm_pet_shop.cli:group"
    }
    assert (
        'revision = "pet_shop_0001"'
        in (target / "crm_pet_shop" / "migrations" / "pet_shop_0001_initial.py").read_text()
    )


def test_an_existing_directory_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = run("plugin", "new", "greeter", "--dir", target)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --dir {target}: already exists; choose a new directory"
    ]
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging left


def test_a_bad_name_is_refused_in_one_line(tmp_path):
    for bad in ("Greeter", "1st", "a", "pet-shop", "x__y", "trailing_", "crm.x", "é"):
        result = run("plugin", "new", bad, "--dir", tmp_path / "out")
        assert result.exit_code == 1, bad
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: plugin name {bad!r}: expected"), line
    assert list(tmp_path.iterdir()) == []


def test_a_core_command_name_is_refused(tmp_path):
    result = run("plugin", "new", "customer", "--dir", tmp_path / "c")
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == "error: plugin name 'customer': 'crm customer' is a core command"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_parent_directory_is_refused(tmp_path):
    result = run("plugin", "new", "greeter", "--dir", tmp_path / "no" / "such")
    assert result.exit_code == 1
    assert "is not a directory" in result.stderr and len(result.stderr.strip().splitlines()) == 1
