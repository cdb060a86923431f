"""Optional dependencies: without scipy (extra ``analytics``) only ``crm analytics
clv`` is unavailable and says which extra to install; without psycopg (extra
``postgres``) a PostgreSQL URL says so; numpy is a core dependency."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def crm_without(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``crm ARGS`` in a fresh interpreter where importing ``module`` fails, as it
    does when the package is not installed."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None\n"
        "from crmcore.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "crmcore", "init", "--plugin", "retail"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CRM_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_without_scipy_clv_names_the_extra_and_the_other_analytics_work(project: Path) -> None:
    clv = crm_without("scipy", project, "analytics", "clv", "--until", "2026-01-01")
    assert clv.returncode == 1
    assert clv.stderr == (
        "error: the BG/NBD model (crm analytics clv) needs scipy, which is not installed: "
        "install crmcore[analytics]\n"
    )
    for command in (["abc"], ["rfm"], ["overdue"], ["stats"]):
        done = crm_without("scipy", project, "analytics", *command, "--json")
        assert done.returncode == 0, (command, done.stderr)
        assert "scipy" not in done.stderr
    # the retail jobs (ABC service levels, overdue follow-ups) run without scipy too
    jobs = crm_without("scipy", project, "jobs", "run", "--at", "2026-07-01T02:00")
    assert jobs.returncode == 0, jobs.stderr


def test_without_psycopg_a_postgresql_url_names_the_extra(tmp_path: Path) -> None:
    for url in ("postgresql://crm@db.example/crm", "postgres://crm@db.example/crm"):
        done = crm_without("psycopg", tmp_path, "--db", url, "customer", "list")
        assert done.returncode == 1
        assert done.stderr == (
            f"error: database {url}: PostgreSQL needs the psycopg driver: "
            "install crmcore[postgres]\n"
        )
    assert list(tmp_path.iterdir()) == []


def test_without_numpy_analytics_say_what_is_missing_in_one_line(project: Path) -> None:
    done = crm_without("numpy", project, "analytics", "abc")
    assert done.returncode == 1
    assert done.stderr == (
        "error: analytics needs numpy, which is not installed: "
        "reinstall crmcore (numpy is one of its dependencies)\n"
    )


def test_an_unrelated_missing_module_is_still_reported_as_a_bug() -> None:
    from crmcore.extras import missing

    assert missing(ModuleNotFoundError("No module named 'nosuch'", name="nosuch")) is None
    assert "install crmcore[analytics]" in str(
        missing(ModuleNotFoundError("halted", name="scipy.special"))
    )


def test_the_declared_dependencies_match() -> None:
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("numpy") for d in core["dependencies"])
    assert [d for d in core["optional-dependencies"]["analytics"]] == ["scipy>=1.11"]
    assert any(d.startswith("psycopg") for d in core["optional-dependencies"]["postgres"])
    retail = tomllib.loads((ROOT / "plugins" / "retail" / "pyproject.toml").read_text())
    assert any(d.startswith("numpy") for d in retail["project"]["dependencies"])
