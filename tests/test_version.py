"""Each distribution writes its version once, as ``__version__`` in its package;
the installed metadata, ``crm --version`` and the plugin's ``PluginInfo`` agree."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (folder holding pyproject.toml, distribution name, package, plugin entry module)
DISTRIBUTIONS = [
    (ROOT, "crmcore", "crmcore", None),
    (ROOT / "plugins" / "retail", "crmcore-retail", "crm_retail", "crm_retail.plugin"),
    (ROOT / "plugins" / "utility", "crmcore-utility", "crm_utility", "crm_utility.plugin"),
    (ROOT / "plugins" / "insurance", "crmcore-insurance", "crm_insurance", "crm_insurance.plugin"),
    (
        ROOT / "plugins" / "real_estate",
        "crmcore-real_estate",
        "crm_real_estate",
        "crm_real_estate.plugin",
    ),
]


@pytest.mark.parametrize(("folder", "dist", "package", "entry"), DISTRIBUTIONS)
def test_the_version_is_written_once_in_the_package(folder, dist, package, entry):
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == dist
    assert "version" not in project["project"], f"{dist}: pyproject.toml repeats the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": f"{package}.__version__"}

    version = importlib.import_module(package).__version__
    assert importlib.metadata.version(dist) == version, (
        f"{dist}: installed metadata differs from {package}.__version__; reinstall it (pip install -e)"
    )
    if entry is not None:
        assert importlib.import_module(entry).crm_plugin_info().version == version


def test_crm_version_prints_the_package_version():
    import crmcore

    # a new process: click remembers the first program name --version printed
    proc = subprocess.run(
        [sys.executable, "-m", "crmcore", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"crm, version {crmcore.__version__}"


def test_the_changelog_has_an_unreleased_section_and_one_for_the_version():
    import crmcore

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## [")]
    assert headings[0] == "## [Unreleased]"
    assert any(h.startswith(f"## [{crmcore.__version__}] - ") for h in headings), headings
