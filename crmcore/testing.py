"""pytest fixtures for plugin authors (registered as a ``pytest11`` plugin).

- ``crm``: a CRM on a fresh temporary database, with the plugins named by the
  ``@pytest.mark.crm(plugins=[...], config={...})`` marker enabled, a fixed
  clock (``crm.clock``, a :class:`~crmcore.clock.FixedClock`) and the outbox
  captured (``crm_outbox``). It acts as the system principal; use
  ``crm.as_("staff-key")`` to act as someone.
- ``crm_factory``: make more CRMs (other plugins, config) in one test.
- ``crm_backend``: ``"sqlite"``, and also ``"postgresql"`` when the environment
  variable ``CRM_TEST_POSTGRES_URL`` is set: every test using ``crm`` runs on both.

A fresh database is a copy of a template made once per set of plugins
(SQLite), or a schema emptied before each test (PostgreSQL), so a test costs
milliseconds, not a migration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from crmcore import config as config_mod
from crmcore.access import SYSTEM
from crmcore.clock import FixedClock

DEFAULT_AT = dt.datetime(2026, 1, 5, 9, 0)  # a Monday
POSTGRES_ENV = "CRM_TEST_POSTGRES_URL"


def backends() -> list[str]:
    """The databases the ``crm`` fixture runs on: SQLite, and PostgreSQL when
    ``CRM_TEST_POSTGRES_URL`` is set."""
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


class CapturedOutbox:
    """The test's outbox: what is queued (in the database) and what was sent."""

    def __init__(self, crm: Any, path: Path) -> None:
        self.crm = crm
        self.path = path

    def queued(self, channel: str | None = None) -> list[Any]:
        """The messages waiting in the outbox (of one ``channel``), oldest first."""
        return [
            m for m in self.crm.outbox(status="queued") if channel is None or m.channel == channel
        ]

    def send(self) -> list[dict[str, Any]]:
        """Deliver everything queued (through the log channel unless a plugin
        provides the channel) and return what the log channel received."""
        self.crm.send_outbox()
        return self.sent()

    def sent(self) -> list[dict[str, Any]]:
        """What the log channel delivered so far, one record per message."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]


class _Templates:
    """Migrated template databases, one per (backend, plugin set)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, str] = {}

    def database(
        self, backend: str, plugins: tuple[str, ...], extra: Mapping[str, object], target: Path
    ) -> str:
        from crmcore.service import CRM

        key = hashlib.sha1(repr((backend, plugins, sorted(extra))).encode()).hexdigest()[:10]
        if backend == "sqlite":
            template = self.root / f"template-{key}.db"
            if key not in self.made:
                url = f"sqlite:///{template}"
                crm = CRM(_config(url, plugins, {}), extra_plugins=extra, principal=SYSTEM)
                crm.upgrade()
                crm.engine.dispose()
                self.made[key] = url
            shutil.copy(template, target)
            return f"sqlite:///{target}"
        base = os.environ[POSTGRES_ENV]
        # one schema per pytest-xdist worker, so parallel workers never share tables
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        schema = f"crmtest_{worker}_{key}"
        url = _with_search_path(base, schema)
        if key not in self.made:
            _reset_schema(base, schema)
            crm = CRM(_config(url, plugins, {}), extra_plugins=extra, principal=SYSTEM)
            crm.upgrade()
            crm.engine.dispose()
            self.made[key] = url
        else:
            _truncate(url)
        return url


