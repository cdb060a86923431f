"""A plugin written outside the repository, installed and enabled using only the README."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_blocks(section: str, lang: str) -> list[str]:
    """The ``lang`` code blocks of a README section (up to the next heading of that level)."""
    text = README.read_text(encoding="utf-8")
    body = text.split(section, 1)[1]
    level = section.split(" ")[0]
    body = re.split(rf"\n{level} ", body, maxsplit=1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", body, flags=re.S)


PYPROJECT = readme_blocks("## Writing a plugin", "toml")[0]
PLUGIN = readme_blocks("## Writing a plugin", "python")[0]
PLUGIN_TEST = readme_blocks("### Testing a plugin", "python")[0]


def sh(args, cwd, env):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def greeter_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The README's plugin, built and installed with pip into a directory of its own."""
    tmp = tmp_path_factory.mktemp("greeter")
    src = tmp / "crm-greeter"
    (src / "crm_greeter").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "crm_greeter" / "__init__.py").write_text(PLUGIN)
    site = tmp / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    installed = sh(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(src),
        ],
        tmp,
        env,
    )
    assert installed.returncode == 0, installed.stderr
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_a_stranger_plugin_installs_enables_and_works(tmp_path: Path, greeter_env: dict[str, str]):
    env = greeter_env
    work = tmp_path / "work"
    work.mkdir()
    crm = [sys.executable, "-m", "crmcore"]

    listed = json.loads(sh([*crm, "plugins", "list", "--json"], work, env).stdout)
    greeter = next(p for p in listed if p["name"] == "greeter")
    assert greeter["enabled"] is False and greeter["version"] == "0.3.0"
    assert "crm_customer_created" in greeter["hooks"]

    assert sh([*crm, "init"], work, env).returncode == 0
    (work / "crm.toml").write_text(
        (work / "crm.toml").read_text().replace("plugins = []", 'plugins = ["greeter"]')
        + '\n[plugins.greeter]\nsalutation = "Ni hao"\n'
    )
    upgraded = sh([*crm, "db", "upgrade", "--json"], work, env)
    assert upgraded.returncode == 0, upgraded.stderr

    added = sh(
        [
            *crm,
            "customer",
            "add",
            "--name",
            "Wu Fang",
            "--attr",
            "greeter.nickname=Fangfang",
            "--json",
        ],
        work,
        env,
    )
    assert added.returncode == 0, added.stderr
    shown = sh([*crm, "greeter", "show", "1", "--json"], work, env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"customer": 1, "greeting": "Ni hao, Fangfang!"}
    timeline = json.loads(sh([*crm, "timeline", "1", "--json"], work, env).stdout)
    assert any(e["source"] == "greeter" and e["kind"] == "greeting" for e in timeline)

    too_long = sh(
        [*crm, "customer", "add", "--name", "X", "--attr", "greeter.nickname=" + "x" * 21],
        work,
        env,
    )
    assert too_long.returncode == 1 and "greeter.nickname" in too_long.stderr
    hooks = json.loads(sh([*crm, "plugins", "hooks", "--json"], work, env).stdout)
    assert hooks["crm_customer_created"] == ["greeter", "core"]  # the core's webhook event


def test_the_readme_plugin_test_passes_against_the_installed_plugin(
    tmp_path: Path, greeter_env: dict[str, str]
):
    (tmp_path / "test_greeter.py").write_text(PLUGIN_TEST)
    env = greeter_env
    result = sh(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_greeter.py"],
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout
