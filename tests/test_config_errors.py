"""What a newcomer gets wrong in crm.toml and database URLs, and the one line that
says so: the README's reference, roles and permissions, plugin schema messages,
files that are not TOML, and URLs that are not what crmcore can open."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmcore import PluginInfo, dburl, hookimpl
from crmcore import config as config_mod
from crmcore import plugins as plugins_mod
from crmcore.cli import cli
from crmcore.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"
NO_CRM_ENV = {"CRM_CONFIG": None, "CRM_DATABASE_URL": None, "CRM_AS": None}


def crm(cwd: Path, *args: str) -> Result:
    """Run ``crm ARGS`` in ``cwd`` (in this process), without CRM_* variables."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), env=NO_CRM_ENV, catch_exceptions=False)
    finally:
        os.chdir(old)


def one_line_error(result: Result) -> str:
    """The single stderr line of a refused command (exit 1, no traceback)."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix("error: ").rstrip("\n")


def build(section: dict, *plugins: str, crm_section: dict | None = None) -> None:
    """Validate a crm.toml-shaped document with ``plugins`` enabled (no database)."""
    raw = {"crm": {"database": "sqlite://", "plugins": list(plugins), **(crm_section or {})}}
    if section:
        raw["plugins"] = section
    plugins_mod.build(config_mod.from_dict(raw, path=Path("crm.toml")))


# -- the README's configuration reference --------------------------------------


def readme_reference() -> str:
    text = README.read_text(encoding="utf-8")
    part = text.split("## Configuration reference (`crm.toml`)", 1)[1]
    return re.search(r"```toml\n(.*?)```", part, re.S).group(1)


def test_the_readme_configuration_reference_loads_as_crm_toml(tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text(readme_reference(), encoding="utf-8")
    cfg = config_mod.load(tmp_path / "crm.toml")
    built = plugins_mod.build(cfg)
    assert set(built.order) == {"retail", "insurance"}
    assert built.configs["retail"]["member_day"]["day"] == "wednesday"
    # defining [crm.roles.rep] kept the other default roles
    assert set(cfg.core["roles"]) == {"rep", "supervisor", "admin", "auditor"}
    assert cfg.core["roles"]["rep"]["permissions"] == ["read", "write", "pii"]
    # and the file is usable from the command line
    init = crm(tmp_path, "db", "upgrade")
    assert init.exit_code == 0, init.stderr


def test_defining_one_role_extends_the_default_roles() -> None:
    cfg = config_mod.from_dict(
        {"crm": {"roles": {"clerk": {"scope": "own", "permissions": ["read"]}}}}
    )
    assert cfg.core["roles"]["clerk"] == {"scope": "own", "permissions": ["read"]}
    assert cfg.core["roles"]["admin"] == config_mod.DEFAULT_ROLES["admin"]
    assert set(cfg.core["roles"]) == {"clerk", *config_mod.DEFAULT_ROLES}
    # a role of a default name replaces that default only
    cfg = config_mod.from_dict({"crm": {"roles": {"rep": {"scope": "team"}}}})
    assert cfg.core["roles"]["rep"] == {"scope": "team", "permissions": []}
    assert cfg.core["roles"]["supervisor"] == config_mod.DEFAULT_ROLES["supervisor"]


# -- unknown permission names ---------------------------------------------------


def test_an_unknown_permission_in_a_role_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError) as e:
        build({}, crm_section={"roles": {"clerk": {"scope": "own", "permissions": ["raed"]}}})
    message = str(e.value)
    assert message.startswith("crm.toml: crm.roles.clerk.permissions: unknown permission 'raed'")
    assert "known permissions: read, write, pii, export, admin, audit" in message


def test_the_cli_refuses_an_unknown_permission_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text(
        '[crm.roles.rep]\nscope = "own"\npermissions = ["read", "wirte"]\n'
    )
    line = one_line_error(crm(tmp_path, "db", "upgrade"))
    assert "crm.roles.rep.permissions: unknown permission 'wirte'" in line
    assert not (tmp_path / "crm.db").exists()


class _Widgets:
    """A plugin that checks a permission of its own."""

    @hookimpl
    def crm_plugin_info(self) -> PluginInfo:
        return PluginInfo(version="1", permissions=("widgets.configure",))


def test_a_permission_a_plugin_declares_may_be_granted_while_it_is_enabled() -> None:
    roles = {"crm": {"roles": {"clerk": {"scope": "own", "permissions": ["widgets.configure"]}}}}
    enabled = config_mod.from_dict({**roles, "crm": {**roles["crm"], "plugins": ["widgets"]}})
    plugins_mod.build(enabled, extra={"widgets": _Widgets()})  # accepted
    disabled = config_mod.from_dict(roles)
    with pytest.raises(ConfigError, match="unknown permission 'widgets.configure'"):
        plugins_mod.build(disabled, extra={"widgets": _Widgets()})


def test_known_permissions_are_the_cores_then_the_declared_ones() -> None:
    from crmcore.access import PERMISSIONS, known_permissions

    assert known_permissions() == PERMISSIONS
    assert known_permissions(["x.y", "read", "x.y"]) == (*PERMISSIONS, "x.y")


# -- lists that replace defaults --------------------------------------------------

PLATINUM = {
    "name": "platinum",
    "visits_per_year": 12,
    "match": "all",
    "min_annual_premium_cents": 2_000_000,
    "min_tenure_years": 5,
}


def test_a_list_that_drops_default_grades_warns_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text(
        '[crm]\nplugins = ["insurance"]\n\n[[plugins.insurance.vip_grades]]\n'
        'name = "platinum"\nvisits_per_year = 12\nmatch = "all"\n'
        "min_annual_premium_cents = 2000000\nmin_tenure_years = 5\n"
    )
    result = crm(tmp_path, "db", "upgrade")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: crm.toml: plugins.insurance.vip_grades replaces the default list; "
        "no longer used: diamond, gold, silver (list them too to keep them)"
    ]


def test_keeping_the_default_grades_next_to_a_new_one_does_not_warn() -> None:
    import warnings

    from crm_insurance.settings import DEFAULT_GRADES

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build({"insurance": {"vip_grades": [PLATINUM, *DEFAULT_GRADES]}}, "insurance")


# -- messages of plugin config schemas ---------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "section", "expected"),
    [
        (
            "retail",
            {"member_day": {"day": "wed"}},
            "crm.toml: plugins.retail.member_day.day: expected one of ['monday', 'tuesday', "
            "'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] or an integer from 1 "
            "to 31, got 'wed'",
        ),
        (
            "retail",
            {"member_day": {"weekday": "wednesday"}},
            "crm.toml: plugins.retail.member_day: unknown key 'weekday'; known keys: enabled, "
            "day, discount, points_multiplier, remind_day_before",
        ),
        (
            "utility",
            {"default_area": "moon"},
            "crm.toml: plugins.utility.default_area: expected one of ['urban', 'rural', "
            "'remote'], got 'moon'",
        ),
        (
            "utility",
            {"deadlines": {"fault_repair": {"on_site_minutes": "soon"}}},
            "crm.toml: plugins.utility.deadlines.fault_repair.on_site_minutes: expected a "
            "table of urban, rural, remote or nothing, got 'soon'",
        ),
        (
            "utility",
            {"dunning": {"steps": [{"name": "shout", "days_overdue": 1}]}},
            "crm.toml: plugins.utility.dunning.steps.0.name: expected one of "
            "['reminder_message', 'formal_notice', 'restricted_supply_proposal', "
            "'disconnection_proposal'], got 'shout'",
        ),
        (
            "insurance",
            {"vip_grades": [{"name": "gold", "visits_per_year": 4}]},
            "crm.toml: plugins.insurance.vip_grades.0: expected at least one of the keys "
            "min_annual_premium_cents, min_sum_at_risk_cents, min_tenure_years",
        ),
        (
            "insurance",
            {"vip_grades": [{**PLATINUM, "match": "most"}]},
            "crm.toml: plugins.insurance.vip_grades.0.match: expected one of ['any', 'all'], "
            "got 'most'",
        ),
        (
            "real_estate",
            {"categories": {"roof": {"warranty": "forever"}}},
            "crm.toml: plugins.real_estate.categories.roof.warranty: expected one of "
            "['years', 'seasons', 'design_life', 'none'], got 'forever'",
        ),
        (
            "real_estate",
            {"categories": {"roof": {"warranty": "years"}}},
            "crm.toml: plugins.real_estate.categories.roof: missing key 'period'",
        ),
    ],
)
def test_plugin_schema_errors_name_the_key_and_what_is_allowed(
    plugin: str, section: dict, expected: str
) -> None:
    with pytest.raises(ConfigError) as e:
        build({plugin: section}, plugin)
    assert str(e.value) == expected
    assert "is not valid under any of the given schemas" not in str(e.value)


def test_every_choice_in_every_plugin_schema_is_described() -> None:
    """Each enum/oneOf/anyOf of each plugin's config schema can be said in words, so
    no error there falls back to the validator's generic sentence."""
    from crmcore.jsonschemas import allowed

    def choices(schema: object, path: str):
        if isinstance(schema, dict):
            for key in ("enum", "oneOf", "anyOf"):
                if key in schema:
                    yield path, schema
            for key, sub in schema.items():
                if key in ("properties", "additionalProperties", "items") and isinstance(sub, dict):
                    if key == "properties":
                        for name, prop in sub.items():
                            yield from choices(prop, f"{path}.{name}")
                    else:
                        yield from choices(sub, f"{path}[]")
                elif key in ("oneOf", "anyOf"):
                    for alternative in sub:
                        yield from choices(alternative, path)

    seen = 0
    for name, ep in sorted(plugins_mod.installed().items()):
        schema = getattr(ep.load(), "crm_config_schema", lambda: None)()
        for path, sub in choices(schema, f"plugins.{name}"):
            seen += 1
            only_required = all(set(s) == {"required"} for s in sub.get("anyOf", [None]) if s)
            assert allowed(sub) or only_required, path
    assert seen >= 5


# -- files that are not a crm.toml ------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[crm]\nx = " + b"[" * 5000 + b"]" * 5000 + b"\n", "crm.toml: nested too deeply to read"),
        (
            b"[crm]\nx = " + b"{a = " * 5000 + b"1" + b"}" * 5000 + b"\n",
            "crm.toml: nested too deeply",
        ),
        (b"[" + b".".join([b"crm"] * 5000) + b"]\n", "nested more than 32 levels deep"),
        (b"[crm]\n# caf\xe9\nplugins = []\n", "crm.toml: line 2: not UTF-8 text (byte 0xe9)"),
        (b"[crm]\nplugins = [\n", "crm.toml: not valid TOML: "),
        (b"[crm]\nplugins = []\nplugins = []\n", "(at line 3, column"),
        (b"\x89PNG\r\n\x1a\n\x00", "crm.toml: line 1: not UTF-8 text"),
        (
            b'[crm]\ndatabase = "oracle://scott@db/orcl"\n',
            "crm.toml: crm.database: unsupported database 'oracle'",
        ),
    ],
)
def test_a_file_that_is_not_a_crm_toml_is_one_line_naming_it(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    (tmp_path / "crm.toml").write_bytes(content)
    line = one_line_error(crm(tmp_path, "customer", "list"))
    assert expected in line
    assert line.startswith("crm.toml: ")
    assert not (tmp_path / "crm.db").exists()


def test_a_directory_named_as_the_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    line = one_line_error(crm(tmp_path, "--config", "conf", "customer", "list"))
    assert line == "conf: is not a file; expected a crm.toml"


# -- database URLs ----------------------------------------------------------------


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notadb.txt").write_text("shopping list\n" * 100)
    for command in (["customer", "list"], ["db", "upgrade"]):
        line = one_line_error(crm(tmp_path, "--db", "sqlite:///notadb.txt", *command))
        assert line.startswith("'notadb.txt' is not a SQLite database")
    assert (tmp_path / "notadb.txt").read_text() == "shopping list\n" * 100


def test_a_path_instead_of_a_url(tmp_path: Path) -> None:
    line = one_line_error(crm(tmp_path, "--db", "crm.db", "customer", "list"))
    assert line == (
        "database: 'crm.db' is not a database URL; expected a URL such as "
        "sqlite:///crm.db or postgresql://user@host/db"
    )
    line = one_line_error(crm(tmp_path, "init", "--db", "crm.db"))
    assert "--db: 'crm.db' is not a database URL; expected a URL such as sqlite:///crm.db" in line
    assert list(tmp_path.iterdir()) == []


def test_an_unsupported_backend_names_the_supported_ones(tmp_path: Path) -> None:
    line = one_line_error(crm(tmp_path, "--db", "mysql://root:secret@db/crm", "db", "upgrade"))
    assert line == (
        "database: unsupported database 'mysql' in 'mysql://root:***@db/crm'; "
        "supported: sqlite:///PATH or postgresql://USER@HOST/DB"
    )
    assert "secret" not in line


def test_postgres_scheme_is_read_as_postgresql_with_psycopg() -> None:
    assert dburl.parse("postgres://u@h:5433/db").drivername == "postgresql+psycopg"
    assert dburl.parse("postgresql://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match="driver 'psycopg2' is not supported"):
        dburl.parse("postgresql+psycopg2://u@h/db")


def test_postgres_scheme_connects(tmp_path: Path) -> None:
    url = os.environ.get("CRM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CRM_TEST_POSTGRES_URL is not set")
    from sqlalchemy import text

    from crmcore.db import make_engine

    engine = make_engine("postgres://" + url.split("://", 1)[1])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_a_server_that_refuses_is_one_line_with_host_and_port(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line_error(
        crm(tmp_path, "--db", f"postgresql://u@127.0.0.1:{port}/crm", "db", "upgrade")
    )
    assert line.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port} (database 'crm'): ")


def test_a_server_that_does_not_answer_times_out_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dburl, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as silent:  # accepts the TCP connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        line = one_line_error(
            crm(tmp_path, "--db", f"postgresql://u@127.0.0.1:{port}/crm", "db", "upgrade")
        )
        assert time.monotonic() - started < 10
    assert line.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}")
    assert "timeout" in line


def test_the_default_connect_timeout_is_applied_unless_the_url_sets_one() -> None:
    assert dburl.connect_args(dburl.parse("postgresql://u@h/db")) == {
        "connect_timeout": dburl.CONNECT_TIMEOUT_S
    }
    assert dburl.connect_args(dburl.parse("postgresql://u@h/db?connect_timeout=2")) == {}
    assert dburl.connect_args(dburl.parse("sqlite:///x.db")) == {}


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    line = one_line_error(crm(tmp_path, "--db", "sqlite:///nodir/crm.db", "db", "upgrade"))
    assert line == (
        "database sqlite:///nodir/crm.db: directory 'nodir' of the database does not exist"
    )
    (tmp_path / "crm.toml").write_text('[crm]\ndatabase = "sqlite:///nodir/crm.db"\n')
    line = one_line_error(crm(tmp_path, "db", "upgrade"))
    assert f"directory '{tmp_path.resolve() / 'nodir'}' of the database does not exist" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.toml"]


def test_a_database_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    line = one_line_error(crm(tmp_path, "--db", "sqlite:///data", "db", "upgrade"))
    assert line == "database sqlite:///data: 'data' is a directory, not a database file"


def test_every_mistyped_url_is_a_config_error_not_a_crash() -> None:
    for url in (
        "",
        "crm.db",
        "sqlite:/crm.db",
        "://",
        "postgresql://",
        "mssql+pyodbc://x",
        "redis://h",
    ):
        with pytest.raises(ConfigError):
            dburl.parse(url)


def test_a_nested_list_that_drops_defaults_warns_too() -> None:
    import warnings

    from crmcore.errors import ConfigWarning

    steps = [{"name": "formal_notice", "days_overdue": 15}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build({"utility": {"dunning": {"steps": steps}}}, "utility")
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            ConfigWarning,
            "crm.toml: plugins.utility.dunning.steps replaces the default list; no longer "
            "used: reminder_message, restricted_supply_proposal, disconnection_proposal "
            "(list them too to keep them)",
        )
    ]
