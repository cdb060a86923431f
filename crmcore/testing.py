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

For a plugin's suite, :func:`assert_plugin_contract` checks in one call what
every plugin owes the core (no private imports, migrations that build exactly
the declared tables and reverse, forget and merge, CLI conventions); its parts
are :func:`private_crmcore_imports`, :func:`check_migrations`,
:func:`check_forget_and_merge` and :func:`check_cli_conventions`. For tests of
migrations: :func:`fresh_database`, :func:`migrate_to`,
:func:`schema_differences` and :func:`assert_migrations_reversible`.

Longer than most modules: the fixtures and checks plugin authors import are one public
module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
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
            m for m in self.crm.messages.outbox(status="queued") if channel is None or m.channel == channel
        ]

    def send(self) -> list[dict[str, Any]]:
        """Deliver everything queued (through the log channel unless a plugin
        provides the channel) and return what the log channel received."""
        self.crm.messages.send_outbox()
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
                crm.admin.upgrade()
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
            crm.admin.upgrade()
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

    from crmcore.storage.engine import make_engine

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

    from crmcore.storage.engine import make_engine

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
    for table in ("channels", "messages"):
        if extra_config.get(table):
            raw[table] = dict(extra_config[table])
    for section in ("jobs", "outbox"):
        if extra_config.get(section):
            raw[section] = dict(extra_config[section])
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


# -- migrations ------------------------------------------------------------------


def fresh_database(backend: str, directory: Path, name: str) -> str:
    """The URL of an empty database for a test that runs migrations itself:
    a new SQLite file ``name.db`` in ``directory``, or (``"postgresql"``) a
    PostgreSQL schema named after ``name`` and the pytest-xdist worker, dropped
    and created again in the database of ``CRM_TEST_POSTGRES_URL``."""
    if backend == "sqlite":
        path = directory / f"{name}.db"
        if path.exists():
            path.unlink()
        return f"sqlite:///{path}"
    base = os.environ[POSTGRES_ENV]
    schema = f"crmtest_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{name}"
    _reset_schema(base, schema)
    return _with_search_path(base, schema)


def declared_tables(crm: Any, branch: str) -> list[Any]:
    """The tables a migration branch must end in: the core's declared tables
    for ``"crmcore"``, else what the plugin of that name returns from ``crm_tables``."""
    from crmcore.schema import metadata

    if branch == "crmcore":
        return list(metadata.sorted_tables)
    return [
        t
        for owner, tables in crm.plugins.each("crm_tables")
        if owner == branch
        for t in tables or ()
    ]


def schema_differences(engine: Any, tables: Iterable[Any]) -> list[Any]:
    """What Alembic's autogenerate would change to make the database's copy of
    ``tables`` match their declaration (types, nullability, indexes, unique and
    foreign keys included); tables of the database not among ``tables`` are
    not looked at. An empty list: the migrations built exactly these tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import MetaData

    wanted = list(tables)
    names = {t.name for t in wanted}
    from crmcore.schema import metadata as core_metadata

    # the core's tables too (unless given), so foreign keys to them resolve
    meta = MetaData()
    for table in [*wanted, *core_metadata.sorted_tables]:
        if table.name not in meta.tables:
            table.to_metadata(meta)

    def include_name(name: str | None, type_: str, parent: Mapping[str, Any]) -> bool:
        return type_ != "table" or name in meta.tables

    def include_object(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name in names

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": include_name,
                "include_object": include_object,
                "compare_type": True,
            },
        )
        return list(compare_metadata(context, meta))


def _brief(differences: list[Any]) -> str:
    """Autogenerate's differences, one short item each (operation and object name)."""
    items = []
    for diff in differences:
        first = diff[0] if isinstance(diff, list) else diff
        names = [getattr(part, "name", None) or str(part) for part in first[1:4]]
        items.append(f"{first[0]} {' '.join(n for n in names if n and n != 'None')}")
    return "; ".join(items)


def schema_snapshot(engine: Any) -> dict[str, Any]:
    """Every table of the database but ``alembic_version``: its columns (type
    and nullability), primary key, indexes, unique constraints and foreign keys,
    as comparable plain data."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        inspector = inspect(conn)
        shot: dict[str, Any] = {}
        for table in inspector.get_table_names():
            if table == "alembic_version":
                continue
            shot[table] = {
                "columns": {
                    c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                },
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
                "unique": sorted(
                    (u["name"] or "", tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
                "foreign_keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(table)
                ),
            }
        return shot


def _version_dirs(crm: Any) -> list[str]:
    from crmcore import migrate

    plugin_dirs = {str(path) for _name, path in crm.plugins.each("crm_migrations") if path}
    return [str(migrate.CORE_VERSIONS), *sorted(plugin_dirs)]


def migrate_to(crm: Any, target: str, *, down: bool = False) -> None:
    """Upgrade (or with ``down=True`` downgrade) ``crm``'s database to an
    Alembic target: a revision id (``"crmcore_0002"``), ``"BRANCH@head"``, or a
    step within a branch (``"retail@-1"``, ``"crmcore@+1"``), with the version
    directories of the core and of every enabled plugin. For tests of
    migrations; ``crm.admin.upgrade()`` is the way to bring a database up to date."""
    from alembic import command

    from crmcore import migrate

    with crm.engine.connect() as conn, migrate._write_tx(conn):
        cfg = migrate._alembic_config(conn, _version_dirs(crm))
        (command.downgrade if down else command.upgrade)(cfg, target)


def assert_migrations_reversible(crm: Any, branch: str) -> None:
    """Check the migrations of ``branch`` (``"crmcore"`` or an enabled plugin's
    name) on ``crm``'s database, which must be empty: upgrading builds exactly
    the declared tables; stepping down one revision at a time reaches the
    branch's base; stepping up again gives, at each revision, the same schema
    as on the way down, and at the head the declared tables again."""
    from alembic.script import Script, ScriptDirectory

    from crmcore import migrate

    crm.admin.upgrade()
    tables = declared_tables(crm, branch)
    differences = schema_differences(crm.engine, tables)
    assert differences == [], (
        f"{branch}: the migrated schema differs from the declared tables: {_brief(differences)}"
    )
    with crm.engine.connect() as conn:
        script = ScriptDirectory.from_config(migrate._alembic_config(conn, _version_dirs(crm)))
    revisions: list[str] = []  # the branch's own revisions, newest first (not those it depends on)
    walked: Script | None = script.get_revision(f"{branch}@head")
    while walked is not None:
        revisions.append(walked.revision)
        down = walked.down_revision
        assert not isinstance(down, tuple | list), f"{branch}: merge revisions are not walked"
        walked = script.get_revision(down) if down else None
    assert revisions, f"{branch}: no migrations found"
    on_the_way_down: dict[str, dict[str, Any]] = {}
    for revision in revisions:  # newest first
        on_the_way_down[revision] = schema_snapshot(crm.engine)
        migrate_to(crm, f"{branch}@-1", down=True)
    assert not set(tables_of(crm.engine)) & {t.name for t in tables}, (
        f"{branch}: tables left after downgrading to the base"
    )
    for revision in reversed(revisions):
        migrate_to(crm, f"{branch}@+1")
        assert schema_snapshot(crm.engine) == on_the_way_down[revision], (
            f"{branch}: {revision} upgraded again differs from before its downgrade"
        )
    differences = schema_differences(crm.engine, tables)
    assert differences == [], (
        f"{branch}: after the round trip the schema differs: {_brief(differences)}"
    )


def tables_of(engine: Any) -> list[str]:
    """The names of the database's tables."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        return list(inspect(conn).get_table_names())


# -- the plugin contract -----------------------------------------------------------

CONTRACT_NAME = "Contract Person Qiu"
CONTRACT_PHONE = "13900001111"
CONTRACT_EMAIL = "contract.person@example.com"


def _plugin_name(plugin: str | ModuleType, extra_plugins: Mapping[str, object]) -> str:
    """The plugin's name: given as such, or the name its module is registered
    under (in ``extra_plugins``, or as an installed entry point)."""
    if isinstance(plugin, str):
        return plugin
    for name, given in extra_plugins.items():
        if given is plugin:
            return name
    from crmcore.plugins import installed

    for name, ep in installed().items():
        if ep.value == plugin.__name__:
            return name
    raise AssertionError(f"module {plugin.__name__} is no installed crmcore plugin's entry point")


def _plugin_source(crm: Any, name: str) -> Path:
    """The plugin's source: its top-level package's directory, or the file of a
    plugin that is a single module."""
    import importlib
    import sys

    module = crm.plugins.pm.get_plugin(name)
    top = (getattr(module, "__name__", None) or type(module).__module__).split(".")[0]
    package = sys.modules.get(top) or importlib.import_module(top)
    source = Path(package.__file__ or "")
    return source.parent if hasattr(package, "__path__") else source


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_crmcore_imports(source: Path) -> list[str]:
    """Every import of a private crmcore name in ``source`` (a ``.py`` file, or
    every one under a directory): a ``crmcore`` module or imported name starting
    with ``_`` (``crmcore._x``, ``crmcore.cli._app``, ``from crmcore.db import
    _helper``; dunder names such as ``__version__`` are public), as
    ``file:line: what``. Plugins use only the public API."""
    import ast

    found: list[str] = []
    files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for dotted in names:
                parts = dotted.split(".")
                if parts[0] == "crmcore" and any(_private(p) for p in parts[1:]):
                    found.append(f"{path.relative_to(source.parent)}:{node.lineno}: {dotted}")
    return found


def _leaf_commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    import click

    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _leaf_commands(sub, [*path, name])


def _run_cli(crm: Any, args: list[str]) -> CLIResult:
    from click.testing import CliRunner

    from crmcore.cli import cli
    from crmcore.cli._app import AppContext

    app = AppContext(config_path=None, database=None, principal=None, crm=crm)
    result = CliRunner().invoke(cli, args, obj=app)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crm {' '.join(args)}: raised {result.exception!r}") from (
            result.exception
        )
    return CLIResult(result)


def check_cli_conventions(crm: Any, name: str, json_commands: Iterable[list[str]] = ()) -> None:
    """The plugin's commands follow the CLI conventions: every command and
    group answers ``--help``; every command takes ``--json``; every command
    that needs no argument, and every command line of ``json_commands``, run
    with ``--json`` either prints exactly one JSON document on stdout and exits
    0, or prints nothing on stdout and one line on stderr and exits 1."""
    import click

    commands = [
        c for owner, cs in crm.plugins.each("crm_cli_commands") if owner == name for c in cs or ()
    ]
    assert commands, f"{name}: crm_cli_commands returns no command"
    runnable: list[list[str]] = [list(args) for args in json_commands]
    for top in commands:
        for path, command in _leaf_commands(top, [top.name]):
            shown = "crm " + " ".join(path)
            helped = _run_cli(crm, [*path, "--help"])
            assert helped.exit_code == 0 and "Usage:" in helped.stdout, (
                f"{shown} --help: exit {helped.exit_code}, {helped.stderr.strip()!r}"
            )
            if isinstance(command, click.Group):
                continue
            options = {o for p in command.params for o in getattr(p, "opts", ())}
            assert "--json" in options, f"{shown}: takes no --json option"
            if not any(p.required for p in command.params):
                runnable.append([*path, "--json"])
    for args in runnable:
        shown = "crm " + " ".join(args)
        result = _run_cli(crm, args)
        if result.exit_code == 0:
            try:
                json.loads(result.stdout)
            except ValueError:
                raise AssertionError(
                    f"{shown}: stdout is not only JSON: {result.stdout[:200]!r}"
                ) from None
        else:
            assert result.exit_code == 1, f"{shown}: exit {result.exit_code}: {result.stderr!r}"
            assert result.stdout == "", f"{shown}: failed but printed {result.stdout[:200]!r}"
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, f"{shown}: an error is one line, got {result.stderr!r}"


def _customer_tables(crm: Any, name: str) -> list[tuple[Any, list[str]]]:
    """The plugin's tables that refer to customers, each with the columns that do
    (``customer_id`` and every foreign key to ``customers.id``)."""
    out = []
    for table in declared_tables(crm, name):
        columns = [
            c.name
            for c in table.columns
            if c.name == "customer_id"
            or any(fk.target_fullname == "customers.id" for fk in c.foreign_keys)
        ]
        if columns:
            out.append((table, columns))
    return out


def _rows_of(crm: Any, table: Any, columns: list[str], customer_id: int) -> list[Any]:
    from sqlalchemy import or_, select

    with crm.engine.connect() as conn:
        where = or_(*(table.c[c] == customer_id for c in columns))
        return list(conn.execute(select(table).where(where)).mappings())


def _holds(value: Any, needles: Iterable[str]) -> bool:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return any(n and n in text for n in needles)