def _with_search_path(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _reset_schema(base: str, schema: str) -> None:
    from sqlalchemy import text

    from crmcore.db import make_engine

    engine = make_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


_DELETE_ORDER: dict[str, list[str]] = {}


def _truncate(url: str) -> None:
    """Empty every table of the schema and restart its sequences.

    DELETE in foreign-key order is much faster than TRUNCATE on the small
    tables of a test (TRUNCATE recreates each table's files). The audit log
    refuses deletes by trigger, so the triggers are off for this transaction
    (``session_replication_role = replica``: a superuser, or a role granted
    SET on that parameter)."""
    from sqlalchemy import MetaData, text

    from crmcore.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        if url not in _DELETE_ORDER:
            meta = MetaData()
            meta.reflect(conn)
            _DELETE_ORDER[url] = [
                t.name for t in reversed(meta.sorted_tables) if t.name != "alembic_version"
            ]
        statements = "; ".join(f'DELETE FROM "{name}"' for name in _DELETE_ORDER[url])
        if statements:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(statements)
        conn.execute(
            text(
                "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
            )
        )
    engine.dispose()


def _config(
    url: str,
    plugins: tuple[str, ...],
    extra_config: Mapping[str, Any],
    outbox_path: Path | None = None,
) -> config_mod.Config:
    # tests need no durability against power loss: skip the fsync of every commit
    raw: dict[str, Any] = {
        "crm": {"database": url, "plugins": list(plugins), "sqlite_synchronous": "off"}
    }
    crm_section = dict(extra_config.get("crm", {}))
    raw["crm"].update(crm_section)
    if outbox_path is not None:
        raw["crm"]["outbox_path"] = str(outbox_path)
    if extra_config.get("plugins"):
        raw["plugins"] = dict(extra_config["plugins"])
    return config_mod.from_dict(raw)


@pytest.fixture(scope="session")
def _crm_templates(tmp_path_factory: pytest.TempPathFactory) -> _Templates:
    return _Templates(tmp_path_factory.mktemp("crm-templates"))


@pytest.fixture(params=backends())
def crm_backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: "sqlite" or "postgresql"."""
    return request.param


@pytest.fixture
def crm_clock() -> FixedClock:
    """The fixed clock every CRM of the test shares (2026-01-05 09:00, a Monday)."""
    return FixedClock(DEFAULT_AT)


@pytest.fixture
def crm_factory(
    crm_backend: str, crm_clock: FixedClock, tmp_path: Path, _crm_templates: _Templates
) -> Iterator[Callable[..., Any]]:
    """``make(plugins=(), config=None, extra_plugins=None)`` -> a CRM on a fresh database.

    ``config`` is a crm.toml-shaped dict (``{"crm": {...}, "plugins": {"retail": {...}}}``).
    On PostgreSQL the test's CRMs share one emptied schema per plugin set.
    """
    made: list[Any] = []

    def make(
        plugins: tuple[str, ...] | list[str] = (),
        config: Mapping[str, Any] | None = None,
        extra_plugins: Mapping[str, object] | None = None,
    ) -> Any:
        from crmcore.service import CRM

        plugins = tuple(plugins)
        extra = dict(extra_plugins or {})
        target = tmp_path / f"crm-{len(made)}.db"
        url = _crm_templates.database(crm_backend, plugins, extra, target)
        cfg = _config(url, plugins, config or {}, outbox_path=tmp_path / "outbox.log")
        crm = CRM(cfg, clock=crm_clock, extra_plugins=extra, principal=SYSTEM, command="test")
        made.append(crm)
        return crm

    yield make
    for crm in made:
        crm.engine.dispose()


@pytest.fixture
def crm(request: pytest.FixtureRequest, crm_factory: Callable[..., Any]) -> Any:
    """A CRM with the plugins of ``@pytest.mark.crm(plugins=[...], config={...})``."""
    marker = request.node.get_closest_marker("crm")
    kwargs = dict(marker.kwargs) if marker else {}
    return crm_factory(**kwargs)


@pytest.fixture
def crm_outbox(crm: Any, tmp_path: Path) -> CapturedOutbox:
    """The outbox of the ``crm`` fixture: ``queued()``, ``send()``, ``sent()``."""
    return CapturedOutbox(crm, tmp_path / "outbox.log")


class CLIResult:
    """What a ``crm`` command printed and returned."""

    def __init__(self, result: Any) -> None:
        self.exit_code: int = result.exit_code
        self.stdout: str = result.stdout
        self.stderr: str = result.stderr
        self.exception = result.exception

    def json(self) -> Any:
        """The command's stdout parsed as JSON (for ``--json`` commands)."""
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"CLIResult(exit_code={self.exit_code}, stdout={self.stdout[:300]!r}, stderr={self.stderr[:300]!r})"


@pytest.fixture
def crm_cli(crm: Any) -> Callable[..., CLIResult]:
    """``crm_cli("customer", "add", "--name", "X", "--json")`` runs the ``crm``
    command line against the ``crm`` fixture's database and clock (use
    ``crm_cli(..., crm=other)`` for another CRM). Returns a :class:`CLIResult`."""
    from click.testing import CliRunner

    from crmcore.cli import cli
    from crmcore.cli._app import AppContext

    def run(*args: str, crm: Any = crm, input: str | None = None) -> CLIResult:
        app = AppContext(config_path=None, database=None, principal=None, crm=crm)
        result = CliRunner().invoke(cli, [str(a) for a in args], obj=app, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CLIResult(result)

    return run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "crm(plugins=(), config=None, extra_plugins=None): set up the crm fixture"
    )