def check_forget_and_merge(crm: Any, name: str, seed: Callable[[Any, Any], Any]) -> None:
    """``seed(crm, customer)`` writes the plugin's records of ``customer``
    through its own API. Then: forgetting a seeded customer leaves, in every
    plugin table that refers to customers, no personal column (``info={"pii":
    ...}``) holding a value and no column holding the customer's name, phone or
    e-mail; merging a seeded customer into another leaves no row referring to
    the merged twin, and the kept customer has them."""
    from crmcore.services.erasure import ERASED

    tables = _customer_tables(crm, name)
    assert tables, f"{name}: no table refers to customers; nothing to forget or merge"
    needles = (CONTRACT_NAME, CONTRACT_PHONE, CONTRACT_EMAIL)

    forgotten = crm.customers.add(CONTRACT_NAME, phone=CONTRACT_PHONE, email=CONTRACT_EMAIL)
    seed(crm, forgotten)
    before = {t.name: _rows_of(crm, t, cols, forgotten.id) for t, cols in tables}
    assert any(before.values()), (
        f"{name}: the seed wrote no row referring to the customer in "
        f"{sorted(before)}: it proves nothing"
    )
    crm.customers.forget(forgotten.id)
    for table, columns in tables:
        personal = [c.name for c in table.columns if c.info.get("pii")]
        for row in _rows_of(crm, table, columns, forgotten.id):
            for column, value in row.items():
                if column in personal:
                    assert value in (None, "", {}, [], ERASED), (
                        f"{table.name}.{column} still holds {value!r} for a forgotten customer"
                    )
                assert not _holds(value, needles), (
                    f"{table.name}.{column} still names a forgotten customer: {value!r}"
                )

    kept = crm.customers.add("Contract Keeper Qiu")
    twin = crm.customers.add("Contract Twin Qiu", phone="13900002222")
    seed(crm, twin)
    moved = {t.name: len(_rows_of(crm, t, cols, twin.id)) for t, cols in tables}
    assert any(moved.values()), f"{name}: the seed wrote no row for the twin"
    crm.customers.merge(kept.id, twin.id)
    for table, columns in tables:
        left = _rows_of(crm, table, columns, twin.id)
        assert left == [], f"{table.name}: {len(left)} row(s) still refer to a merged twin"
        if moved[table.name]:
            assert _rows_of(crm, table, columns, kept.id), (
                f"{table.name}: the merged twin's rows did not reach the kept customer"
            )


def check_migrations(crm: Any, name: str) -> None:
    """On an empty database of ``crm``'s backend: the plugin's migrations build
    exactly its declared tables and every revision downgrades and upgrades
    again (:func:`assert_migrations_reversible`)."""
    from crmcore.service import CRM

    url = crm.config.database
    if url.startswith("sqlite"):
        directory = Path(url.removeprefix("sqlite:///")).parent
        fresh = fresh_database("sqlite", directory, f"contract-{name}")
    else:
        fresh = fresh_database("postgresql", Path(), f"contract_{name}")
    import attrs

    cfg = attrs.evolve(crm.config, core={**crm.config.core, "database": fresh})
    other = CRM(cfg, clock=crm.clock, plugins=crm.plugins, principal=SYSTEM)
    try:
        assert_migrations_reversible(other, name)
    finally:
        other.engine.dispose()


def assert_plugin_contract(
    plugin: str | ModuleType,
    crm_factory: Callable[..., Any],
    *,
    seed: Callable[[Any, Any], Any],
    config: Mapping[str, Any] | None = None,
    json_commands: Iterable[list[str]] = (),
    extra_plugins: Mapping[str, object] | None = None,
) -> None:
    """Check what every plugin owes the core, in one call from its test suite:

    - no private imports: no ``crmcore`` module or name starting with ``_`` is
      imported anywhere in the plugin's package (:func:`private_crmcore_imports`);
    - migrations: on the test's backend its branch builds exactly its declared
      tables, and every revision downgrades and upgrades again;
    - forget and merge: ``seed(crm, customer)`` writes the plugin's records of a
      customer (through the plugin's own API); a forgotten customer's rows then
      hold no personal data, and a merged twin's rows move to the kept customer;
    - the command line: every command answers ``--help`` and takes ``--json``;
      run with ``--json`` (every command needing no argument, and each command
      line of ``json_commands``, e.g. ``["retail", "member", "list", "--json"]``)
      it prints only JSON, or exits 1 with one line on stderr.

    ``plugin`` is the plugin's name or its entry-point module; ``crm_factory`` the
    fixture of that name; ``config`` a crm.toml-shaped dict for the plugin's CRM;
    ``extra_plugins`` (name -> module) registers a plugin that is not installed.
    Raises AssertionError naming the first broken rule."""
    extra = dict(extra_plugins or {})
    name = _plugin_name(plugin, extra)
    crm = crm_factory(plugins=[name], config=config, extra_plugins=extra)
    assert name in crm.plugins.order, f"{name}: not enabled by the factory"
    private = private_crmcore_imports(_plugin_source(crm, name))
    assert private == [], f"{name} imports private crmcore names: {private}"
    check_migrations(crm, name)
    check_forget_and_merge(crm, name, seed)
    check_cli_conventions(crm, name, json_commands)
